// Settings tab "MQTT": the broker settings (GET/PUT /integrations/mqtt/config; the password is
// never shown back), the connection's status every 5 s, a connection test with the form's values
// and publishing the Home Assistant discovery configs again.
import { html, useState, useApi, Field, FormError, toast, fmtTime, fmtAgo, api } from '../lib.mjs';
import { Loaded, Problem, useAction, usePoll, forbidden, Check, Facts, num, fmtInt } from './settings-common.mjs';

const TEXT_FIELDS = ['broker_host', 'broker_port', 'username', 'password', 'ca_cert', 'topic_prefix', 'discovery_prefix', 'node_id', 'qos'];

export default function MqttTab() {
  const config = useApi('/integrations/mqtt/config');
  const status = useApi('/integrations/mqtt/status');
  usePoll(status.reload, 5000, !forbidden(status) && !forbidden(config));
  const [version, setVersion] = useState(0);
  const saved = (c) => {
    config.setData(c);
    setVersion((v) => v + 1);
    setTimeout(status.reload, 1000);
  };
  return html`<${Loaded} qs=${[config]}>
    ${(c) => html`
      <${Status} q=${status} />
      <${MqttForm} key=${version} config=${c} onSaved=${saved} />`}
  </${Loaded}>`;
}

function Status({ q }) {
  const s = q.data;
  if (!s) return q.error ? html`<${Problem} error=${q.error} />` : null;
  const state = !s.enabled ? ['', 'off'] : s.connected ? ['ok', 'connected'] : ['error', s.reconnect_attempt ? `reconnecting (attempt ${s.reconnect_attempt})` : 'not connected'];
  return html`<section class="card" aria-live="polite">
    <h2>Connection <span class=${'pill ' + state[0]}>${state[1]}</span></h2>
    <${Facts} label="MQTT connection" rows=${[
      ['Broker', s.broker || 'none set'],
      ['Node id', s.node_id],
      ['Last connected', s.last_connected_at ? `${fmtTime(s.last_connected_at)} (${fmtAgo(s.last_connected_at)})` : 'never'],
      ['Published', fmtInt(s.messages_published)],
      ['Waiting', fmtInt(s.messages_queued)],
      ['Dropped', fmtInt(s.messages_dropped)],
      ['Last error', s.last_error],
    ]} />
    ${q.error ? html`<p class="muted">Could not refresh: ${q.error.detail}</p>` : null}
  </section>`;
}

function MqttForm({ config, onSaved }) {
  const [f, setF] = useState(() => ({
    enabled: config.enabled,
    broker_host: config.broker_host,
    broker_port: String(config.broker_port),
    username: config.username || '',
    password: '',
    remove_password: false,
    use_tls: config.use_tls,
    ca_cert: config.ca_cert || '',
    topic_prefix: config.topic_prefix,
    discovery_enabled: config.discovery_enabled,
    discovery_prefix: config.discovery_prefix,
    node_id: config.node_id_is_default ? '' : config.node_id,
    qos: String(config.qos),
    retain: config.retain,
  }));
  const save = useAction();
  const test = useAction();
  const publish = useAction();
  const [tested, setTested] = useState(null);
  const [published, setPublished] = useState(null);
  const set = (k) => (v) => setF((x) => ({ ...x, [k]: v }));
  const input = (k) => (e) => set(k)(e.target.value);

  /** The form as a MqttConfigUpdate; the password only when one was typed (or removed). */
  const body = () => {
    const b = {
      enabled: f.enabled,
      broker_host: f.broker_host.trim(),
      broker_port: num(f.broker_port),
      username: f.username.trim() || null,
      use_tls: f.use_tls,
      ca_cert: f.ca_cert.trim() || null,
      topic_prefix: f.topic_prefix.trim(),
      discovery_enabled: f.discovery_enabled,
      discovery_prefix: f.discovery_prefix.trim(),
      node_id: f.node_id.trim() || null,
      qos: num(f.qos),
      retain: f.retain,
    };
    if (f.password) b.password = f.password;
    else if (f.remove_password) b.password = null;
    return b;
  };
  const submit = async (e) => {
    e.preventDefault();
    const c = await save.run(() => api('PUT', '/integrations/mqtt/config', body()));
    if (c) {
      toast('MQTT settings saved');
      onSaved(c);
    }
  };
  const runTest = async () => {
    setTested(null);
    const r = await test.run(() => api('POST', '/integrations/mqtt/test', body()));
    if (r) setTested(r);
  };
  const runPublish = async () => {
    setPublished(null);
    const r = await publish.run(() => api('POST', '/integrations/mqtt/publish-discovery'));
    if (r) setPublished(r);
  };
  // A 422 from the test names a field too: show it there.
  const error = save.error || (test.error && test.error.status === 422 ? test.error : null);
  const clear = () => {
    setTested(null);
    if (save.error) save.setError(null);
    if (test.error) test.setError(null);
  };
  const text = (k, label, props = {}, hint) => html`<${Field} label=${label} name=${k} error=${error} hint=${hint}>
    ${(id, errId) => html`<input id=${id} name=${k} value=${f[k]} aria-describedby=${errId} onInput=${input(k)} ...${props} />`}
  </${Field}>`;

  return html`<form class="card" onSubmit=${submit} onInput=${clear}>
    <h2>Broker</h2>
    <${Check} label="Connect and publish" name="enabled" checked=${f.enabled} onChange=${set('enabled')} />
    <div class="grid">
      ${text('broker_host', 'Host', { placeholder: '192.168.1.10', autocomplete: 'off', required: f.enabled }, 'Name or IP address of the broker.')}
      ${text('broker_port', 'Port', { type: 'number', min: 1, max: 65535, required: true }, '1883; usually 8883 with TLS.')}
      ${text('username', 'Username', { autocomplete: 'off' }, 'Empty: none.')}
      <${Field} label="Password" name="password" error=${error} hint=${config.has_password ? 'A password is stored; leave empty to keep it.' : 'No password stored.'}>
        ${(id, errId) => html`<input id=${id} name="password" type="password" autocomplete="new-password" value=${f.password}
          placeholder=${config.has_password ? 'password set' : ''} aria-describedby=${errId} onInput=${input('password')} />`}
      </${Field}>
    </div>
    ${config.has_password ? html`<${Check} label="Remove the stored password" name="remove_password" checked=${f.remove_password} onChange=${set('remove_password')} />` : null}
    <${Check} label="Use TLS" name="use_tls" checked=${f.use_tls} onChange=${set('use_tls')} />
    ${f.use_tls || f.ca_cert
      ? html`<${Field} label="Private CA certificate (PEM)" name="ca_cert" error=${error} hint="Only when a private CA signed the broker's certificate; public CAs are trusted already.">
          ${(id, errId) => html`<textarea id=${id} name="ca_cert" rows="4" spellcheck="false" placeholder="-----BEGIN CERTIFICATE-----" aria-describedby=${errId} value=${f.ca_cert} onInput=${input('ca_cert')}></textarea>`}
        </${Field}>`
      : null}
    <h2>Topics and Home Assistant</h2>
    <div class="grid">
      ${text('topic_prefix', 'Topic prefix', { required: true }, 'A-Z a-z 0-9 _ - /, e.g. argus.')}
      ${text('node_id', 'Node id', { placeholder: config.node_id_is_default ? config.node_id : '' }, 'Empty: this appliance\'s own id.')}
      <${Field} label="QoS" name="qos" error=${error} hint="For everything published.">
        ${(id, errId) => html`<select id=${id} name="qos" value=${f.qos} aria-describedby=${errId} onInput=${input('qos')}>
          <option value="0">0: at most once</option><option value="1">1: at least once</option><option value="2">2: exactly once</option>
        </select>`}
      </${Field}>
      ${text('discovery_prefix', 'Discovery prefix', { required: true }, "Home Assistant's, usually homeassistant.")}
    </div>
    <${Check} label="Retain the state topics" name="retain" checked=${f.retain} onChange=${set('retain')} />
    <${Check} label="Home Assistant discovery" name="discovery_enabled" checked=${f.discovery_enabled} onChange=${set('discovery_enabled')} />
    <${FormError} error=${error} fields=${TEXT_FIELDS} />
    <div class="actions">
      <button type="submit" class="primary" disabled=${save.busy}>${save.busy ? 'Saving…' : 'Save'}</button>
      <button type="button" disabled=${test.busy} onClick=${runTest}>${test.busy ? 'Testing…' : 'Test connection'}</button>
      <button type="button" disabled=${publish.busy} onClick=${runPublish}>${publish.busy ? 'Publishing…' : 'Publish discovery'}</button>
    </div>
    <div aria-live="polite">
      ${tested ? html`<p class=${tested.success ? 'ok' : 'error'}>${tested.success ? 'The test worked: ' : 'The test failed: '}${tested.message}</p>` : null}
      ${test.error && test.error.status !== 422 ? html`<p class="error">The test could not run: ${test.error.detail}</p>` : null}
      ${published ? html`<p class=${published.success ? 'ok' : 'error'}>${published.message}</p>` : null}
      ${publish.error ? html`<p class="error">Discovery was not published: ${publish.error.detail}</p>` : null}
    </div>
  </form>`;
}
