// The UniFi Protect page (/protect): the consoles the appliance follows with their live status
// (`protect.status`), the add / edit form with its connection test, and for each console its
// cameras: which ones the appliance analyses and which detections become events.
import {
  html, useState, useEffect, api, useApi, useMessages, Field, FormError, Spinner, Empty, Header, Link,
  toast, fmtTime, fmtAgo, can, css,
} from '../lib.mjs';

css(new URL('./protect.css', import.meta.url));

const FILTERS = ['person', 'vehicle', 'package', 'animal', 'motion', 'ring'];
const STATUS = {
  connected: ['ok', 'Connected'],
  connecting: ['', 'Connecting'],
  error: ['error', 'Error'],
  disconnected: ['', 'Disabled'],
};

export default function Protect() {
  const list = useApi('/protect/controllers');
  const [editing, setEditing] = useState(null); // null, 'new' or a controller
  const [open, setOpen] = useState(null); // the controller whose cameras show
  const write = can('write:cameras');

  useMessages('protect.status', (d) => {
    list.setData((l) =>
      l && l.map((c) => (c.id === d.controller_id
        ? { ...c, status: d.status, is_connected: d.status === 'connected', last_error: d.error || (d.status === 'connected' ? null : c.last_error), last_connected_at: d.status === 'connected' ? new Date().toISOString() : c.last_connected_at }
        : c)));
  });

  const saved = (c, isNew) => {
    list.setData((l) => (isNew ? [...(l || []), c] : (l || []).map((x) => (x.id === c.id ? c : x))));
    setEditing(null);
    toast(isNew ? `Added ${c.name}` : `Saved ${c.name}`);
  };
  const remove = async (c) => {
    if (!confirm(`Delete the console "${c.name}"? Its cameras and their events are deleted too.`)) return;
    try {
      await api('DELETE', `/protect/controllers/${c.id}`);
      list.setData((l) => l.filter((x) => x.id !== c.id));
      if (open === c.id) setOpen(null);
      toast(`Deleted ${c.name}`);
    } catch (e) {
      toast(e.detail || String(e), 'error');
    }
  };

  return html`<section class="protect">
    <${Header} title="UniFi Protect">
      ${write && editing !== 'new' ? html`<button type="button" class="primary" onClick=${() => setEditing('new')}>Add a console</button>` : null}
    </${Header}>
    <p class="muted">The appliance logs in to UniFi Protect consoles with a local account and turns the smart detections and doorbell rings of the cameras you choose into events.</p>
    ${editing === 'new' ? html`<${ControllerForm} onSaved=${(c) => saved(c, true)} onCancel=${() => setEditing(null)} />` : null}
    ${list.error ? html`<p class="error banner" role="alert">${list.error.detail}</p>` : null}
    ${list.loading && !list.data ? html`<${Spinner} />` : null}
    ${list.data && !list.data.length ? html`<${Empty}>No console yet.${write ? ' Add one to follow its cameras.' : ''}</${Empty}>` : null}
    ${(list.data || []).map((c) => (editing && editing.id === c.id
      ? html`<${ControllerForm} key=${c.id} controller=${c} onSaved=${(x) => saved(x, false)} onCancel=${() => setEditing(null)} />`
      : html`<${ControllerCard} key=${c.id} c=${c} write=${write} open=${open === c.id}
          onToggle=${() => setOpen(open === c.id ? null : c.id)} onEdit=${() => setEditing(c)} onDelete=${() => remove(c)} />`))}
  </section>`;
}

function ControllerCard({ c, write, open, onToggle, onEdit, onDelete }) {
  const [test, setTest] = useState(null);
  const [busy, setBusy] = useState(false);
  const [kind, label] = STATUS[c.status] || ['', c.status];
  const runTest = async () => {
    setBusy(true);
    setTest(null);
    try {
      setTest(await api('POST', `/protect/controllers/${c.id}/test`));
    } catch (e) {
      setTest({ success: false, message: e.detail || String(e) });
    } finally {
      setBusy(false);
    }
  };
  return html`<article class="card controller">
    <div class="controller-head">
      <div>
        <h2>${c.name} <span class=${'pill ' + kind}>${label}</span></h2>
        <p class="muted">${c.host}:${c.port} · ${c.username}${c.verify_ssl ? ' · certificate verified' : ''}</p>
        <p class="muted">Last connected: ${c.last_connected_at ? html`<span title=${fmtTime(c.last_connected_at)}>${fmtAgo(c.last_connected_at)}</span>` : 'never'}</p>
        ${c.last_error && (c.status === 'error' || c.status === 'connecting') ? html`<p class="error">Last error: ${c.last_error}</p>` : null}
      </div>
      <div class="actions">
        <button type="button" aria-expanded=${open} onClick=${onToggle}>${open ? 'Hide cameras' : 'Cameras'}</button>
        ${write ? html`
          <button type="button" disabled=${busy} onClick=${runTest}>${busy ? 'Testing…' : 'Test'}</button>
          <button type="button" onClick=${onEdit}>Edit</button>
          <button type="button" class="danger" onClick=${onDelete}>Delete</button>` : null}
      </div>
    </div>
    ${test ? html`<${TestResult} r=${test} />` : null}
    ${open ? html`<${Cameras} controller=${c} write=${write} />` : null}
  </article>`;
}

function TestResult({ r }) {
  return html`<p class=${r.success ? 'ok test-result' : 'error banner'} role=${r.success ? 'status' : 'alert'}>
    ${r.success ? '✓ ' : 'Test failed: '}${r.message}
    ${r.firmware_version ? html` · firmware ${r.firmware_version}` : null}
  </p>`;
}

/** Add (no `controller`) or edit a console; Test tries the form's settings without saving. */
function ControllerForm({ controller, onSaved, onCancel }) {
  const c = controller;
  const [f, setF] = useState({
    name: c ? c.name : '',
    host: c ? c.host : '',
    port: c ? String(c.port) : '443',
    username: c ? c.username : '',
    password: '',
    verify_ssl: c ? c.verify_ssl : false,
    is_enabled: c ? c.is_enabled : true,
  });
  const [error, setError] = useState(null);
  const [test, setTest] = useState(null);
  const [busy, setBusy] = useState(null); // 'test' | 'save'
  const set = (k) => (e) => setF({ ...f, [k]: e.target.type === 'checkbox' ? e.target.checked : e.target.value });
  const port = f.port === '' ? null : Number(f.port);

  const runTest = async () => {
    setBusy('test');
    setError(null);
    setTest(null);
    try {
      if (c && !f.password) setTest({ ...(await api('POST', `/protect/controllers/${c.id}/test`)), saved: true });
      else setTest(await api('POST', '/protect/controllers/test', { host: f.host, port, username: f.username, password: f.password, verify_ssl: f.verify_ssl }));
    } catch (e) {
      if (e.field) setError(e);
      else setTest({ success: false, message: e.detail || String(e) });
    } finally {
      setBusy(null);
    }
  };
  const submit = async (e) => {
    e.preventDefault();
    setBusy('save');
    setError(null);
    try {
      const body = { name: f.name, host: f.host, port, username: f.username, verify_ssl: f.verify_ssl };
      if (c) {
        if (f.password) body.password = f.password;
        body.is_enabled = f.is_enabled;
        onSaved(await api('PUT', `/protect/controllers/${c.id}`, body));
      } else {
        onSaved(await api('POST', '/protect/controllers', { ...body, password: f.password }));
      }
    } catch (err) {
      setError(err);
      setBusy(null);
    }
  };
  const fields = ['name', 'host', 'port', 'username', 'password'];
  return html`<form class="card controller-form" onSubmit=${submit} aria-label=${c ? `Edit ${c.name}` : 'Add a console'}>
    <h2>${c ? `Edit ${c.name}` : 'Add a console'}</h2>
    <div class="form-grid">
      <${Field} label="Name" name="name" error=${error} hint="Unique, up to 100 characters">${(id, err) => html`<input id=${id} value=${f.name} onInput=${set('name')} required maxlength="100" aria-describedby=${err} />`}</${Field}>
      <${Field} label="Host" name="host" error=${error} hint="Host name or IP address, without https:// or port">${(id, err) => html`<input id=${id} value=${f.host} onInput=${set('host')} required placeholder="192.168.1.1" autocomplete="off" aria-describedby=${err} />`}</${Field}>
      <${Field} label="Port" name="port" error=${error} hint="HTTPS port, normally 443">${(id, err) => html`<input id=${id} type="number" min="1" max="65535" value=${f.port} onInput=${set('port')} aria-describedby=${err} />`}</${Field}>
      <${Field} label="Username" name="username" error=${error} hint="A local account, not a Ubiquiti cloud login">${(id, err) => html`<input id=${id} value=${f.username} onInput=${set('username')} required autocomplete="off" aria-describedby=${err} />`}</${Field}>
      <${Field} label="Password" name="password" error=${error} hint=${c ? 'Leave empty to keep the saved password' : 'Stored encrypted, never shown again'}>${(id, err) => html`<input id=${id} type="password" value=${f.password} onInput=${set('password')} required=${!c} autocomplete="new-password" placeholder=${c ? 'unchanged' : ''} aria-describedby=${err} />`}</${Field}>
    </div>
    <div class="field check">
      <input id="pc-verify" type="checkbox" checked=${f.verify_ssl} onChange=${set('verify_ssl')} />
      <label for="pc-verify">Verify the console's TLS certificate</label>
      <small class="hint">Off by default: consoles ship self-signed certificates. The connection is still encrypted.</small>
    </div>
    ${c ? html`<div class="field check">
      <input id="pc-enabled" type="checkbox" checked=${f.is_enabled} onChange=${set('is_enabled')} />
      <label for="pc-enabled">Follow this console (connect to it)</label>
    </div>` : null}
    <${FormError} error=${error} fields=${fields} />
    ${test ? html`<${TestResult} r=${test} />` : null}
    ${test && test.saved ? html`<p class="hint">Tested the saved settings; enter the password to test changed ones.</p>` : null}
    <div class="row">
      <button type="button" disabled=${!!busy} onClick=${runTest}>${busy === 'test' ? 'Testing…' : 'Test'}</button>
      <button type="submit" class="primary" disabled=${!!busy}>${busy === 'save' ? 'Saving…' : 'Save'}</button>
      <button type="button" class="link" onClick=${onCancel}>Cancel</button>
    </div>
  </form>`;
}

function Cameras({ controller, write }) {
  const [refresh, setRefresh] = useState(0);
  const cams = useApi(`/protect/controllers/${controller.id}/cameras${refresh ? `?force_refresh=true&n=${refresh}` : ''}`);
  const update = (cam) => cams.setData((l) => l.map((x) => (x.protect_camera_id === cam.protect_camera_id ? cam : x)));
  return html`<div class="protect-cameras">
    <div class="row between">
      <h3>Cameras</h3>
      <button type="button" disabled=${cams.loading} onClick=${() => setRefresh(refresh + 1)}>${cams.loading ? 'Loading…' : 'Reload from the console'}</button>
    </div>
    ${cams.error ? html`<p class="error banner" role="alert">${cams.error.detail}</p>` : null}
    ${cams.loading && !cams.data ? html`<${Spinner} label="Asking the console" />` : null}
    ${cams.data && !cams.data.length ? html`<${Empty}>The console reports no camera.</${Empty}>` : null}
    <div class="grid">
      ${(cams.data || []).map((cam) => html`<${CameraCard} key=${cam.protect_camera_id} controller=${controller} cam=${cam} write=${write} onChange=${update} />`)}
    </div>
  </div>`;
}

function defaults(cam) {
  if (cam.camera_id && cam.smart_detection_types.length) return cam.smart_detection_types;
  return ['person', 'vehicle', 'package', ...(cam.is_doorbell ? ['ring'] : [])];
}

function CameraCard({ controller, cam, write, onChange }) {
  const [types, setTypes] = useState(() => defaults(cam));
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  useEffect(() => setTypes(defaults(cam)), [cam.is_enabled_for_ai, cam.smart_detection_types.join()]);
  const base = `/protect/controllers/${controller.id}/cameras/${encodeURIComponent(cam.protect_camera_id)}`;
  const on = cam.is_enabled_for_ai;
  const changed = on && types.slice().sort().join() !== cam.smart_detection_types.slice().sort().join();
  const run = async (method, path, body, done) => {
    setBusy(true);
    setError(null);
    try {
      onChange(await api(method, base + path, body));
      toast(done);
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  };
  const toggle = (t) => (e) => setTypes(e.target.checked ? [...types, t] : types.filter((x) => x !== t));
  const errId = `pf-${cam.protect_camera_id}-err`;
  const caps = cam.smart_detection_capabilities;
  return html`<div class="protect-camera">
    <h4>${cam.name || cam.protect_camera_id}</h4>
    <p class="muted">
      ${cam.model || cam.type}${cam.is_doorbell ? ' · doorbell' : ''}
      ${' '}<span class=${'pill ' + (cam.is_online ? 'ok' : 'error')}>${cam.is_online ? 'online' : 'offline'}</span>
      ${' '}<span class=${'pill ' + (on ? 'streaming' : '')}>${on ? 'analysed' : 'not analysed'}</span>
    </p>
    ${caps.length ? html`<p class="muted small">Smart detections: ${caps.join(', ')}</p>` : null}
    <fieldset class="filter" disabled=${!write || busy} aria-describedby=${error ? errId : undefined}>
      <legend>Which detections become events</legend>
      ${FILTERS.filter((t) => t !== 'ring' || cam.is_doorbell).map((t) => html`<label class="chk">
        <input type="checkbox" checked=${types.includes(t)} onChange=${toggle(t)} />
        ${t}${t !== 'motion' && t !== 'ring' && caps.length && !caps.includes(t) ? html`<span class="muted"> (not on this camera)</span>` : null}
      </label>`)}
    </fieldset>
    ${error ? html`<small class="error" id=${errId} role="alert">${error.detail}</small>` : null}
    ${write ? html`<div class="row">
      ${on ? html`
        <button type="button" class="primary" disabled=${busy || !changed} onClick=${() => run('PUT', '/filters', { smart_detection_types: types }, `Filters saved for ${cam.name}`)}>Save filters</button>
        <button type="button" disabled=${busy} onClick=${() => run('POST', '/disable', undefined, `${cam.name} is no longer analysed`)}>Disable</button>`
      : html`<button type="button" class="primary" disabled=${busy} onClick=${() => run('POST', '/enable', { smart_detection_types: types }, `${cam.name} is analysed`)}>Enable</button>`}
      ${cam.camera_id ? html`<${Link} href=${`/cameras/${cam.camera_id}`}>Camera settings</${Link}>` : null}
    </div>` : null}
  </div>`;
}
