// The app's shell: the session (login, the forced password change), the layout with the
// navigation and the unread-notification badge, and the router that loads each page's module
// when it is first visited (pages/*.mjs, default export: a component given `{params}`).
import {
  html, render, useState, useEffect, useCallback, api, session, navigate, onRoute, Link, Field,
  FormError, Toasts, connectLive, disconnectLive, onUnauthorised, useMessages, onUnreadChanged,
  useLiveConnected, ApiError, useSubmit,
} from './lib.mjs';

/** Path patterns and the page module each shows. */
const ROUTES = [
  [/^\/events$/, 'events'],
  [/^\/events\/([^/]+)$/, 'event'],
  [/^\/live$/, 'live'],
  [/^\/cameras$/, 'cameras'],
  [/^\/cameras\/new$/, 'camera-edit'],
  [/^\/cameras\/([^/]+)$/, 'camera-edit'],
  [/^\/protect$/, 'protect'],
  [/^\/alerts$/, 'alerts'],
  [/^\/settings$/, 'settings'],
];

const NAV = [
  ['/events', 'Events'],
  ['/live', 'Live'],
  ['/cameras', 'Cameras'],
  ['/protect', 'Protect'],
  ['/alerts', 'Alerts'],
  ['/settings', 'Settings'],
];

const modules = new Map();
const ready = new Map(); // page name -> its component, once its module has loaded
function load(name) {
  if (!modules.has(name)) {
    modules.set(
      name,
      import(`./pages/${name}.mjs`).then((m) => {
        ready.set(name, m.default);
        return m;
      }),
    );
  }
  return modules.get(name);
}

function match(path) {
  for (const [re, name] of ROUTES) {
    const m = re.exec(path);
    if (m) return { name, params: m.slice(1).map(decodeURIComponent) };
  }
  return null;
}

function usePath() {
  const [path, setPath] = useState(location.pathname);
  useEffect(() => onRoute(() => setPath(location.pathname)), []);
  return path;
}

function Page({ path }) {
  const route = match(path);
  const [loaded, setLoaded] = useState(null);
  const [error, setError] = useState(null);
  useEffect(() => {
    if (!route) return;
    let live = true;
    setError(null);
    load(route.name).then(
      (m) => live && setLoaded({ name: route.name, Component: m.default }),
      (e) => live && setError(e),
    );
    return () => {
      live = false;
    };
  }, [route && route.name]);
  if (!route) {
    return html`<section><h1>Not found</h1><p>There is no page at ${path}. <${Link} href="/events">Events</${Link}></p></section>`;
  }
  if (error) return html`<p class="error banner" role="alert">Could not load this page: ${error.message}</p>`;
  const C = ready.get(route.name) || (loaded && loaded.name === route.name && loaded.Component);
  if (!C) return html`<p class="muted" role="status">Loading…</p>`;
  return html`<${C} key=${path} params=${route.params} />`;
}

function UnreadBadge() {
  const [unread, setUnread] = useState(0);
  const refresh = useCallback(() => {
    api('GET', '/notifications?read=false&limit=1').then((r) => setUnread(r.unread_count), () => {});
  }, []);
  useEffect(() => {
    refresh();
    return onUnreadChanged(refresh);
  }, [refresh]);
  useMessages('notification.new', () => setUnread((n) => n + 1));
  const label = unread ? `Notifications: ${unread} unread` : 'Notifications: none unread';
  return html`<${Link} href="/alerts?tab=notifications" class="bell" aria-label=${label} title=${label}>
    <svg aria-hidden="true" viewBox="0 0 24 24" width="20" height="20"><path fill="currentColor" d="M12 22a2.5 2.5 0 0 0 2.45-2h-4.9A2.5 2.5 0 0 0 12 22Zm7-6V11a7 7 0 0 0-5.5-6.84V3a1.5 1.5 0 0 0-3 0v1.16A7 7 0 0 0 5 11v5l-2 2v1h18v-1Z"/></svg>
    ${unread ? html`<span class="badge" id="unread-badge">${unread > 99 ? '99+' : unread}</span>` : null}
  </${Link}>`;
}

function Shell({ me, onLogout }) {
  const path = usePath();
  const live = useLiveConnected();
  useEffect(() => {
    if (path === '/' || path === '/login') navigate('/events', { replace: true });
  }, [path]);
  const logout = async () => {
    try {
      await api('POST', '/auth/logout');
    } catch (_) {
      // The session is over either way.
    }
    onLogout();
  };
  const current = (href) => path === href || path.startsWith(href + '/');
  return html`<div class="shell">
    <header class="top">
      <${Link} href="/events" class="brand">Argus Edge</${Link}>
      <nav class="main-nav" aria-label="Main">
        ${NAV.map(([href, label]) => html`<${Link} href=${href} aria-current=${current(href) ? 'page' : undefined}>${label}</${Link}>`)}
      </nav>
      <div class="me">
        <span class=${'dot ' + (live ? 'on' : 'off')} title=${live ? 'Live updates on' : 'Live updates reconnecting'} aria-label=${live ? 'Live updates on' : 'Live updates reconnecting'} role="img"></span>
        <${UnreadBadge} />
        <span class="who">${me.name}</span>
        <button type="button" class="link" onClick=${logout}>Log out</button>
      </div>
    </header>
    <main id="main"><${Page} path=${path === '/' || path === '/login' ? '/events' : path} /></main>
  </div>`;
}

function Login({ onDone }) {
  const [username, setUsername] = useState('admin');
  const [password, setPassword] = useState('');
  const [submit, busy, error] = useSubmit(async () => {
    await api('POST', '/auth/login', { username, password });
    onDone();
  });
  return html`<main class="narrow">
    <form class="card" onSubmit=${submit} aria-labelledby="login-title">
      <h1 id="login-title">Argus Edge</h1>
      <p class="muted">Log in to the appliance. The first time, the password is in the data directory's <code>initial-admin-password</code> file.</p>
      <${Field} label="Username" name="username" error=${error}>${(id) => html`<input id=${id} name="username" autocomplete="username" value=${username} onInput=${(e) => setUsername(e.target.value)} required />`}</${Field}>
      <${Field} label="Password" name="password" error=${error}>${(id) => html`<input id=${id} name="password" type="password" autocomplete="current-password" value=${password} onInput=${(e) => setPassword(e.target.value)} required />`}</${Field}>
      <${FormError} error=${error} fields=${['username', 'password']} />
      <button type="submit" class="primary" disabled=${busy}>Log in</button>
    </form>
  </main>`;
}

function ChangePassword({ me, onDone, onLogout }) {
  const [current, setCurrent] = useState('');
  const [next, setNext] = useState('');
  const [again, setAgain] = useState('');
  const [submit, busy, error] = useSubmit(async () => {
    if (next !== again) throw new ApiError(422, 'confirm: the two new passwords differ');
    await api('POST', '/auth/change-password', { current_password: current, new_password: next });
    onDone();
  });
  return html`<main class="narrow">
    <form class="card" onSubmit=${submit} aria-labelledby="cp-title">
      <h1 id="cp-title">Choose a new password</h1>
      <p class="muted">${me.name}, the password you logged in with was a one-time password. Choose your own before going on.</p>
      <${Field} label="Current password" name="current_password" error=${error}>${(id) => html`<input id=${id} name="current_password" type="password" autocomplete="current-password" value=${current} onInput=${(e) => setCurrent(e.target.value)} required />`}</${Field}>
      <${Field} label="New password" name="new_password" error=${error}>${(id) => html`<input id=${id} name="new_password" type="password" autocomplete="new-password" value=${next} onInput=${(e) => setNext(e.target.value)} required />`}</${Field}>
      <${Field} label="New password again" name="confirm" error=${error}>${(id) => html`<input id=${id} name="confirm" type="password" autocomplete="new-password" value=${again} onInput=${(e) => setAgain(e.target.value)} required />`}</${Field}>
      <${FormError} error=${error} fields=${['current_password', 'new_password', 'confirm']} />
      <div class="row">
        <button type="submit" class="primary" disabled=${busy}>Change password</button>
        <button type="button" class="link" onClick=${onLogout}>Log out</button>
      </div>
    </form>
  </main>`;
}

// Asked for at once, while the first page's module loads.
let firstMe = api('GET', '/auth/me');
firstMe.catch(() => {}); // handled when the app asks; not an unhandled rejection meanwhile

function App() {
  const [me, setMe] = useState(undefined);
  const refresh = useCallback(() => {
    const asked = firstMe || api('GET', '/auth/me');
    firstMe = null;
    asked.then(
      (m) => {
        session.me = m;
        setMe(m);
      },
      (e) => {
        session.me = null;
        setMe(e.status === 401 ? null : { error: e });
      },
    );
  }, []);
  useEffect(refresh, [refresh]);
  useEffect(
    () =>
      onUnauthorised(() => {
        session.me = null;
        setMe(null);
      }),
    [],
  );
  const ready = me && !me.error && !me.must_change_password;
  useEffect(() => {
    if (ready) connectLive();
    else disconnectLive();
  }, [ready]);
  const logout = () => {
    api('POST', '/auth/logout').catch(() => {});
    session.me = null;
    setMe(null);
  };
  let body;
  if (me === undefined) body = html`<p class="muted" role="status">Loading…</p>`;
  else if (me === null) body = html`<${Login} onDone=${refresh} />`;
  else if (me.error) body = html`<main class="narrow"><p class="error banner" role="alert">${me.error.detail}</p><button type="button" onClick=${refresh}>Try again</button></main>`;
  else if (me.must_change_password) body = html`<${ChangePassword} me=${me} onDone=${refresh} onLogout=${logout} />`;
  else body = html`<${Shell} me=${me} onLogout=${() => setMe(null)} />`;
  return html`${body}<${Toasts} />`;
}

// The first page's module loads while the session is asked for, not after.
const first = match(location.pathname === '/' || location.pathname === '/login' ? '/events' : location.pathname);
if (first) load(first.name).catch(() => {});

render(html`<${App} />`, document.getElementById('app'));
