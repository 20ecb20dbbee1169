// /cameras/new and /cameras/<id>: the form that adds or changes a camera (source, analysis,
// schedule, motion zones), its connection test, and deleting it. PUT sends only what changed.
import {
  html, useState, useEffect, api, useMessages, Field, FormError, Header, Link, Spinner, toast, navigate, can, fieldError,
} from '../lib.mjs';
import { CLASSES, StatusPill } from './camera-shared.mjs';
import ZoneEditor from './zones.mjs';

const DAYS = ['Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat', 'Sun'];
const FIELDS = [
  'name', 'type', 'rtsp_url', 'username', 'password', 'rtsp_transport', 'device_path', 'file_path',
  'frame_rate', 'is_enabled', 'motion_enabled', 'motion_sensitivity', 'motion_cooldown', 'object_filter',
  'detection_schedule', 'detection_zones', 'prompt_override',
];

/** The form's state for a camera (or the defaults of a new one). */
function toForm(c, defaults = {}) {
  const s = c && c.detection_schedule;
  return {
    name: c ? c.name : '',
    type: c ? c.type : 'rtsp',
    rtsp_url: (c && c.rtsp_url) || '',
    username: (c && c.username) || '',
    password: '',
    clear_password: false,
    rtsp_transport: (c && c.rtsp_transport) || 'tcp',
    device_path: (c && (c.device_path || (c.device_index !== null && c.device_index !== undefined ? `/dev/video${c.device_index}` : ''))) || '',
    file_path: (c && c.file_path) || '',
    frame_rate: String(c ? c.frame_rate : 5),
    is_enabled: c ? c.is_enabled : true,
    motion_enabled: c ? c.motion_enabled : true,
    motion_sensitivity: c ? c.motion_sensitivity : 'medium',
    motion_cooldown: String(c ? c.motion_cooldown : defaults.default_motion_cooldown ?? 60),
    object_filter: c ? [...c.object_filter] : [...(defaults.default_object_filter || ['person', 'vehicle'])],
    had_schedule: !!s,
    schedule_on: !!(s && s.enabled !== false),
    days: s ? [...s.days] : [0, 1, 2, 3, 4, 5, 6],
    time_ranges: s && s.time_ranges.length ? s.time_ranges.map((r) => ({ ...r })) : [{ start: '08:00', end: '18:00' }],
    prompt_override: (c && c.prompt_override) || '',
    detection_zones: c ? c.detection_zones.map((z) => ({ ...z, vertices: z.vertices.map((p) => ({ ...p })) })) : [],
  };
}

/** The source fields of the form's camera type (what POST /cameras/test takes too). */
function sourceBody(f) {
  if (f.type === 'rtsp') {
    const b = { type: 'rtsp', rtsp_url: f.rtsp_url.trim(), username: f.username.trim() || null, rtsp_transport: f.rtsp_transport };
    if (f.password) b.password = f.password;
    return b;
  }
  if (f.type === 'usb') return { type: 'usb', device_path: f.device_path.trim() || null };
  if (f.type === 'file') return { type: 'file', file_path: f.file_path.trim() };
  return { type: f.type };
}

/** The whole camera as the API takes it (the password only when one was typed). */
function body(f) {
  const days = [...f.days].sort();
  const schedule = { enabled: f.schedule_on, days, time_ranges: f.time_ranges };
  const scheduleValid = days.length && f.time_ranges.length && f.time_ranges.every((r) => r.start && r.end);
  const b = {
    name: f.name.trim(),
    ...sourceBody(f),
    frame_rate: Number(f.frame_rate),
    is_enabled: f.is_enabled,
    motion_enabled: f.motion_enabled,
    motion_sensitivity: f.motion_sensitivity,
    motion_cooldown: Number(f.motion_cooldown),
    object_filter: CLASSES.filter((c) => f.object_filter.includes(c)),
    // Unticked, a stored schedule is kept but off (an incomplete one is dropped).
    detection_schedule: f.schedule_on || (f.had_schedule && scheduleValid) ? schedule : null,
    detection_zones: f.detection_zones,
    prompt_override: f.prompt_override.trim() || null,
  };
  if (f.type === 'protect') delete b.type;
  if (f.clear_password && !f.password) b.password = null;
  return b;
}

/** POST: the non-empty fields. PUT: the fields that differ from the camera as loaded. */
function changes(f, original) {
  const b = body(f);
  if (!original) {
    Object.keys(b).forEach((k) => b[k] === null && delete b[k]);
    return b;
  }
  const before = body(toForm(original));
  const out = {};
  Object.keys(b).forEach((k) => {
    if (k === 'password' || JSON.stringify(b[k]) !== JSON.stringify(before[k])) out[k] = b[k];
  });
  return out;
}

/** A checkbox with its label after it. */
function Check({ name, label, checked, onChange, value, disabled }) {
  const id = `cb-${name}-${value ?? ''}`;
  return html`<div class="field check">
    <input type="checkbox" id=${id} name=${name} value=${value} checked=${checked} disabled=${disabled} onChange=${(e) => onChange(e.target.checked)} />
    <label for=${id}>${label}</label>
  </div>`;
}

function TestResult({ test }) {
  const r = test.result;
  let body = null;
  if (test.busy) body = html`<span class="muted">Connecting to the camera…</span>`;
  else if (test.error) body = html`<span class="error">${test.error.detail}</span>`;
  else if (r && r.success) {
    const fps = r.fps !== null && r.fps !== undefined ? `${Math.round(r.fps * 10) / 10} fps` : '';
    body = html`<span class="ok">${['Connected:', r.resolution, r.codec, fps].filter(Boolean).join(' ')}</span>
      ${r.thumbnail ? html`<img class="test-thumb" src=${r.thumbnail} alt="The camera's first picture" />` : null}`;
  } else if (r) body = html`<span class="error">${r.message}</span>`;
  return html`<div id="camera-test-result" role="status" aria-live="polite" class=${'test-result' + ((r && !r.success) || test.error ? ' error' : '')}>${body}</div>`;
}

export default function CameraEdit({ params }) {
  const id = params && params[0];
  const write = can('write:cameras');
  const [camera, setCamera] = useState(null);
  const [form, setForm] = useState(id ? null : toForm(null));
  const [loadError, setLoadError] = useState(null);
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(null); // 'save' | 'delete'
  const [test, setTest] = useState({ busy: false, result: null, error: null });

  useEffect(() => {
    if (id) {
      api('GET', `/cameras/${encodeURIComponent(id)}`).then(
        (c) => {
          setCamera(c);
          setForm(toForm(c));
        },
        setLoadError,
      );
    } else if (can('admin')) {
      // The appliance's defaults for a new camera's classes and cooldown.
      api('GET', '/system/settings').then((s) => setForm((f) => ({ ...toForm(null, s), ...pick(f) })), () => {});
    }
  }, [id]);

  useMessages('camera.status', (m) => {
    if (m.camera_id !== id) return;
    const { camera_id, name, ...status } = m;
    setCamera((c) => c && { ...c, status: { ...c.status, ...status } });
  });

  if (loadError) {
    return html`<section><${Header} title="Camera" /><${FormError} error=${loadError} /><p><${Link} href="/cameras">All cameras</${Link}></p></section>`;
  }
  if (!form) return html`<${Spinner} />`;

  const set = (k, v) => setForm((f) => ({ ...f, [k]: v }));
  const input = (k) => (e) => set(k, e.target.value);
  const fieldErr = (e) => {
    if (e.status === 409) e.field = 'name';
    if (e.field === 'device_index') e.field = 'device_path';
    return e;
  };

  const runTest = async () => {
    setTest({ busy: true, result: null, error: null });
    try {
      const b = sourceBody(form);
      Object.keys(b).forEach((k) => b[k] === null && delete b[k]);
      setTest({ busy: false, result: await api('POST', '/cameras/test', b), error: null });
    } catch (e) {
      setTest({ busy: false, result: null, error: fieldErr(e) });
      if (e.field) setError(e);
    }
  };

  const save = async (e) => {
    e.preventDefault();
    setBusy('save');
    setError(null);
    try {
      const b = changes(form, camera);
      if (camera) {
        const c = Object.keys(b).length ? await api('PUT', `/cameras/${camera.id}`, b) : camera;
        setCamera(c);
        setForm(toForm(c));
        toast(`Saved ${c.name}`);
      } else {
        const c = await api('POST', '/cameras', b);
        toast(`Added ${c.name}`);
        navigate(`/cameras/${c.id}`, { replace: true });
      }
    } catch (err) {
      setError(fieldErr(err));
    } finally {
      setBusy(null);
    }
  };

  const remove = async () => {
    if (!confirm(`Delete the camera "${camera.name}" with all its events and snapshots?`)) return;
    setBusy('delete');
    setError(null);
    try {
      await api('DELETE', `/cameras/${camera.id}`);
      toast(`Deleted ${camera.name}`);
      navigate('/cameras');
    } catch (err) {
      setError(err);
      setBusy(null);
    }
  };

  const f = form;
  const typeOptions = ['rtsp', 'usb', ...(['rtsp', 'usb'].includes(f.type) ? [] : [f.type])];
  const hasPassword = camera && camera.has_password;
  const passwordHint = hasPassword
    ? 'A password is stored and never shown. Leave blank to keep it. The test uses only a password typed here.'
    : 'Leave blank for none. Credentials in the URL are moved here when saved.';
  const toggle = (list, v, on) => (on ? [...list.filter((x) => x !== v), v] : list.filter((x) => x !== v));
  const setRange = (i, k, v) => set('time_ranges', f.time_ranges.map((r, j) => (j === i ? { ...r, [k]: v } : r)));
  const scheduleErr = fieldError(error, 'detection_schedule');
  const filterErr = fieldError(error, 'object_filter');

  return html`<section class="camera-edit">
    <${Header} title=${camera ? camera.name : 'Add camera'}>
      ${camera ? html`<${StatusPill} status=${camera.status} />` : null}
      ${camera ? html`<${Link} href=${`/events?camera_id=${encodeURIComponent(camera.id)}`}>Events</${Link}>` : null}
      <${Link} href="/cameras">All cameras</${Link}>
    </${Header}>
    ${camera && camera.status && camera.status.error ? html`<p class="error">${camera.status.error}</p>` : null}
    ${!write ? html`<p class="muted">You can look at this camera's settings but not change them.</p>` : null}
    <form class="cam-form" onSubmit=${save} novalidate>
      <fieldset class="card" disabled=${!write}>
        <legend>Source</legend>
        <${Field} label="Name" name="name" error=${error}>${(fid, errId) => html`<input id=${fid} name="name" value=${f.name} maxlength="100" required aria-describedby=${errId} onInput=${input('name')} />`}</${Field}>
        <${Field} label="Type" name="type" error=${error}>${(fid) => html`<select id=${fid} name="type" value=${f.type} disabled=${f.type === 'protect'} onChange=${input('type')}>
          ${typeOptions.map((t) => html`<option value=${t}>${{ rtsp: 'RTSP / RTSPS stream', usb: 'USB camera', file: 'File (H.264 on the appliance)', protect: 'UniFi Protect' }[t] || t}</option>`)}
        </select>`}</${Field}>
        ${f.type === 'rtsp'
          ? html`<${Field} label="Stream URL" name="rtsp_url" error=${error} hint="rtsp://host:554/path or rtsps://…">${(fid, errId) => html`<input id=${fid} name="rtsp_url" type="url" inputmode="url" autocomplete="off" spellcheck="false" placeholder="rtsp://192.168.1.20:554/stream1" value=${f.rtsp_url} aria-describedby=${errId} onInput=${input('rtsp_url')} />`}</${Field}>
            <div class="two">
              <${Field} label="Username" name="username" error=${error}>${(fid) => html`<input id=${fid} name="username" autocomplete="off" spellcheck="false" value=${f.username} onInput=${input('username')} />`}</${Field}>
              <${Field} label="Password" name="password" error=${error} hint=${passwordHint}>${(fid) => html`<input id=${fid} name="password" type="password" autocomplete="new-password" placeholder=${hasPassword ? '(stored; blank keeps it)' : ''} value=${f.password} onInput=${input('password')} />`}</${Field}>
            </div>
            ${hasPassword ? html`<${Check} name="clear_password" label="Remove the stored password" checked=${f.clear_password} onChange=${(v) => set('clear_password', v)} />` : null}
            <${Field} label="Transport" name="rtsp_transport" error=${error} hint="TCP works through most networks; UDP has less delay on a clean LAN.">${(fid) => html`<select id=${fid} name="rtsp_transport" value=${f.rtsp_transport} onChange=${input('rtsp_transport')}>
              <option value="tcp">TCP</option><option value="udp">UDP</option>
            </select>`}</${Field}>`
          : null}
        ${f.type === 'usb'
          ? html`<${Field} label="Device" name="device_path" error=${error} hint="A video device of the appliance, e.g. /dev/video0">${(fid) => html`<input id=${fid} name="device_path" autocomplete="off" spellcheck="false" placeholder="/dev/video0" value=${f.device_path} onInput=${input('device_path')} />`}</${Field}>`
          : null}
        ${f.type === 'file'
          ? html`<${Field} label="File" name="file_path" error=${error} hint="An Annex B .h264 file on the appliance, played in a loop">${(fid) => html`<input id=${fid} name="file_path" autocomplete="off" spellcheck="false" value=${f.file_path} onInput=${input('file_path')} />`}</${Field}>`
          : null}
        ${f.type !== 'protect'
          ? html`<div class="row">
              <button type="button" id="camera-test" disabled=${test.busy} onClick=${runTest}>${test.busy ? 'Testing…' : 'Test connection'}</button>
            </div>
            <${TestResult} test=${test} />`
          : html`<p class="muted">A UniFi Protect camera's source is its controller (Protect page).</p>`}
      </fieldset>

      <fieldset class="card analysis" disabled=${!write}>
        <legend>Analysis</legend>
        <${Check} name="is_enabled" label="Enabled (capture and analyse this camera)" checked=${f.is_enabled} onChange=${(v) => set('is_enabled', v)} />
        <${Field} label="Analysis rate (frames per second)" name="frame_rate" error=${error} hint="1 to 30; 5 is plenty for most cameras.">${(fid, errId) => html`<input id=${fid} name="frame_rate" type="number" min="1" max="30" step="1" inputmode="numeric" value=${f.frame_rate} aria-describedby=${errId} onInput=${input('frame_rate')} />`}</${Field}>
        <${Check} name="motion_enabled" label="Motion detection" checked=${f.motion_enabled} onChange=${(v) => set('motion_enabled', v)} />
        <div class="two">
          <${Field} label="Motion sensitivity" name="motion_sensitivity" error=${error}>${(fid) => html`<select id=${fid} name="motion_sensitivity" value=${f.motion_sensitivity} onChange=${input('motion_sensitivity')}>
            <option value="low">Low</option><option value="medium">Medium</option><option value="high">High</option>
          </select>`}</${Field}>
          <${Field} label="Cooldown (seconds)" name="motion_cooldown" error=${error} hint="0 to 3600: no new motion event this long after one.">${(fid, errId) => html`<input id=${fid} name="motion_cooldown" type="number" min="0" max="3600" step="1" inputmode="numeric" value=${f.motion_cooldown} aria-describedby=${errId} onInput=${input('motion_cooldown')} />`}</${Field}>
        </div>
        <fieldset class=${'sub' + (filterErr ? ' invalid' : '')}>
          <legend>Raise events for</legend>
          <div class="checks">
            ${CLASSES.map((c) => html`<${Check} name="object_filter" value=${c} label=${c} checked=${f.object_filter.includes(c)} onChange=${(v) => set('object_filter', toggle(f.object_filter, c, v))} />`)}
          </div>
          ${filterErr ? html`<small class="error" role="alert">${filterErr}</small>` : null}
        </fieldset>
        <${Field} label="Description prompt (optional)" name="prompt_override" error=${error} hint="Replaces the AI description prompt for this camera; leave empty for the default.">${(fid, errId) => html`<textarea id=${fid} name="prompt_override" rows="3" maxlength="2000" aria-describedby=${errId} onInput=${input('prompt_override')} value=${f.prompt_override}></textarea>`}</${Field}>
      </fieldset>

      <fieldset class="card" disabled=${!write}>
        <legend>Schedule</legend>
        <${Check} name="enabled" label="Analyse only at these times" checked=${f.schedule_on} onChange=${(v) => set('schedule_on', v)} />
        ${f.schedule_on
          ? html`<fieldset class="sub">
              <legend>Days</legend>
              <div class="checks days">
                ${DAYS.map((d, i) => html`<${Check} name="days" value=${i} label=${d} checked=${f.days.includes(i)} onChange=${(v) => set('days', toggle(f.days, i, v))} />`)}
              </div>
            </fieldset>
            <fieldset class="sub">
              <legend>Times</legend>
              <small class="hint range-hint">The appliance's local time; an end before the start runs overnight.</small>
              ${f.time_ranges.map(
                (r, i) => html`<div class="range" key=${i}>
                  <div class="field"><label for=${`tr-start-${i}`}>From</label><input id=${`tr-start-${i}`} name="start" type="time" value=${r.start} onInput=${(e) => setRange(i, 'start', e.target.value)} /></div>
                  <div class="field"><label for=${`tr-end-${i}`}>To</label><input id=${`tr-end-${i}`} name="end" type="time" value=${r.end} onInput=${(e) => setRange(i, 'end', e.target.value)} /></div>
                  <button type="button" class="link" aria-label=${`Remove time range ${i + 1}`} disabled=${f.time_ranges.length <= 1} onClick=${() => set('time_ranges', f.time_ranges.filter((_, j) => j !== i))}>Remove</button>
                </div>`,
              )}
              <button type="button" disabled=${f.time_ranges.length >= 8} onClick=${() => set('time_ranges', [...f.time_ranges, { start: '00:00', end: '23:59' }])}>Add time range</button>
            </fieldset>`
          : html`<p class="muted">Motion is analysed at all times.</p>`}
        ${scheduleErr ? html`<small class="error" role="alert">${scheduleErr}</small>` : null}
      </fieldset>

      <fieldset class="card zones-card">
        <legend>Motion zones</legend>
        ${camera
          ? html`<${ZoneEditor} cameraId=${camera.id} live=${hasPicture(camera)} zones=${f.detection_zones} onChange=${(z) => set('detection_zones', z)}
              fallback=${test.result && test.result.thumbnail} error=${error} disabled=${!write} />`
          : html`<p class="muted">Save the camera first to draw zones on its picture.</p>`}
      </fieldset>

      <div class="form-foot">
        <${FormError} error=${error} fields=${FIELDS} />
        ${write
          ? html`<div class="row">
              <button type="submit" id="camera-save" class="primary" disabled=${!!busy}>${busy === 'save' ? 'Saving…' : camera ? 'Save' : 'Add camera'}</button>
              ${camera ? html`<button type="button" id="camera-delete" class="danger" disabled=${!!busy} onClick=${remove}>Delete camera</button>` : null}
              <${Link} href="/cameras">Cancel</${Link}>
            </div>`
          : null}
      </div>
    </form>
  </section>`;
}

/** True when the camera may have a recent picture (its snapshot is worth asking for). */
function hasPicture(c) {
  return !!c.status && ['streaming', 'connected'].includes(c.status.status);
}

/** What the user may already have typed in a new camera's form (kept when the defaults load). */
function pick(f) {
  const { object_filter, motion_cooldown, ...rest } = f;
  return rest;
}
