// The app's shared parts: Preact with htm, the API client (JSON errors become ApiError with the
// field the detail names), the live message stream from /ws, the session, navigation, and the
// small components every page uses (fields with their errors, pager, formatting).
import { h, render, Fragment, options } from './vendor/preact.mjs';
import { useState, useEffect, useLayoutEffect, useRef, useMemo, useCallback } from './vendor/hooks.mjs';
import htm from './vendor/htm.mjs';

export { h, render, Fragment, useState, useEffect, useLayoutEffect, useRef, useMemo, useCallback };
export const html = htm.bind(h);

// Preact runs effects on the next animation frame, or after 35 ms when frames are slow (a
// background tab, a busy Pi): each step of "render, then fetch in an effect, then render"
// would wait for one. Effects here start requests and subscriptions, so they run as soon as
// the render's task is done instead.
options.requestAnimationFrame = (run) => setTimeout(run, 0);

// ---- API --------------------------------------------------------------------------------------

/** An error answer of the API: `status`, `detail`, and `field` when the detail names one
 *  (`"name: 1 to 100 characters"` names `name`). */
export class ApiError extends Error {
  constructor(status, detail) {
    super(detail);
    this.status = status;
    this.detail = detail;
    const m = /^([a-z_][a-z0-9_]*)(?:[.[][^:]*)?:\s/i.exec(detail || '');
    this.field = m ? m[1] : null;
  }
}

const unauthorised = new Set();
/** Called with no argument when the session has ended (a 401 from the API). */
export function onUnauthorised(fn) {
  unauthorised.add(fn);
  return () => unauthorised.delete(fn);
}

/** Calls the API: `path` is below /api/v1 (`'/events?limit=20'`), `body` is sent as JSON.
 *  Answers the parsed JSON (null for an empty answer); throws ApiError. */
export async function api(method, path, body) {
  const opts = { method, headers: { Accept: 'application/json' }, credentials: 'same-origin' };
  if (body !== undefined) {
    opts.headers['Content-Type'] = 'application/json';
    opts.body = JSON.stringify(body);
  }
  let resp;
  try {
    resp = await fetch('/api/v1' + path, opts);
  } catch (e) {
    throw new ApiError(0, 'The appliance did not answer: ' + e.message);
  }
  const text = await resp.text();
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch (_) {
      data = text;
    }
  }
  if (!resp.ok) {
    const detail = (data && data.detail) || `${resp.status} ${resp.statusText}`;
    if (resp.status === 401 && !path.startsWith('/auth/login')) unauthorised.forEach((f) => f());
    throw new ApiError(resp.status, typeof detail === 'string' ? detail : JSON.stringify(detail));
  }
  return data;
}

/** Loads `path` (GET) when it changes; `null` loads nothing. `{data, error, loading, reload,
 *  setData}`. */
export function useApi(path) {
  const [state, setState] = useState({ data: null, error: null, loading: !!path });
  const seq = useRef(0);
  const load = useCallback(() => {
    if (!path) return;
    const n = ++seq.current;
    setState((s) => ({ ...s, loading: true }));
    api('GET', path).then(
      (data) => n === seq.current && setState({ data, error: null, loading: false }),
      (error) => n === seq.current && setState((s) => ({ data: s.data, error, loading: false })),
    );
  }, [path]);
  useEffect(load, [load]);
  const setData = useCallback((f) => setState((s) => ({ ...s, data: typeof f === 'function' ? f(s.data) : f })), []);
  return { ...state, reload: load, setData };
}

// ---- Live messages (/ws) ------------------------------------------------------------------------

const listeners = new Map(); // type -> Set(fn)
let socket = null;
let retry = 1000;
let wanted = false;
const connection = new Set();
export let wsConnected = false;

function setConnected(v) {
  wsConnected = v;
  connection.forEach((f) => f(v));
}

/** Opens /ws (with the session cookie) and keeps it open, reconnecting with backoff. */
export function connectLive() {
  wanted = true;
  if (socket) return;
  const url = (location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + '/ws';
  const ws = new WebSocket(url);
  socket = ws;
  ws.onopen = () => {
    retry = 1000;
    setConnected(true);
  };
  ws.onmessage = (m) => {
    if (typeof m.data !== 'string' || m.data === 'pong') return;
    let msg;
    try {
      msg = JSON.parse(m.data);
    } catch (_) {
      return;
    }
    const fns = listeners.get(msg.type);
    if (fns) fns.forEach((f) => f(msg.data, msg));
    const all = listeners.get('*');
    if (all) all.forEach((f) => f(msg.data, msg));
  };
  ws.onclose = () => {
    socket = null;
    setConnected(false);
    if (!wanted) return;
    setTimeout(connectLive, retry);
    retry = Math.min(retry * 2, 30000);
  };
}

export function disconnectLive() {
  wanted = false;
  if (socket) socket.close();
}

/** Calls `fn(data, message)` for each /ws message of these types (`'*'` for all). */
export function onMessage(types, fn) {
  const list = Array.isArray(types) ? types : [types];
  list.forEach((t) => {
    if (!listeners.has(t)) listeners.set(t, new Set());
    listeners.get(t).add(fn);
  });
  return () => list.forEach((t) => listeners.get(t).delete(fn));
}

/** `onMessage` for a component's lifetime; `fn` may change between renders. */
export function useMessages(types, fn) {
  const ref = useRef(fn);
  ref.current = fn;
  const key = Array.isArray(types) ? types.join(',') : types;
  useEffect(() => onMessage(key.split(','), (d, m) => ref.current(d, m)), [key]);
}

/** True while /ws is connected. */
export function useLiveConnected() {
  const [v, setV] = useState(wsConnected);
  useEffect(() => {
    connection.add(setV);
    return () => connection.delete(setV);
  }, []);
  return v;
}

// ---- Session and navigation -----------------------------------------------------------------------

/** The caller as `/auth/me` describes it (`{kind, id, name, role, scopes, must_change_password}`). */
export const session = { me: null };

/** True when the session's scopes allow `scope` (`admin` allows everything). */
export function can(scope) {
  const s = (session.me && session.me.scopes) || [];
  return s.includes('admin') || s.includes(scope) || (scope === 'read:cameras' && s.includes('write:cameras'));
}

const routeListeners = new Set();
export function onRoute(fn) {
  routeListeners.add(fn);
  return () => routeListeners.delete(fn);
}

/** Goes to an app path (`/events/<id>`), without a reload. */
export function navigate(path, { replace = false } = {}) {
  if (path === location.pathname + location.search) return;
  if (replace) history.replaceState(null, '', path);
  else history.pushState(null, '', path);
  routeListeners.forEach((f) => f());
  window.scrollTo(0, 0);
}
addEventListener('popstate', () => routeListeners.forEach((f) => f()));

/** A link inside the app. */
export function Link({ href, children, ...rest }) {
  const click = (e) => {
    if (e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
    e.preventDefault();
    navigate(href);
  };
  return html`<a href=${href} onClick=${click} ...${rest}>${children}</a>`;
}

/** The query string of the current URL as an object, and a setter that replaces it. */
export function useQuery() {
  const get = () => Object.fromEntries(new URLSearchParams(location.search));
  const [q, setQ] = useState(get);
  useEffect(() => onRoute(() => setQ(get())), []);
  const set = useCallback((next) => {
    const p = new URLSearchParams();
    Object.entries(next).forEach(([k, v]) => v !== undefined && v !== null && v !== '' && p.set(k, v));
    const s = p.toString();
    navigate(location.pathname + (s ? '?' + s : ''), { replace: true });
  }, []);
  return [q, set];
}

/** A form's submit handler around `run(event)`: `[submit, busy, error, setError]`. The error is
 *  what `run` threw (an ApiError names its field); busy is true while it runs. */
export function useSubmit(run) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(null);
  const submit = async (e) => {
    if (e && e.preventDefault) e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      await run(e);
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  return [submit, busy, error, setError];
}

// ---- Components -------------------------------------------------------------------------------------

let fieldSeq = 0;
/** A labelled control with its hint and the API's error when that error names `name`.
 *  `children` is a function of the control's id: `(id) => html\`<input id=${id} .../>\``. */
export function Field({ label, name, error, hint, children }) {
  const id = useMemo(() => `f${++fieldSeq}-${name || 'x'}`, [name]);
  const err = fieldError(error, name);
  return html`<div class=${'field' + (err ? ' invalid' : '')}>
    <label for=${id}>${label}</label>
    ${typeof children === 'function' ? children(id, err ? `${id}-err` : undefined) : children}
    ${hint && !err ? html`<small class="hint">${hint}</small>` : null}
    ${err ? html`<small class="error" id=${`${id}-err`} role="alert">${err}</small>` : null}
  </div>`;
}

/** The error's detail when it names `name`, else null. */
export function fieldError(error, name) {
  return error && name && error.field === name ? error.detail : null;
}

/** A form-level error: shown unless one of `fields` shows it next to the field. */
export function FormError({ error, fields = [] }) {
  if (!error || (error.field && fields.includes(error.field))) return null;
  return html`<p class="error banner" role="alert">${error.detail || String(error)}</p>`;
}

/** Previous / next page buttons, with "page P of N". */
export function Pager({ page, pages, onPage }) {
  if (!pages || pages <= 1) return null;
  return html`<nav class="pager" aria-label="Pages">
    <button type="button" disabled=${page <= 1} onClick=${() => onPage(page - 1)}>Previous</button>
    <span>Page ${page} of ${pages}</span>
    <button type="button" disabled=${page >= pages} onClick=${() => onPage(page + 1)}>Next</button>
  </nav>`;
}

export function Spinner({ label = 'Loading' }) {
  return html`<p class="muted" role="status" aria-live="polite">${label}…</p>`;
}

export function Empty({ children }) {
  return html`<p class="muted empty">${children}</p>`;
}

/** A page heading with optional actions on the right. */
export function Header({ title, children }) {
  return html`<header class="page-head"><h1>${title}</h1><div class="actions">${children}</div></header>`;
}

const toasts = new Set();
/** A short message at the bottom of the screen (`kind`: 'ok' or 'error'). */
export function toast(text, kind = 'ok') {
  toasts.forEach((f) => f({ text, kind, at: Date.now() }));
}
export function Toasts() {
  const [list, setList] = useState([]);
  useEffect(() => {
    const add = (t) => {
      setList((l) => [...l, t]);
      setTimeout(() => setList((l) => l.filter((x) => x !== t)), 4000);
    };
    toasts.add(add);
    return () => toasts.delete(add);
  }, []);
  return html`<div class="toasts" role="status" aria-live="polite">
    ${list.map((t) => html`<div class=${'toast ' + t.kind}>${t.text}</div>`)}
  </div>`;
}

// ---- Formatting --------------------------------------------------------------------------------------

const dtf = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'medium' });
/** A time in the browser's zone. */
export function fmtTime(iso) {
  if (!iso) return '';
  const d = new Date(iso);
  return isNaN(d) ? iso : dtf.format(d);
}

/** "12 s ago", "5 min ago", ... */
export function fmtAgo(iso) {
  if (!iso) return 'never';
  const s = Math.round((Date.now() - new Date(iso).getTime()) / 1000);
  if (s < 60) return `${Math.max(s, 0)} s ago`;
  if (s < 3600) return `${Math.round(s / 60)} min ago`;
  if (s < 86400) return `${Math.round(s / 3600)} h ago`;
  return `${Math.round(s / 86400)} d ago`;
}

export function fmtBytes(n) {
  if (n === null || n === undefined) return '';
  const u = ['B', 'KB', 'MB', 'GB', 'TB'];
  let i = 0;
  let v = Number(n);
  while (v >= 1000 && i < u.length - 1) {
    v /= 1000;
    i++;
  }
  return `${v >= 100 || i === 0 ? Math.round(v) : v.toFixed(1)} ${u[i]}`;
}

export function fmtUsd(x) {
  if (x === null || x === undefined) return '';
  return '$' + Number(x).toFixed(x < 0.01 && x > 0 ? 4 : 2);
}

/** A `datetime-local` input's value (local time) as RFC 3339 UTC, or '' when empty. */
export function localToIso(v) {
  if (!v) return '';
  const d = new Date(v);
  return isNaN(d) ? '' : d.toISOString();
}

/** RFC 3339 as a `datetime-local` input's value in local time. */
export function isoToLocal(iso) {
  if (!iso) return '';
  const d = new Date(iso);
  if (isNaN(d)) return '';
  const p = (n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}`;
}

// ---- Unread notifications ------------------------------------------------------------------------

const unreadListeners = new Set();
/** Asks the header's badge to count unread notifications again (after marking some read). */
export function unreadChanged() {
  unreadListeners.forEach((f) => f());
}
export function onUnreadChanged(fn) {
  unreadListeners.add(fn);
  return () => unreadListeners.delete(fn);
}

const sheets = new Set();
/** Loads a page's own style sheet once: `css(new URL('./events.css', import.meta.url))`. */
export function css(url) {
  const href = String(url);
  if (sheets.has(href)) return;
  sheets.add(href);
  const link = document.createElement('link');
  link.rel = 'stylesheet';
  link.href = href;
  document.head.append(link);
}
