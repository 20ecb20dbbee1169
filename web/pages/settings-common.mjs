// What the settings tabs share: a loaded-or-problem wrapper (a 403 shows its detail in the tab),
// polling while the page is visible, a request runner with its busy flag and error, the error of
// a nested field ("ai_providers.openai.api_key: ..."), checkboxes, key-value lists and units.
import { html, useState, useEffect, useRef, useCallback, api, Spinner } from '../lib.mjs';

/** What went wrong (a 403 says which scope is missing), with "Try again" unless it was a 403. */
export function Problem({ error, retry }) {
  if (!error) return null;
  const text = error.detail || String(error);
  return html`<div class="error banner" role="alert">
    ${text} ${retry && error.status !== 403 ? html`<button type="button" class="link" onClick=${retry}>Try again</button>` : null}
  </div>`;
}

/** Renders `children(data...)` once every `useApi` result in `qs` has data; else a spinner or the problem. */
export function Loaded({ qs, children }) {
  const failed = qs.find((q) => !q.data && q.error);
  if (failed) return html`<${Problem} error=${failed.error} retry=${failed.reload} />`;
  if (qs.some((q) => !q.data)) return html`<${Spinner} />`;
  return children(...qs.map((q) => q.data));
}

/** True when the request was refused for a missing scope (no point in asking again). */
export const forbidden = (q) => !!(q.error && q.error.status === 403);

/** Calls `fn` every `ms` while the page is visible (and at once when it becomes visible again),
 *  unless `on` is false. */
export function usePoll(fn, ms = 5000, on = true) {
  const ref = useRef(fn);
  ref.current = fn;
  useEffect(() => {
    if (!on) return undefined;
    const tick = () => !document.hidden && ref.current();
    const t = setInterval(tick, ms);
    document.addEventListener('visibilitychange', tick);
    return () => {
      clearInterval(t);
      document.removeEventListener('visibilitychange', tick);
    };
  }, [ms, on]);
}

/** `{busy, error, setError, run}`: `run(async () => ...)` answers the result, or undefined on an error. */
export function useAction() {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(null);
  const run = useCallback(async (fn) => {
    setBusy(true);
    setError(null);
    try {
      return await fn();
    } catch (e) {
      setError(e);
      return undefined;
    } finally {
      setBusy(false);
    }
  }, []);
  return { busy, error, setError, run };
}

/** The error as one naming the field after `prefix` (`'ai_providers.openai.'` turns
 *  `ai_providers.openai.model: ...` into field `model`), or null. */
export function subError(error, prefix) {
  const d = error && error.detail;
  if (!d || !d.startsWith(prefix)) return null;
  const m = /^([^.:\s]+)[^:]*:\s/.exec(d.slice(prefix.length));
  return m ? { field: m[1], detail: d } : null;
}

/** A checkbox with its label after it. `onInput`, not `onChange`: a form's own input handler
 *  (clearing its error) re-renders between the two events and would undo the click. */
export function Check({ label, name, checked, onChange, disabled, hint }) {
  const id = useRef(`c${Math.random().toString(36).slice(2, 9)}`).current;
  return html`<div class="field check">
    <input type="checkbox" id=${id} name=${name} checked=${checked} disabled=${disabled} onInput=${(e) => onChange(e.target.checked)} />
    <label for=${id}>${label}</label>
    ${hint ? html`<small class="hint">${hint}</small>` : null}
  </div>`;
}

/** A list of `[label, value]` pairs; a null/undefined/'' value is left out. */
export function Facts({ rows, label }) {
  return html`<dl class="facts" aria-label=${label}>
    ${rows
      .filter(([, v]) => v !== null && v !== undefined && v !== '')
      .map(([k, v]) => html`<div><dt>${k}</dt><dd>${v}</dd></div>`)}
  </dl>`;
}

/** A filled bar, `value` of `max`, with a text alternative. */
export function Bar({ value, max, label }) {
  const pct = max > 0 ? Math.min(100, (value / max) * 100) : 0;
  return html`<div class="bar" role="img" aria-label=${label}><div style=${{ width: pct.toFixed(1) + '%' }}></div></div>`;
}

/** An input's text as a number, '' as null. */
export function num(v) {
  if (v === '' || v === null || v === undefined) return null;
  const n = Number(v);
  return Number.isFinite(n) ? n : NaN;
}

export const ok = (b, yes = 'yes', no = 'no') => html`<span class=${'pill ' + (b ? 'ok' : 'error')}>${b ? yes : no}</span>`;

export function fmtDuration(s) {
  const d = Math.floor(s / 86400);
  const h = Math.floor((s % 86400) / 3600);
  const m = Math.floor((s % 3600) / 60);
  if (d) return `${d} d ${h} h`;
  if (h) return `${h} h ${m} min`;
  return `${m} min ${s % 60} s`;
}

export const fmtInt = (n) => (n === null || n === undefined ? '' : Number(n).toLocaleString());

export const saveSettings = (patch) => api('PUT', '/system/settings', patch);

/** Binary units for byte fields (the API's limits are in MiB). */
export const UNITS = [
  ['MiB', 1 << 20],
  ['GiB', 1 << 30],
];
/** A byte count as `[amount text, unit]` for a number field with a unit select. */
export function splitBytes(b) {
  if (b === null || b === undefined) return ['', 'GiB'];
  if (b >= 1 << 30 && b % (1 << 26) === 0) return [String(b / (1 << 30)), 'GiB'];
  return [String(Math.round((b / (1 << 20)) * 100) / 100), 'MiB'];
}
export function joinBytes(amount, unit) {
  const n = num(amount);
  if (n === null || Number.isNaN(n)) return n;
  return Math.round(n * UNITS.find(([u]) => u === unit)[1]);
}
