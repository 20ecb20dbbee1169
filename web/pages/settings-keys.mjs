// Settings tab "API keys": the keys (GET /api-keys), creating one (the key is shown once, kept
// only in this component's state until "Done"), revoking one, and a key's use per day.
import { html, useState, useApi, Field, FormError, Pager, toast, fmtTime, fmtAgo, api, localToIso } from '../lib.mjs';
import { Loaded, Problem, useAction, Bar, Facts, fmtInt } from './settings-common.mjs';

const SCOPES = [
  ['read:events', 'Read events, snapshots and notifications'],
  ['read:cameras', 'Read cameras and Protect controllers'],
  ['write:cameras', 'Add, change and delete cameras (and read them)'],
  ['admin', 'Everything, including settings and keys'],
];
const PER_PAGE = 20;

export default function KeysTab() {
  const [revoked, setRevoked] = useState(false);
  const keys = useApi('/api-keys' + (revoked ? '?include_revoked=true' : ''));
  const [created, setCreated] = useState(null);
  return html`
    ${created ? html`<${Created} k=${created} onDone=${() => setCreated(null)} />` : null}
    <${Loaded} qs=${[keys]}>
      ${(list) => html`<${KeyList} list=${list} revoked=${revoked} setRevoked=${setRevoked} reload=${keys.reload} />`}
    </${Loaded}>
    ${keys.error && keys.error.status === 403 ? null : html`<${CreateForm} onCreated=${(k) => (setCreated(k), keys.reload())} />`}`;
}

function Created({ k, onDone }) {
  const [copied, setCopied] = useState('');
  const select = () => {
    const el = document.getElementById('key-created');
    const r = document.createRange();
    r.selectNodeContents(el);
    const s = getSelection();
    s.removeAllRanges();
    s.addRange(r);
  };
  const copy = async () => {
    try {
      await navigator.clipboard.writeText(k.key);
      setCopied('Copied.');
    } catch (_) {
      select();
      setCopied('Copying is not allowed here: the key is selected, copy it with Ctrl+C (or long-press).');
    }
  };
  return html`<section class="card key-box" role="region" aria-labelledby="key-created-title">
    <h2 id="key-created-title">API key “${k.name}” created</h2>
    <p><strong>Copy it now: it will not be shown again.</strong> Only a hash of it is stored.</p>
    <code id="key-created" onClick=${select}>${k.key}</code>
    <div class="actions">
      <button type="button" class="primary" onClick=${copy}>Copy</button>
      <button type="button" onClick=${onDone}>Done</button>
      <span role="status" class="muted">${copied}</span>
    </div>
  </section>`;
}

function KeyList({ list, revoked, setRevoked, reload }) {
  const [page, setPage] = useState(1);
  const [open, setOpen] = useState(null);
  const [busy, setBusy] = useState(null);
  const [error, setError] = useState(null);
  const pages = Math.ceil(list.length / PER_PAGE);
  const shown = list.slice((page - 1) * PER_PAGE, page * PER_PAGE);
  const revoke = async (k) => {
    if (!confirm(`Revoke the API key “${k.name}” (${k.prefix})? Scripts using it stop working at once.`)) return;
    setBusy(k.id);
    setError(null);
    try {
      await api('DELETE', `/api-keys/${encodeURIComponent(k.id)}`);
      toast(`Key “${k.name}” revoked`);
      reload();
    } catch (e) {
      setError(e);
    } finally {
      setBusy(null);
    }
  };
  const state = (k) => (k.revoked_at ? html`<span class="pill error">revoked</span>` : k.is_active ? html`<span class="pill ok">active</span>` : html`<span class="pill error">expired</span>`);
  return html`<section class="card">
    <div class="row spread">
      <h2>API keys</h2>
      <label class="inline-check"><input type="checkbox" checked=${revoked} onChange=${(e) => (setRevoked(e.target.checked), setPage(1))} /> Show revoked keys</label>
    </div>
    <${Problem} error=${error} />
    ${list.length
      ? html`<div class="table-wrap"><table class="keys">
          <thead><tr><th>Name</th><th>Key</th><th>Scopes</th><th>Created</th><th>Last used</th><th>Expires</th><th class="num">Per minute</th><th><span class="visually-hidden">Actions</span></th></tr></thead>
          <tbody>
            ${shown.map(
              (k) => html`<tr>
                  <td data-label="Name"><strong>${k.name}</strong> ${state(k)}</td>
                  <td data-label="Key"><code>${k.prefix}</code></td>
                  <td data-label="Scopes">${k.scopes.map((s) => html`<span class="pill">${s}</span> `)}</td>
                  <td data-label="Created">${fmtTime(k.created_at)}</td>
                  <td data-label="Last used">${k.last_used_at ? html`<span title=${fmtTime(k.last_used_at)}>${fmtAgo(k.last_used_at)}</span>` : 'never'} (${fmtInt(k.usage_count)})</td>
                  <td data-label="Expires">${k.expires_at ? fmtTime(k.expires_at) : 'never'}</td>
                  <td data-label="Per minute" class="num">${fmtInt(k.rate_limit_per_minute)}</td>
                  <td class="key-actions"><div class="actions">
                    <button type="button" class="link" aria-expanded=${open === k.id ? 'true' : 'false'} aria-label=${`Usage of ${k.name}`} onClick=${() => setOpen(open === k.id ? null : k.id)}>Usage</button>
                    ${k.revoked_at ? null : html`<button type="button" class="danger" aria-label=${`Revoke ${k.name}`} disabled=${busy === k.id} onClick=${() => revoke(k)}>${busy === k.id ? 'Revoking…' : 'Revoke'}</button>`}
                  </div></td>
                </tr>
                ${open === k.id ? html`<tr class="usage-row"><td colspan="8"><${KeyUsage} id=${k.id} /></td></tr>` : null}`,
            )}
          </tbody>
        </table></div>
        <${Pager} page=${page} pages=${pages} onPage=${setPage} />`
      : html`<p class="muted empty">No API keys yet. Scripts and integrations authenticate with one (header <code>X-API-Key</code>).</p>`}
  </section>`;
}

function KeyUsage({ id }) {
  const q = useApi(`/api-keys/${encodeURIComponent(id)}/usage`);
  return html`<${Loaded} qs=${[q]}>
    ${(u) => {
      const days = [...u.daily].sort((a, b) => (a.date < b.date ? 1 : -1)).slice(0, 14);
      const max = Math.max(0, ...days.map((d) => d.count));
      return html`<div class="key-usage">
        <${Facts} label="Usage" rows=${[
          ['Requests', fmtInt(u.usage_count)],
          ['Last used', u.last_used_at ? `${fmtTime(u.last_used_at)}${u.last_used_ip ? ` from ${u.last_used_ip}` : ''}` : 'never'],
        ]} />
        ${days.length
          ? html`<table class="days"><caption class="visually-hidden">Requests per UTC day</caption>
              <tbody>${days.map((d) => html`<tr><td>${d.date.slice(0, 10)}</td><td class="num">${fmtInt(d.count)}</td><td class="bar-col"><${Bar} value=${d.count} max=${max} label=${`${d.count} requests`} /></td></tr>`)}</tbody>
            </table>`
          : html`<p class="muted">No requests yet.</p>`}
      </div>`;
    }}
  </${Loaded}>`;
}

function CreateForm({ onCreated }) {
  const blank = { name: '', scopes: ['read:events'], rate: '100', expires: '' };
  const [f, setF] = useState(blank);
  const { busy, error, setError, run } = useAction();
  const toggle = (s, on) => setF((x) => ({ ...x, scopes: on ? [...x.scopes, s] : x.scopes.filter((y) => y !== s) }));
  const submit = async (e) => {
    e.preventDefault();
    const body = { name: f.name.trim(), scopes: f.scopes, rate_limit_per_minute: f.rate === '' ? null : Number(f.rate) };
    if (f.expires) body.expires_at = localToIso(f.expires);
    const k = await run(() => api('POST', '/api-keys', body));
    if (k) {
      setF(blank);
      onCreated(k);
    }
  };
  const scopeErr = error && error.field === 'scopes' ? error.detail : null;
  return html`<form class="card" onSubmit=${submit} onInput=${() => error && setError(null)}>
    <h2>New API key</h2>
    <div class="grid">
      <${Field} label="Name" name="name" error=${error} hint="What uses it, e.g. Home Assistant.">
        ${(id, errId) => html`<input id=${id} name="name" required maxlength="100" value=${f.name} aria-describedby=${errId} onInput=${(e) => setF({ ...f, name: e.target.value })} />`}
      </${Field}>
      <${Field} label="Requests per minute" name="rate_limit_per_minute" error=${error} hint="1-100000.">
        ${(id, errId) => html`<input id=${id} name="rate_limit_per_minute" type="number" min="1" max="100000" value=${f.rate} aria-describedby=${errId} onInput=${(e) => setF({ ...f, rate: e.target.value })} />`}
      </${Field}>
      <${Field} label="Expires (optional)" name="expires_at" error=${error} hint="Empty: never.">
        ${(id, errId) => html`<input id=${id} name="expires_at" type="datetime-local" value=${f.expires} aria-describedby=${errId} onInput=${(e) => setF({ ...f, expires: e.target.value })} />`}
      </${Field}>
    </div>
    <fieldset class=${'scopes' + (scopeErr ? ' invalid' : '')} aria-describedby=${scopeErr ? 'key-scopes-err' : undefined}>
      <legend>Scopes</legend>
      ${SCOPES.map(
        ([s, what]) => html`<label class="inline-check">
          <input type="checkbox" name="scopes" value=${s} checked=${f.scopes.includes(s)} onInput=${(e) => toggle(s, e.target.checked)} />
          <code>${s}</code> <span class="muted">${what}</span>
        </label>`,
      )}
      ${scopeErr ? html`<small class="error" id="key-scopes-err" role="alert">${scopeErr}</small>` : null}
    </fieldset>
    <${FormError} error=${error} fields=${['name', 'rate_limit_per_minute', 'expires_at', 'scopes']} />
    <div class="actions"><button type="submit" id="key-create" class="primary" disabled=${busy}>${busy ? 'Creating…' : 'Create key'}</button></div>
  </form>`;
}
