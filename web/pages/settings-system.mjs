// Settings tab "System": the appliance's health (GET /system/health, every 5 s while visible),
// HTTPS (GET /system/ssl-status), and the detection defaults of the runtime settings
// (PUT /system/settings).
import { html, useState, useApi, Field, FormError, toast, fmtTime, fmtBytes } from '../lib.mjs';
import { Loaded, useAction, usePoll, Check, Facts, ok, num, fmtInt, fmtDuration, saveSettings } from './settings-common.mjs';

const CLASSES = ['person', 'vehicle', 'animal', 'motion'];

export default function SystemTab() {
  const health = useApi('/system/health');
  const ssl = useApi('/system/ssl-status');
  const settings = useApi('/system/settings');
  usePoll(health.reload, 5000);
  const [version, setVersion] = useState(0);
  return html`
    <${Loaded} qs=${[health]}>${(h) => html`<${Health} h=${h} stale=${health.error} />`}</${Loaded}>
    <section class="card">
      <h2>HTTPS</h2>
      <${Loaded} qs=${[ssl]}>${(s) => html`<${Ssl} s=${s} />`}</${Loaded}>
    </section>
    <${Loaded} qs=${[settings]}>
      ${(s) => html`<${Defaults} key=${version} settings=${s} onSaved=${(n) => (settings.setData(n), setVersion((v) => v + 1))} />`}
    </${Loaded}>`;
}

function Health({ h, stale }) {
  const d = h.detector;
  const lagged = Object.entries(h.stream_lagged || {});
  return html`<section class="card" aria-live="polite">
    <h2>Health <span class=${'pill ' + (h.status === 'ok' ? 'ok' : 'error')}>${h.status}</span></h2>
    ${stale ? html`<p class="muted">Could not refresh: ${stale.detail}</p>` : null}
    <div class="health">
      <div>
        <h3>Appliance</h3>
        <${Facts} label="Appliance" rows=${[
          ['Version', h.version],
          ['Up for', fmtDuration(h.uptime_seconds)],
          ['Time', fmtTime(h.time)],
          ['Database', ok(h.database, 'answers', 'not answering')],
          ['Schema version', h.schema_version],
          ['Live clients', fmtInt(h.websocket_clients)],
          ['Webhooks waiting', fmtInt(h.webhooks_pending)],
          ['Messages lost by slow subscribers', lagged.length ? lagged.map(([k, v]) => `${k}: ${fmtInt(v)}`).join(', ') : 'none'],
        ]} />
        <h3>Storage</h3>
        <${Facts} label="Storage health" rows=${[
          ['Status', ok(h.storage.status === 'ok', 'ok', 'low disk')],
          ['Free', fmtBytes(h.storage.free_bytes)],
          ['Floor', fmtBytes(h.storage.min_free_disk_bytes)],
        ]} />
        <h3>Integrations</h3>
        <${Facts} label="Integrations" rows=${[
          ['MQTT', h.mqtt.enabled ? ok(h.mqtt.connected, 'connected', 'not connected') : 'off'],
          ['MQTT messages waiting', h.mqtt.enabled ? fmtInt(h.mqtt.messages_queued) : null],
          ['UniFi Protect', h.protect.controllers ? `${h.protect.connected} of ${h.protect.controllers} controllers connected` : 'none'],
        ]} />
      </div>
      <div>
        <h3>Detector</h3>
        <${Facts} label="Detector" rows=${[
          ['Mode', d.mode],
          ['Backend', d.backend],
          ['Model', d.model],
          ['Problem', d.error ? html`<span class="error">${d.error}</span>` : null],
          ['Workers', `${d.workers} × ${d.threads_per_worker} threads`],
          ['Minimum score', d.min_score],
          ['Inference', d.avg_inference_ms !== null && d.avg_inference_ms !== undefined ? `${d.avg_inference_ms.toFixed(1)} ms average` : null],
          ['Latency', d.avg_latency_ms !== null && d.avg_latency_ms !== undefined ? `${d.avg_latency_ms.toFixed(1)} ms average` : null],
          ['Queued', fmtInt(d.queued)],
          ['Motion frames', fmtInt(d.motion_frames)],
          ['Detector runs', `${fmtInt(d.detector_runs)} (${fmtInt(d.detector_regions)} regions, ${fmtInt(d.detector_errors)} errors)`],
          ['Objects detected', fmtInt(d.objects_detected)],
          ['Events', `${fmtInt(d.object_events)} object, ${fmtInt(d.motion_events)} motion`],
          ['Frames dropped (overload)', fmtInt(d.frames_dropped)],
          ['Frames kept for the cloud', fmtInt(d.frames_kept_from_cloud)],
        ]} />
      </div>
    </div>
  </section>`;
}

function Ssl({ s }) {
  if (!s.ssl_enabled) return html`<p class="muted">Not enabled: the appliance serves plain HTTP.${s.error ? html` <span class="error">${s.error}</span>` : null}</p>`;
  return html`<${Facts} label="HTTPS" rows=${[
    ['Certificate', ok(s.certificate_valid, 'valid', 'not valid')],
    ['Subject', s.certificate_subject],
    ['Issuer', s.certificate_issuer],
    ['Valid from', fmtTime(s.certificate_not_before)],
    ['Expires', fmtTime(s.certificate_expires)],
    ['TLS versions', s.tls_versions.join(', ')],
    ['Problem', s.error ? html`<span class="error">${s.error}</span>` : null],
  ]} />`;
}

function Defaults({ settings, onSaved }) {
  const [filter, setFilter] = useState(settings.default_object_filter);
  const [score, setScore] = useState(String(settings.detection_min_score));
  const [cooldown, setCooldown] = useState(String(settings.default_motion_cooldown));
  const { busy, error, setError, run } = useAction();
  const submit = async (e) => {
    e.preventDefault();
    const s = await run(() =>
      saveSettings({ default_object_filter: filter, detection_min_score: num(score), default_motion_cooldown: num(cooldown) }),
    );
    if (s) {
      toast('Detection settings saved');
      onSaved(s);
    }
  };
  const filterErr = error && error.field === 'default_object_filter' ? error.detail : null;
  return html`<form class="card" onSubmit=${submit} onInput=${() => error && setError(null)}>
    <h2>Detection</h2>
    <div class="grid">
      <${Field} label="Minimum detector score" name="detection_min_score" error=${error} hint="0.05 to 1; lower finds more, with more false alarms.">
        ${(id, errId) => html`<input id=${id} type="number" min="0.05" max="1" step="0.01" required value=${score} aria-describedby=${errId} onInput=${(e) => setScore(e.target.value)} />`}
      </${Field}>
      <${Field} label="Motion cooldown for new cameras (s)" name="default_motion_cooldown" error=${error} hint="0-3600.">
        ${(id, errId) => html`<input id=${id} type="number" min="0" max="3600" required value=${cooldown} aria-describedby=${errId} onInput=${(e) => setCooldown(e.target.value)} />`}
      </${Field}>
    </div>
    <fieldset class=${'scopes' + (filterErr ? ' invalid' : '')}>
      <legend>What creates events on new cameras</legend>
      <div class="row">
        ${CLASSES.map(
          (c) => html`<${Check} label=${c} name="default_object_filter" checked=${filter.includes(c)}
            onChange=${(on) => setFilter((l) => (on ? [...l, c] : l.filter((x) => x !== c)))} />`,
        )}
      </div>
      ${filterErr ? html`<small class="error" role="alert">${filterErr}</small>` : null}
    </fieldset>
    <${FormError} error=${error} fields=${['detection_min_score', 'default_motion_cooldown', 'default_object_filter']} />
    <div class="actions"><button type="submit" class="primary" disabled=${busy}>${busy ? 'Saving…' : 'Save'}</button></div>
  </form>`;
}
