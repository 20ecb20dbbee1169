// The alerts page (/alerts?tab=rules|notifications|webhooks): alert rules (conditions, actions,
// test against recent events, the webhook secret shown once), the notification centre (live,
// read state, deleting) and the webhook delivery log with its CSV export and a test sender.
import {
  html, useState, useEffect, useMemo, api, useApi, useMessages, useQuery, Field, FormError, Pager,
  Spinner, Empty, Header, Link, toast, fmtTime, fmtAgo, can, unreadChanged, css, ApiError,
} from '../lib.mjs';

css(new URL('./alerts.css', import.meta.url));

const TABS = [
  ['rules', 'Rules', 'admin'],
  ['notifications', 'Notifications', 'read:events'],
  ['webhooks', 'Webhooks', 'admin'],
];

export default function Alerts() {
  const [q, setQuery] = useQuery();
  const tabs = TABS.filter(([, , scope]) => can(scope));
  const tab = (tabs.find(([k]) => k === q.tab) || tabs[0] || [])[0];
  const key = (e) => {
    const i = tabs.findIndex(([k]) => k === tab);
    const j = e.key === 'ArrowRight' ? i + 1 : e.key === 'ArrowLeft' ? i - 1 : null;
    if (j === null) return;
    const next = tabs[(j + tabs.length) % tabs.length][0];
    setQuery({ tab: next });
    setTimeout(() => document.getElementById(`tab-${next}`)?.focus());
  };
  return html`<section class="alerts">
    <${Header} title="Alerts" />
    <div class="tabs" role="tablist" aria-label="Alerts" onKeyDown=${key}>
      ${tabs.map(([k, label]) => html`<button type="button" role="tab" id=${`tab-${k}`} aria-selected=${k === tab ? 'true' : 'false'}
        aria-controls="alerts-panel" tabIndex=${k === tab ? 0 : -1} onClick=${() => setQuery({ tab: k })}>${label}</button>`)}
    </div>
    <div role="tabpanel" id="alerts-panel" aria-labelledby=${`tab-${tab}`}>
      ${tab === 'rules' ? html`<${Rules} />` : tab === 'notifications' ? html`<${Notifications} />` : tab === 'webhooks' ? html`<${Webhooks} />` : html`<${Empty}>Nothing here for your account.</${Empty}>`}
    </div>
  </section>`;
}

// ---- Shared bits --------------------------------------------------------------------------------

/** "Name: value" lines as a header object; throws an ApiError naming `field`. */
function parseHeaders(text, field) {
  const out = {};
  for (const line of text.split('\n').map((l) => l.trim()).filter(Boolean)) {
    const i = line.indexOf(':');
    if (i < 1) throw new ApiError(422, `${field}: write one header a line, as Name: value`);
    out[line.slice(0, i).trim()] = line.slice(i + 1).trim();
  }
  return out;
}

/** The error with `field` set to the longest of `fields` its detail's path starts with
 *  (`conditions.time_of_day.start: ...` names `conditions.time_of_day`). */
function nested(error, fields) {
  if (!error || !error.detail) return error;
  const m = /^([a-z_][a-z0-9_.]*)(?=[:[])/i.exec(error.detail);
  const path = m ? m[1] : '';
  const f = fields.filter((x) => path === x || path.startsWith(x + '.')).sort((a, b) => b.length - a.length)[0];
  return { status: error.status, detail: error.detail, field: f || null };
}

/** A labelled group of checkboxes with the error that names `name`. */
function Group({ legend, name, error, hint, children }) {
  const err = error && error.field === name ? error.detail : null;
  return html`<fieldset class=${'group' + (err ? ' invalid' : '')}>
    <legend>${legend}</legend>
    <div class="checks">${children}</div>
    ${hint && !err ? html`<small class="hint">${hint}</small>` : null}
    ${err ? html`<small class="error" role="alert">${err}</small>` : null}
  </fieldset>`;
}

function Check({ checked, onChange, children }) {
  return html`<label class="chk"><input type="checkbox" checked=${checked} onChange=${(e) => onChange(e.target.checked)} /> ${children}</label>`;
}

// ---- Rules ----------------------------------------------------------------------------------------

const OBJECTS = ['person', 'vehicle', 'animal', 'package', 'motion', 'ring'];
const DAYS = ['Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat', 'Sun'];
const RULE_FIELDS = [
  'name', 'cooldown_minutes', 'conditions.object_types', 'conditions.cameras', 'conditions.time_of_day',
  'conditions.days_of_week', 'conditions.min_confidence', 'conditions.description_contains',
  'actions.webhook.url', 'actions.webhook.headers', 'actions',
];

function Rules() {
  const rules = useApi('/alert-rules');
  const cams = useApi('/cameras');
  const [editing, setEditing] = useState(null); // 'new' or a rule
  const [secret, setSecret] = useState(null); // {name, secret}
  const names = useMemo(() => Object.fromEntries((cams.data || []).map((c) => [c.id, c.name])), [cams.data]);

  const saved = (r, isNew) => {
    rules.setData((d) => ({
      total_count: (d ? d.total_count : 0) + (isNew ? 1 : 0),
      data: isNew ? [...((d && d.data) || []), r] : d.data.map((x) => (x.id === r.id ? r : x)),
    }));
    if (r.webhook_secret) setSecret({ name: r.name, secret: r.webhook_secret });
    setEditing(null);
    toast(isNew ? `Rule "${r.name}" created` : `Rule "${r.name}" saved`);
  };
  const replace = (r) => rules.setData((d) => ({ ...d, data: d.data.map((x) => (x.id === r.id ? r : x)) }));
  const remove = async (r) => {
    if (!confirm(`Delete the rule "${r.name}"? Its notifications stay.`)) return;
    try {
      await api('DELETE', `/alert-rules/${r.id}`);
      rules.setData((d) => ({ total_count: d.total_count - 1, data: d.data.filter((x) => x.id !== r.id) }));
      toast(`Rule "${r.name}" deleted`);
    } catch (e) {
      toast(e.detail || String(e), 'error');
    }
  };

  return html`<div class="rules">
    <div class="row between">
      <p class="muted">A rule fires once per matching event (from any camera or source), then stays quiet for its cooldown.</p>
      ${editing !== 'new' ? html`<button type="button" class="primary" onClick=${() => setEditing('new')}>New rule</button>` : null}
    </div>
    ${secret ? html`<${SecretBox} s=${secret} onDone=${() => setSecret(null)} />` : null}
    ${editing === 'new' ? html`<${RuleForm} cameras=${cams.data || []} onSaved=${(r) => saved(r, true)} onCancel=${() => setEditing(null)} />` : null}
    ${rules.error ? html`<p class="error banner" role="alert">${rules.error.detail}</p>` : null}
    ${rules.loading && !rules.data ? html`<${Spinner} />` : null}
    ${rules.data && !rules.data.data.length ? html`<${Empty}>No alert rule yet.</${Empty}>` : null}
    ${((rules.data && rules.data.data) || []).map((r) => (editing && editing.id === r.id
      ? html`<${RuleForm} key=${r.id} rule=${r} cameras=${cams.data || []} onSaved=${(x) => saved(x, false)} onCancel=${() => setEditing(null)} />`
      : html`<${RuleCard} key=${r.id} r=${r} names=${names} onChange=${replace} onEdit=${() => setEditing(r)} onDelete=${() => remove(r)} />`))}
  </div>`;
}

function SecretBox({ s, onDone }) {
  const copy = () => navigator.clipboard.writeText(s.secret).then(() => toast('Copied'), () => toast('Could not copy: select the text and copy it', 'error'));
  return html`<div class="card secret" role="alert">
    <h2>Webhook signing secret of "${s.name}"</h2>
    <p><strong>It will not be shown again.</strong> Keep it now: the receiver checks each request's <code>X-Argus-Signature</code> with it.</p>
    <p class="secret-value mono" aria-label="Signing secret">${s.secret}</p>
    <div class="row">
      ${navigator.clipboard ? html`<button type="button" onClick=${copy}>Copy</button>` : null}
      <button type="button" class="primary" onClick=${onDone}>I have kept it</button>
    </div>
  </div>`;
}

function summary(r, names) {
  const c = r.conditions || {};
  const when = [];
  when.push(c.object_types && c.object_types.length ? c.object_types.join(' or ') : 'any event');
  if (c.cameras && c.cameras.length) when.push('on ' + c.cameras.map((id) => names[id] || 'a deleted camera').join(' or '));
  if (c.time_of_day) when.push(`${c.time_of_day.start}–${c.time_of_day.end}`);
  if (c.days_of_week && c.days_of_week.length) when.push(c.days_of_week.map((d) => DAYS[d - 1]).join(', '));
  if (c.min_confidence != null) when.push(`confidence ≥ ${c.min_confidence}`);
  if (c.description_contains && c.description_contains.length) when.push('description mentions ' + c.description_contains.map((w) => `"${w}"`).join(' or '));
  const a = r.actions;
  const then = [];
  if (a.dashboard_notification) then.push('notification');
  if (a.webhook) then.push('webhook to ' + a.webhook.url);
  if (a.mqtt) then.push('MQTT');
  return { when: when.join(' · '), then: then.length ? then.join(' · ') : 'nothing (no action chosen)' };
}

function RuleCard({ r, names, onChange, onEdit, onDelete }) {
  const [busy, setBusy] = useState(null);
  const [test, setTest] = useState(null);
  const s = summary(r, names);
  const toggle = async (on) => {
    setBusy('toggle');
    onChange({ ...r, is_enabled: on });
    try {
      onChange(await api('PUT', `/alert-rules/${r.id}`, { is_enabled: on }));
    } catch (e) {
      onChange(r);
      toast(e.detail || String(e), 'error');
    } finally {
      setBusy(null);
    }
  };
  const runTest = async () => {
    setBusy('test');
    setTest(null);
    try {
      const [t, ev] = await Promise.all([
        api('POST', `/alert-rules/${r.id}/test`, { limit: 50 }),
        api('GET', '/events?limit=50').catch(() => null),
      ]);
      const byId = Object.fromEntries(((ev && ev.items) || []).map((e) => [e.id, e]));
      setTest({ ...t, events: t.matching_event_ids.map((id) => byId[id] || { id }) });
    } catch (e) {
      setTest({ error: e.detail || String(e) });
    } finally {
      setBusy(null);
    }
  };
  return html`<article class=${'card rule' + (r.is_enabled ? '' : ' off')}>
    <div class="rule-head">
      <h2>${r.name}</h2>
      <label class="switch"><input type="checkbox" role="switch" checked=${r.is_enabled} disabled=${busy === 'toggle'} onChange=${(e) => toggle(e.target.checked)} /> Enabled</label>
    </div>
    <dl class="facts">
      <dt>When</dt><dd>${s.when}</dd>
      <dt>Then</dt><dd>${s.then}</dd>
      <dt>Cooldown</dt><dd>${r.cooldown_minutes} min</dd>
      <dt>Fired</dt><dd>${r.trigger_count} ${r.trigger_count === 1 ? 'time' : 'times'}${r.last_triggered_at ? html`, last <span title=${fmtTime(r.last_triggered_at)}>${fmtAgo(r.last_triggered_at)}</span>` : ''}</dd>
    </dl>
    <div class="actions">
      <button type="button" disabled=${busy === 'test'} onClick=${runTest}>${busy === 'test' ? 'Testing…' : 'Test'}</button>
      <button type="button" onClick=${onEdit}>Edit</button>
      <button type="button" class="danger" onClick=${onDelete}>Delete</button>
    </div>
    ${test ? html`<${TestOutcome} t=${test} onClose=${() => setTest(null)} />` : null}
  </article>`;
}

function TestOutcome({ t, onClose }) {
  if (t.error) return html`<p class="error banner" role="alert">${t.error}</p>`;
  const shown = t.events.slice(0, 10);
  return html`<div class="test-outcome" role="status">
    <p><strong>${t.events_matched} of the latest ${t.events_tested} events</strong> would match (nothing was sent).
      ${' '}<button type="button" class="link" onClick=${onClose}>Hide</button></p>
    ${shown.length ? html`<ul>
      ${shown.map((e) => html`<li><${Link} href=${`/events/${e.id}`}>${e.timestamp ? `${fmtTime(e.timestamp)} · ${e.camera_name} · ${e.detection_type}${e.confidence != null ? ` ${e.confidence}%` : ''}` : `Event ${e.id.slice(0, 8)}`}</${Link}></li>`)}
    </ul>` : null}
    ${t.events.length > shown.length ? html`<p class="muted">and ${t.events.length - shown.length} more.</p>` : null}
  </div>`;
}

function initial(r) {
  const c = (r && r.conditions) || {};
  const a = r ? r.actions : { dashboard_notification: true, mqtt: false, webhook: null };
  return {
    name: r ? r.name : '',
    is_enabled: r ? r.is_enabled : true,
    object_types: c.object_types || ['person'],
    cameras: c.cameras || [],
    start: (c.time_of_day && c.time_of_day.start) || '',
    end: (c.time_of_day && c.time_of_day.end) || '',
    days: c.days_of_week || [],
    min_confidence: c.min_confidence != null ? String(c.min_confidence) : '',
    words: (c.description_contains || []).join(', '),
    cooldown: String(r ? r.cooldown_minutes : 5),
    notify: a.dashboard_notification,
    mqtt: a.mqtt,
    webhook: !!a.webhook,
    url: (a.webhook && a.webhook.url) || '',
    headers: '',
    clearHeaders: false,
  };
}

/** Create (no `rule`) or edit a rule. */
function RuleForm({ rule, cameras, onSaved, onCancel }) {
  const [f, setF] = useState(() => initial(rule));
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const set = (k, v) => setF((x) => ({ ...x, [k]: v }));
  const inp = (k) => (e) => set(k, e.target.value);
  const list = (k, v) => (on) => set(k, on ? [...f[k], v] : f[k].filter((x) => x !== v));
  const stored = rule && rule.actions.webhook ? Object.keys(rule.actions.webhook.headers || {}) : [];

  const body = () => {
    const conditions = {
      object_types: f.object_types,
      cameras: f.cameras,
      days_of_week: f.days.slice().sort(),
      description_contains: f.words.split(/[,\n]/).map((w) => w.trim()).filter(Boolean),
    };
    if (f.start || f.end) conditions.time_of_day = { start: f.start, end: f.end };
    if (f.min_confidence !== '') conditions.min_confidence = Number(f.min_confidence);
    let webhook = null;
    if (f.webhook) {
      webhook = { url: f.url };
      if (f.headers.trim()) webhook.headers = parseHeaders(f.headers, 'actions.webhook.headers');
      else if (f.clearHeaders) webhook.headers = {};
    }
    const b = { name: f.name, is_enabled: f.is_enabled, conditions, actions: { dashboard_notification: f.notify, mqtt: f.mqtt, webhook } };
    if (f.cooldown !== '') b.cooldown_minutes = Number(f.cooldown);
    return b;
  };
  const submit = async (e) => {
    e.preventDefault();
    setError(null);
    setBusy(true);
    try {
      const b = body();
      onSaved(rule ? await api('PUT', `/alert-rules/${rule.id}`, b) : await api('POST', '/alert-rules', b));
    } catch (err) {
      setError(nested(err, RULE_FIELDS));
      setBusy(false);
    }
  };
  return html`<form class="card rule-form" onSubmit=${submit} aria-label=${rule ? `Edit rule ${rule.name}` : 'New rule'}>
    <h2>${rule ? `Edit "${rule.name}"` : 'New rule'}</h2>
    <div class="form-grid">
      <${Field} label="Name" name="name" error=${error}>${(id, err) => html`<input id=${id} value=${f.name} onInput=${inp('name')} required maxlength="200" aria-describedby=${err} />`}</${Field}>
      <${Field} label="Cooldown (minutes)" name="cooldown_minutes" error=${error} hint="Quiet time after firing, 0 to 1440">${(id, err) => html`<input id=${id} type="number" min="0" max="1440" value=${f.cooldown} onInput=${inp('cooldown')} aria-describedby=${err} />`}</${Field}>
    </div>
    <label class="chk"><input type="checkbox" checked=${f.is_enabled} onChange=${(e) => set('is_enabled', e.target.checked)} /> Enabled</label>

    <h3>When</h3>
    <p class="hint">All conditions must hold; inside one list any entry will do. An empty condition does not restrict.</p>
    <${Group} legend="Detected" name="conditions.object_types" error=${error} hint="None ticked: any event">
      ${OBJECTS.map((o) => html`<${Check} checked=${f.object_types.includes(o)} onChange=${list('object_types', o)}>${o}</${Check}>`)}
    </${Group}>
    <${Group} legend="Cameras" name="conditions.cameras" error=${error} hint="None ticked: every camera">
      ${cameras.length ? cameras.map((c) => html`<${Check} checked=${f.cameras.includes(c.id)} onChange=${list('cameras', c.id)}>${c.name}</${Check}>`) : html`<span class="muted">No camera yet.</span>`}
    </${Group}>
    <fieldset class=${'group' + (error && error.field === 'conditions.time_of_day' ? ' invalid' : '')}>
      <legend>Time of day (the appliance's local time)</legend>
      <div class="form-grid narrow">
        <${Field} label="From" name="tod-start">${(id) => html`<input id=${id} type="time" value=${f.start} onInput=${inp('start')} />`}</${Field}>
        <${Field} label="Until" name="tod-end">${(id) => html`<input id=${id} type="time" value=${f.end} onInput=${inp('end')} />`}</${Field}>
      </div>
      ${error && error.field === 'conditions.time_of_day' ? html`<small class="error" role="alert">${error.detail}</small>` : html`<small class="hint">Both empty: all day. An end before the start runs overnight (22:00 until 06:00).</small>`}
    </fieldset>
    <${Group} legend="Days" name="conditions.days_of_week" error=${error} hint="None ticked: every day">
      ${DAYS.map((d, i) => html`<${Check} checked=${f.days.includes(i + 1)} onChange=${list('days', i + 1)}>${d}</${Check}>`)}
    </${Group}>
    <div class="form-grid">
      <${Field} label="Minimum confidence (%)" name="conditions.min_confidence" error=${error} hint="0 to 100; empty: any">${(id, err) => html`<input id=${id} type="number" min="0" max="100" value=${f.min_confidence} onInput=${inp('min_confidence')} aria-describedby=${err} />`}</${Field}>
      <${Field} label="Description mentions" name="conditions.description_contains" error=${error} hint="Words or phrases, separated by commas (any of them; waits for the cloud description)">${(id, err) => html`<input id=${id} value=${f.words} onInput=${inp('words')} placeholder="package, red car" aria-describedby=${err} />`}</${Field}>
    </div>

    <h3>Then</h3>
    <div class="checks">
      <${Check} checked=${f.notify} onChange=${(v) => set('notify', v)}>Show a notification in the app</${Check}>
      <${Check} checked=${f.mqtt} onChange=${(v) => set('mqtt', v)}>Publish on MQTT</${Check}>
      <${Check} checked=${f.webhook} onChange=${(v) => set('webhook', v)}>Call a webhook</${Check}>
    </div>
    ${f.webhook ? html`<div class="webhook">
      <${Field} label="Webhook URL" name="actions.webhook.url" error=${error} hint="http:// or https:// (LAN addresses are fine); each request is signed">${(id, err) => html`<input id=${id} type="url" value=${f.url} onInput=${inp('url')} required placeholder="http://homeassistant.local:8123/api/webhook/door" aria-describedby=${err} />`}</${Field}>
      <${Field} label="Extra headers" name="actions.webhook.headers" error=${error}
        hint=${stored.length ? `Saved: ${stored.join(', ')} (values hidden). Leave empty to keep them; lines here replace them.` : 'One a line, as Name: value (optional)'}>
        ${(id, err) => html`<textarea id=${id} rows="2" value=${f.headers} onInput=${inp('headers')} placeholder="X-Token: …" autocomplete="off" aria-describedby=${err}></textarea>`}</${Field}>
      ${stored.length ? html`<${Check} checked=${f.clearHeaders} onChange=${(v) => set('clearHeaders', v)}>Remove the saved headers</${Check}>` : null}
    </div>` : null}
    <${FormError} error=${error} fields=${RULE_FIELDS.filter((x) => x !== 'actions')} />
    <div class="row">
      <button type="submit" class="primary" disabled=${busy}>${busy ? 'Saving…' : rule ? 'Save' : 'Create rule'}</button>
      <button type="button" class="link" onClick=${onCancel}>Cancel</button>
    </div>
  </form>`;
}

// ---- Notifications ----------------------------------------------------------------------------------

const NLIMIT = 20;

function Notifications() {
  const [page, setPage] = useState(1);
  const [read, setRead] = useState(''); // '' all, 'false' unread, 'true' read
  const list = useApi(`/notifications?limit=${NLIMIT}&offset=${(page - 1) * NLIMIT}${read ? `&read=${read}` : ''}`);
  const [busy, setBusy] = useState(null);
  const d = list.data;

  useMessages('notification.new', (n) => list.setData((x) => {
    if (!x) return x;
    const show = page === 1 && read !== 'true' && !x.data.some((y) => y.id === n.id);
    return {
      ...x,
      total_count: x.total_count + (read === 'true' ? 0 : 1),
      unread_count: x.unread_count + 1,
      data: show ? [n, ...x.data].slice(0, NLIMIT) : x.data,
    };
  }));

  const act = async (name, fn) => {
    setBusy(name);
    try {
      await fn();
    } catch (e) {
      toast(e.detail || String(e), 'error');
    } finally {
      setBusy(null);
      unreadChanged();
    }
  };
  const markRead = (n) => act(n.id, async () => {
    const m = await api('PATCH', `/notifications/${n.id}/read`);
    list.setData((x) => ({ ...x, unread_count: Math.max(0, x.unread_count - (n.read ? 0 : 1)), data: x.data.map((y) => (y.id === n.id ? m : y)) }));
  });
  const remove = (n) => act(n.id, async () => {
    await api('DELETE', `/notifications/${n.id}`);
    list.setData((x) => ({ ...x, total_count: x.total_count - 1, unread_count: Math.max(0, x.unread_count - (n.read ? 0 : 1)), data: x.data.filter((y) => y.id !== n.id) }));
  });
  const markAll = () => act('all-read', async () => {
    const r = await api('PATCH', '/notifications/mark-all-read');
    toast(`${r.updated_count} marked read`);
    list.reload();
  });
  const removeMany = (readOnly) => {
    if (!confirm(readOnly ? 'Delete every read notification?' : 'Delete every notification, read or not?')) return;
    act(readOnly ? 'del-read' : 'del-all', async () => {
      const r = await api('DELETE', `/notifications${readOnly ? '?read_only=true' : ''}`);
      toast(`${r.deleted_count} deleted`);
      if (page !== 1) setPage(1);
      else list.reload();
    });
  };
  const pages = d ? Math.max(1, Math.ceil(d.total_count / NLIMIT)) : 1;
  useEffect(() => {
    if (page > pages) setPage(pages);
  }, [pages]);

  return html`<div class="notifications">
    <div class="filters">
      <${Field} label="Show" name="read">${(id) => html`<select id=${id} value=${read} onChange=${(e) => { setRead(e.target.value); setPage(1); }}>
        <option value="">All</option><option value="false">Unread</option><option value="true">Read</option>
      </select>`}</${Field}>
      <div class="actions span">
        <button type="button" disabled=${!!busy || !d || !d.unread_count} onClick=${markAll}>Mark all read</button>
        <button type="button" disabled=${!!busy} onClick=${() => removeMany(true)}>Delete read</button>
        <button type="button" class="danger" disabled=${!!busy} onClick=${() => removeMany(false)}>Delete all</button>
      </div>
    </div>
    ${d ? html`<p class="muted" aria-live="polite">${d.unread_count} unread · ${d.total_count} ${read === 'false' ? 'unread' : read === 'true' ? 'read' : 'in all'}</p>` : null}
    ${list.error ? html`<p class="error banner" role="alert">${list.error.detail}</p>` : null}
    ${list.loading && !d ? html`<${Spinner} />` : null}
    ${d && !d.data.length ? html`<${Empty}>${read === 'false' ? 'No unread notification.' : 'No notification.'} A rule with "Show a notification" adds one for each event it matches.</${Empty}>` : null}
    <ul class="notice-list">
      ${(d ? d.data : []).map((n) => html`<${Notice} key=${n.id} n=${n} busy=${busy === n.id} onRead=${() => markRead(n)} onDelete=${() => remove(n)} />`)}
    </ul>
    <${Pager} page=${page} pages=${pages} onPage=${setPage} />
  </div>`;
}

function Notice({ n, busy, onRead, onDelete }) {
  const title = n.title || n.rule_name || (n.type === 'ai_cost' ? 'Cloud AI cost cap' : 'Notification');
  const href = n.event_id ? `/events/${n.event_id}` : null;
  return html`<li class=${'card notice' + (n.read ? '' : ' unread')}>
    ${n.thumbnail_url && href
      ? html`<${Link} href=${href} class="thumb" tabIndex="-1" aria-hidden="true"><img src=${n.thumbnail_url} alt="" loading="lazy" /></${Link}>`
      : html`<div class="thumb none" aria-hidden="true">${n.thumbnail_url ? html`<img src=${n.thumbnail_url} alt="" loading="lazy" />` : null}</div>`}
    <div class="body">
      <h3>${!n.read ? html`<span class="pill error">New</span> ` : null}${href ? html`<${Link} href=${href}>${title}</${Link}>` : title}</h3>
      <p class="muted">${n.rule_name && !title.includes(n.rule_name) ? html`${n.rule_name} · ` : null}<time datetime=${n.created_at} title=${fmtTime(n.created_at)}>${fmtTime(n.created_at)}</time></p>
      ${n.event_description ? html`<p class="desc">${n.event_description}</p>` : null}
    </div>
    <div class="actions">
      ${!n.read ? html`<button type="button" disabled=${busy} onClick=${onRead}>Mark read</button>` : null}
      <button type="button" class="danger" disabled=${busy} onClick=${onDelete} aria-label=${`Delete the notification ${title}, ${fmtTime(n.created_at)}`}>Delete</button>
    </div>
  </li>`;
}

// ---- Webhooks -----------------------------------------------------------------------------------------

const WLIMIT = 50;

/** A `date` input's day as the start (or end) of that day in the browser's zone, RFC 3339. */
function dayIso(v, end) {
  if (!v) return '';
  const [y, m, d] = v.split('-').map(Number);
  const t = end ? new Date(y, m - 1, d, 23, 59, 59, 999) : new Date(y, m - 1, d);
  return isNaN(t) ? '' : t.toISOString();
}

function Webhooks() {
  const rules = useApi('/alert-rules');
  const [f, setF] = useState({ rule_id: '', success: '', start: '', end: '' });
  const [page, setPage] = useState(1);
  const params = new URLSearchParams();
  if (f.rule_id) params.set('rule_id', f.rule_id);
  if (f.success) params.set('success', f.success);
  if (f.start) params.set('start_date', dayIso(f.start, false));
  if (f.end) params.set('end_date', dayIso(f.end, true));
  const qs = params.toString();
  const logs = useApi(`/webhooks/logs?limit=${WLIMIT}&offset=${(page - 1) * WLIMIT}${qs ? '&' + qs : ''}`);
  const names = Object.fromEntries(((rules.data && rules.data.data) || []).map((r) => [r.id, r.name]));
  const set = (k) => (e) => {
    setF({ ...f, [k]: e.target.value });
    setPage(1);
  };
  const d = logs.data;
  const pages = d ? Math.ceil(d.total_count / WLIMIT) : 0;
  return html`<div class="webhooks">
    <${WebhookTest} />
    <h2>Delivery log</h2>
    <div class="filters">
      <${Field} label="Rule" name="rule_id" error=${logs.error}>${(id) => html`<select id=${id} value=${f.rule_id} onChange=${set('rule_id')}>
        <option value="">Every rule</option>
        ${((rules.data && rules.data.data) || []).map((r) => html`<option value=${r.id}>${r.name}</option>`)}
      </select>`}</${Field}>
      <${Field} label="Result" name="success" error=${logs.error}>${(id) => html`<select id=${id} value=${f.success} onChange=${set('success')}>
        <option value="">Any</option><option value="true">Delivered</option><option value="false">Failed</option>
      </select>`}</${Field}>
      <${Field} label="From" name="start_date" error=${logs.error}>${(id) => html`<input id=${id} type="date" value=${f.start} onInput=${set('start')} />`}</${Field}>
      <${Field} label="Until" name="end_date" error=${logs.error}>${(id) => html`<input id=${id} type="date" value=${f.end} onInput=${set('end')} />`}</${Field}>
      <a class="button" href=${`/api/v1/webhooks/logs/export${qs ? '?' + qs : ''}`} download>Export CSV</a>
    </div>
    <${FormError} error=${logs.error} fields=${['rule_id', 'success', 'start_date', 'end_date']} />
    ${logs.loading && !d ? html`<${Spinner} />` : null}
    ${d && !d.data.length ? html`<${Empty}>No delivery${qs ? ' matches these filters' : ' yet: a rule with a webhook logs each attempt here (kept 30 days)'}.</${Empty}>` : null}
    ${d && d.data.length ? html`<div class="table-wrap"><table class="log">
      <thead><tr><th>Time</th><th>Result</th><th>Rule</th><th>URL</th><th>Attempt</th><th>Took</th><th>Error</th></tr></thead>
      <tbody>${d.data.map((l) => html`<tr key=${l.id}>
        <td data-label="Time"><span><span class="nowrap">${fmtTime(l.created_at)}</span>${l.event_id ? html` · <${Link} href=${`/events/${l.event_id}`}>event</${Link}>` : null}</span></td>
        <td data-label="Result"><span class=${'pill ' + (l.success ? 'ok' : 'error')}>${l.status_code || (l.success ? 'ok' : 'failed')}</span></td>
        <td data-label="Rule">${l.alert_rule_id ? names[l.alert_rule_id] || html`<span class="muted">deleted rule</span>` : html`<span class="muted">none</span>`}</td>
        <td data-label="URL" class="url">${l.url}</td>
        <td data-label="Attempt">${l.retry_count ? `retry ${l.retry_count}` : 'first'}</td>
        <td data-label="Took" class="nowrap">${l.response_time_ms != null ? `${l.response_time_ms} ms` : ''}</td>
        <td data-label="Error" class=${'err' + (l.error_message ? '' : ' none')}>${l.error_message || ''}</td>
      </tr>`)}</tbody>
    </table></div>` : null}
    <${Pager} page=${page} pages=${pages} onPage=${setPage} />
  </div>`;
}

function WebhookTest() {
  const [f, setF] = useState({ url: '', headers: '', payload: '' });
  const [error, setError] = useState(null);
  const [out, setOut] = useState(null);
  const [busy, setBusy] = useState(false);
  const inp = (k) => (e) => setF({ ...f, [k]: e.target.value });
  const submit = async (e) => {
    e.preventDefault();
    setError(null);
    setOut(null);
    setBusy(true);
    try {
      const b = { url: f.url, headers: parseHeaders(f.headers, 'headers') };
      if (f.payload.trim()) {
        try {
          b.payload = JSON.parse(f.payload);
        } catch (_) {
          throw new ApiError(422, 'payload: not valid JSON');
        }
      }
      setOut(await api('POST', '/webhooks/test', b));
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  return html`<details class="card webhook-test">
    <summary>Send a test request</summary>
    <form onSubmit=${submit} aria-label="Send a test request">
    <p class="muted">One request to a target, to see what it answers (not signed, not retried, not logged).</p>
    <${Field} label="URL" name="url" error=${error}>${(id, err) => html`<input id=${id} type="url" value=${f.url} onInput=${inp('url')} required placeholder="http://192.168.1.20:1880/argus" aria-describedby=${err} />`}</${Field}>
    <div class="form-grid">
      <${Field} label="Headers" name="headers" error=${error} hint="Optional, one a line, as Name: value">${(id, err) => html`<textarea id=${id} rows="2" value=${f.headers} onInput=${inp('headers')} autocomplete="off" aria-describedby=${err}></textarea>`}</${Field}>
      <${Field} label="Payload (JSON)" name="payload" error=${error} hint="Optional; empty sends a sample alert">${(id, err) => html`<textarea id=${id} rows="2" class="mono" value=${f.payload} onInput=${inp('payload')} aria-describedby=${err}></textarea>`}</${Field}>
    </div>
    <${FormError} error=${error} fields=${['url', 'headers', 'payload']} />
    <button type="submit" class="primary" disabled=${busy}>${busy ? 'Sending…' : 'Send test'}</button>
    ${out ? html`<div class=${'test-outcome ' + (out.success ? 'good' : 'bad')} role="status">
      <p><span class=${'pill ' + (out.success ? 'ok' : 'error')}>${out.success ? 'Delivered' : 'Failed'}</span>
        ${out.status_code ? ` HTTP ${out.status_code}` : ''} in ${out.response_time_ms} ms</p>
      ${out.error ? html`<p class="error">${out.error}</p>` : null}
      ${out.response_body ? html`<p class="muted">The target answered:</p><pre>${out.response_body}</pre>` : null}
    </div>` : null}
    </form>
  </details>`;
}
