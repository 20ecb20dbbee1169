// Settings tab "Storage": what the database and snapshots take (GET /system/storage), the
// retention policy (age, size limit, free-disk floor, per-camera ages; PUT /system/settings), the
// last pruning run, and deleting every event before a date (DELETE /events/cleanup).
import { html, useState, useApi, Field, FormError, toast, fmtBytes, fmtTime, api } from '../lib.mjs';
import { Loaded, useAction, subError, Facts, Bar, num, fmtInt, saveSettings, UNITS, splitBytes, joinBytes } from './settings-common.mjs';

export default function StorageTab() {
  const storage = useApi('/system/storage');
  const settings = useApi('/system/settings');
  const cameras = useApi('/cameras');
  const [version, setVersion] = useState(0);
  const saved = (s) => {
    settings.setData(s);
    storage.reload();
    setVersion((v) => v + 1);
  };
  return html`<${Loaded} qs=${[storage, settings]}>
    ${(st, s) => html`
      <${Use} st=${st} />
      <${Policy} key=${version} st=${st} settings=${s} cameras=${cameras.data} onSaved=${saved} />
      <${Pruning} st=${st} />
      <${Cleanup} onDone=${storage.reload} />`}
  </${Loaded}>`;
}

function Use({ st }) {
  const limit = st.policy.effective_max_storage_bytes;
  const used = st.total_bytes - st.free_bytes;
  return html`<section class="card">
    <h2>Use ${st.status === 'ok' ? null : html`<span class="pill error">low disk</span>`}</h2>
    <div class="meters">
      <div>
        <p>Events and snapshots: <strong>${fmtBytes(st.usage_bytes)}</strong>${limit ? html` of the ${fmtBytes(limit)} limit` : null}</p>
        ${limit ? html`<${Bar} value=${st.usage_bytes} max=${limit} label=${`${fmtBytes(st.usage_bytes)} of ${fmtBytes(limit)}`} />` : null}
      </div>
      <div>
        <p>Disk: <strong>${fmtBytes(st.free_bytes)}</strong> free of ${fmtBytes(st.total_bytes)}</p>
        <${Bar} value=${used} max=${st.total_bytes} label=${`${fmtBytes(used)} of ${fmtBytes(st.total_bytes)} used`} />
      </div>
    </div>
    <${Facts} label="Storage" rows=${[
      ['Database file', `${fmtBytes(st.database_bytes)} (${fmtBytes(st.database_used_bytes)} in use)`],
      ['Snapshots', fmtBytes(st.thumbnail_bytes)],
      ['Events', fmtInt(st.event_count)],
      ['Oldest event', st.oldest_event_at ? fmtTime(st.oldest_event_at) : 'none'],
      ['Newest event', st.newest_event_at ? fmtTime(st.newest_event_at) : 'none'],
      ['Free-disk floor in force', fmtBytes(st.policy.effective_min_free_disk_bytes)],
    ]} />
  </section>`;
}

function ByteField({ label, name, value, onChange, error, hint }) {
  const [amount, unit] = value;
  return html`<${Field} label=${label} name=${name} error=${error} hint=${hint}>
    ${(id, errId) => html`<div class="with-unit">
      <input id=${id} type="number" min="0" step="any" inputmode="decimal" value=${amount} aria-describedby=${errId} onInput=${(e) => onChange([e.target.value, unit])} />
      <select aria-label=${`${label}: unit`} value=${unit} onInput=${(e) => onChange([amount, e.target.value])}>
        ${UNITS.map(([u]) => html`<option value=${u}>${u}</option>`)}
      </select>
    </div>`}
  </${Field}>`;
}

function Policy({ st, settings, cameras, onSaved }) {
  const [days, setDays] = useState(String(settings.retention_days));
  const [max, setMax] = useState(() => splitBytes(settings.max_storage_bytes));
  const [floor, setFloor] = useState(() => splitBytes(settings.min_free_disk_bytes));
  const [perCam, setPerCam] = useState(() =>
    Object.fromEntries(Object.entries(settings.camera_retention).map(([id, r]) => [id, String(r.retention_days)])),
  );
  const { busy, error, setError, run } = useAction();
  // Every camera: those configured, those with stored events, those with an override.
  const names = new Map();
  (cameras || []).forEach((c) => names.set(c.id, c.name));
  st.by_camera.forEach((c) => names.has(c.camera_id) || names.set(c.camera_id, c.camera_name || c.camera_id));
  Object.keys(perCam).forEach((id) => names.has(id) || names.set(id, id));
  const counts = Object.fromEntries(st.by_camera.map((c) => [c.camera_id, c]));

  const submit = async (e) => {
    e.preventDefault();
    const camera_retention = {};
    Object.entries(perCam).forEach(([id, v]) => v !== '' && (camera_retention[id] = { retention_days: num(v) }));
    const s = await run(() =>
      saveSettings({
        retention_days: num(days),
        max_storage_bytes: joinBytes(...max),
        min_free_disk_bytes: joinBytes(...floor),
        camera_retention,
      }),
    );
    if (s) {
      toast('Retention saved');
      onSaved(s);
    }
  };
  return html`<form class="card" onSubmit=${submit} onInput=${() => error && setError(null)}>
    <h2>Retention</h2>
    <div class="grid">
      <${Field} label="Keep events for (days)" name="retention_days" error=${error} hint="0 keeps them forever (the size limit and the floor still apply).">
        ${(id, errId) => html`<input id=${id} type="number" min="0" max="3650" required value=${days} aria-describedby=${errId} onInput=${(e) => setDays(e.target.value)} />`}
      </${Field}>
      <${ByteField} label="Size limit" name="max_storage_bytes" value=${max} onChange=${setMax} error=${error}
        hint=${`Database plus snapshots; at least 16 MiB. Empty: half the disk${st.policy.max_storage_bytes === null ? ` (now ${fmtBytes(st.policy.effective_max_storage_bytes)})` : ''}.`} />
      <${ByteField} label="Free-disk floor" name="min_free_disk_bytes" value=${floor} onChange=${setFloor} error=${error}
        hint=${`Below it, events are stored without snapshots and the oldest are pruned. Empty: 256 MiB or 5 % of the disk${st.policy.min_free_disk_bytes === null ? ` (now ${fmtBytes(st.policy.effective_min_free_disk_bytes)})` : ''}.`} />
    </div>
    <h3>By camera</h3>
    ${names.size
      ? html`<div class="table-wrap"><table>
          <thead><tr><th>Camera</th><th class="num">Events</th><th class="num">Snapshots</th><th>Keep (days)</th></tr></thead>
          <tbody>
            ${[...names].map(([id, name]) => {
              const err = subError(error, `camera_retention.${id}.`);
              return html`<tr>
                <td>${name}</td>
                <td class="num">${fmtInt(counts[id]?.event_count || 0)}</td>
                <td class="num">${fmtBytes(counts[id]?.thumbnail_bytes || 0)}</td>
                <td>
                  <input type="number" min="0" max="3650" class="days-input" aria-label=${`Keep events of ${name} for (days)`} placeholder=${days || String(settings.retention_days)}
                    value=${perCam[id] ?? ''} aria-invalid=${err ? 'true' : undefined} onInput=${(e) => setPerCam({ ...perCam, [id]: e.target.value })} />
                  ${err ? html`<small class="error" role="alert">${err.detail}</small>` : null}
                </td>
              </tr>`;
            })}
          </tbody>
        </table></div>
        <small class="hint">Empty: the setting above. 0 keeps that camera's events (the size limit still applies).</small>`
      : html`<p class="muted">No cameras.</p>`}
    <${FormError} error=${error} fields=${['retention_days', 'max_storage_bytes', 'min_free_disk_bytes', ...(subError(error, 'camera_retention.') ? ['camera_retention'] : [])]} />
    <div class="actions"><button type="submit" class="primary" disabled=${busy}>${busy ? 'Saving…' : 'Save'}</button></div>
  </form>`;
}

function Pruning({ st }) {
  const p = st.last_prune;
  const c = st.consistency;
  return html`<section class="card">
    <h2>Pruning ${st.pruning ? html`<span class="pill">running</span>` : null}</h2>
    ${p
      ? html`<${Facts} label="Last pruning run" rows=${[
          ['Last run', `${fmtTime(p.finished_at)} (${p.trigger})`],
          ['Events deleted', `${fmtInt(p.events_deleted)} (by age ${fmtInt(p.by_age)}, size ${fmtInt(p.by_size)}, low disk ${fmtInt(p.by_low_disk)})`],
          ['Snapshots deleted', `${fmtInt(p.thumbnails_deleted)}, ${fmtBytes(p.bytes_freed)} freed`],
          ['Took', `${p.duration_ms.toFixed(1)} ms in ${p.batches} batch${p.batches === 1 ? '' : 'es'} (longest ${p.max_batch_ms.toFixed(1)} ms)`],
          ['Error', p.error],
          ['Runs since start-up', fmtInt(st.prune_runs)],
        ]} />`
      : html`<p class="muted">No run since start-up.</p>`}
    ${c
      ? html`<h3>Start-up check</h3>
        <${Facts} label="Start-up consistency check" rows=${[
          ['Checked', fmtTime(c.checked_at)],
          ['Files and rows', `${fmtInt(c.files_checked)} files, ${fmtInt(c.rows_checked)} rows`],
          ['Removed', `${fmtInt(c.orphans_removed)} orphaned and ${fmtInt(c.temp_files_removed)} temporary files`],
          ['Events missing their snapshot', fmtInt(c.rows_missing_file)],
        ]} />`
      : null}
  </section>`;
}

function Cleanup({ onDone }) {
  const [date, setDate] = useState('');
  const [result, setResult] = useState(null);
  const { busy, error, setError, run } = useAction();
  const submit = async (e) => {
    e.preventDefault();
    setResult(null);
    if (!confirm(`Delete every event before ${date} (midnight UTC) with its snapshot? This cannot be undone.`)) return;
    const r = await run(() => api('DELETE', `/events/cleanup?before_date=${encodeURIComponent(date)}`));
    if (r) {
      setResult(r);
      onDone();
    }
  };
  return html`<form class="card" onSubmit=${submit} onInput=${() => (error && setError(null), setResult(null))}>
    <h2>Delete old events</h2>
    <div class="row cleanup">
      <${Field} label="Delete events before" name="before_date" error=${error}>
        ${(id, errId) => html`<input id=${id} type="date" required value=${date} aria-describedby=${errId} onInput=${(e) => setDate(e.target.value)} />`}
      </${Field}>
      <button type="submit" class="danger" disabled=${busy || !date}>${busy ? 'Deleting…' : 'Delete'}</button>
    </div>
    <small class="hint">Midnight UTC: the events of that day are kept.</small>
    <${FormError} error=${error} fields=${['before_date']} />
    ${result
      ? html`<p role="status">Deleted ${fmtInt(result.deleted_count)} event${result.deleted_count === 1 ? '' : 's'} and ${fmtInt(result.thumbnails_deleted)} snapshot${result.thumbnails_deleted === 1 ? '' : 's'}, freeing ${fmtBytes(result.bytes_freed)}.</p>`
      : null}
  </form>`;
}
