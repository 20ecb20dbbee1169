// Settings tabs "AI providers" and "Costs": the cloud providers (keys, models, base URLs, which
// are used and in which order; saved with PUT /system/settings), the description limits, the cost
// caps and price overrides, and the usage over a date range (GET /ai/usage).
import { html, useState, useApi, Field, FormError, Pager, toast, fmtUsd } from '../lib.mjs';
import { Loaded, forbidden, useAction, subError, Check, Bar, Facts, num, fmtInt, saveSettings } from './settings-common.mjs';

const LABELS = {
  openai: 'OpenAI',
  anthropic: 'Anthropic',
  gemini: 'Google Gemini',
  grok: 'xAI Grok',
  openai_compatible: 'Local server (OpenAI-compatible)',
};
const CIRCUIT = {
  closed: ['ok', 'working', 'Circuit closed: calls go through'],
  open: ['error', 'paused', 'Circuit open: paused after repeated failures, tried again in a minute'],
  half_open: ['', 'probing', 'Circuit half-open: one probe call is let through'],
};

// ---- AI providers ---------------------------------------------------------------------------------

export function ProvidersTab() {
  const settings = useApi('/system/settings');
  const providers = useApi('/ai/providers');
  const [version, setVersion] = useState(0);
  const saved = (s) => {
    settings.setData(s);
    providers.reload();
    setVersion((v) => v + 1);
  };
  return html`<${Loaded} qs=${[settings, providers]}>
    ${(s, p) => html`<${ProvidersForm} key=${version} settings=${s} dto=${p} onSaved=${saved} />`}
  </${Loaded}>`;
}

function initial(settings, dto) {
  const names = [...settings.ai_provider_order, ...dto.providers.map((p) => p.name).filter((n) => !settings.ai_provider_order.includes(n))];
  const form = {};
  names.forEach((n) => {
    const p = settings.ai_providers[n] || {};
    form[n] = { api_key: '', remove_key: false, model: p.model || '', base_url: p.base_url || '' };
  });
  return { names, used: new Set(settings.ai_provider_order), form };
}

function ProvidersForm({ settings, dto, onSaved }) {
  const [state, setState] = useState(() => initial(settings, dto));
  const [limits, setLimits] = useState({
    budget: String(settings.ai_description_budget_seconds),
    interval: String(settings.ai_min_interval_seconds),
  });
  const { busy, error, setError, run } = useAction();
  const byName = Object.fromEntries(dto.providers.map((p) => [p.name, p]));
  const set = (n, k, v) => setState((s) => ({ ...s, form: { ...s.form, [n]: { ...s.form[n], [k]: v } } }));
  const move = (i, d) =>
    setState((s) => {
      const names = [...s.names];
      [names[i], names[i + d]] = [names[i + d], names[i]];
      return { ...s, names };
    });
  const use = (n, on) =>
    setState((s) => {
      const used = new Set(s.used);
      if (on) used.add(n);
      else used.delete(n);
      return { ...s, used };
    });

  const submit = async (e) => {
    e.preventDefault();
    const ai_providers = {};
    state.names.forEach((n) => {
      const f = state.form[n];
      const was = settings.ai_providers[n] || {};
      const u = {};
      if (f.api_key.trim()) u.api_key = f.api_key.trim();
      else if (f.remove_key) u.api_key = null;
      ['model', 'base_url'].forEach((k) => {
        const v = f[k].trim() || null;
        if (v !== (was[k] ?? null)) u[k] = v;
      });
      if (Object.keys(u).length) ai_providers[n] = u;
    });
    const patch = {
      ai_provider_order: state.names.filter((n) => state.used.has(n)),
      ai_description_budget_seconds: num(limits.budget),
      ai_min_interval_seconds: num(limits.interval),
    };
    if (Object.keys(ai_providers).length) patch.ai_providers = ai_providers;
    const s = await run(() => saveSettings(patch));
    if (s) {
      toast('AI providers saved');
      onSaved(s);
    }
  };

  const providerErr = (n) => subError(error, `ai_providers.${n}.`);
  const shownAtField = state.names.some((n) => providerErr(n)) || ['ai_description_budget_seconds', 'ai_min_interval_seconds'].includes(error && error.field);
  return html`<form onSubmit=${submit} onInput=${() => error && setError(null)}>
    <p class="muted">Object events are described by the first provider in this order that has a key (the local server needs none). Keys are stored sealed and never shown again.</p>
    <ol class="providers">
      ${state.names.map((n, i) => {
        const p = byName[n] || { name: n };
        const f = state.form[n];
        const err = providerErr(n);
        const local = n === 'openai_compatible';
        const [cls, word, title] = CIRCUIT[p.circuit] || ['', p.circuit, ''];
        return html`<li class=${'card provider' + (state.used.has(n) ? '' : ' unused')}>
          <div class="provider-head">
            <h3>${i + 1}. ${LABELS[n] || n}</h3>
            <span class=${'pill ' + (p.configured ? 'ok' : '')}>${local ? (p.configured ? 'set up' : 'not set up') : p.configured ? `key set${p.key_hint ? ` (…${p.key_hint})` : ''}` : 'no key'}</span>
            ${p.configured || p.circuit !== 'closed' ? html`<span class=${'pill ' + cls} title=${title}>${word}</span>` : null}
            <div class="actions">
              <button type="button" aria-label=${`Move ${LABELS[n]} up`} title="Move up" disabled=${i === 0} onClick=${() => move(i, -1)}>↑</button>
              <button type="button" aria-label=${`Move ${LABELS[n]} down`} title="Move down" disabled=${i === state.names.length - 1} onClick=${() => move(i, 1)}>↓</button>
            </div>
          </div>
          <${Check} label="Use this provider" name=${`use-${n}`} checked=${state.used.has(n)} onChange=${(v) => use(n, v)} />
          <div class="provider-fields">
            <${Field} label=${local ? 'API key (optional)' : 'API key'} name="api_key" error=${err}
              hint=${p.configured && !local ? 'Leave empty to keep the stored key.' : 'Stored sealed; never shown again.'}>
              ${(id, errId) => html`<input id=${id} name=${`${n}-api_key`} type="password" autocomplete="off" value=${f.api_key}
                placeholder=${p.configured && !local ? 'key set' : ''} aria-describedby=${errId} onInput=${(e) => set(n, 'api_key', e.target.value)} />`}
            </${Field}>
            <${Field} label="Model" name="model" error=${err} hint=${f.model ? 'Empty: the provider\'s default model.' : `Default: ${p.model || ''}`}>
              ${(id, errId) => html`<input id=${id} name=${`${n}-model`} value=${f.model} placeholder=${settings.ai_providers[n]?.model ? '' : p.model || ''}
                aria-describedby=${errId} onInput=${(e) => set(n, 'model', e.target.value)} />`}
            </${Field}>
            <${Field} label=${local ? 'Server base URL' : 'Base URL'} name="base_url" error=${err}
              hint=${local ? `${p.configured ? '' : 'Not set up: enter its URL to use it. '}Ollama, llama.cpp or any OpenAI-compatible server, e.g. http://192.168.1.20:11434/v1` : f.base_url ? 'Empty: the provider\'s public endpoint.' : 'Change only for a proxy or gateway.'}>
              ${(id, errId) => html`<input id=${id} name=${`${n}-base_url`} type="url" inputmode="url" value=${f.base_url}
                placeholder=${settings.ai_providers[n]?.base_url ? '' : p.base_url || ''} aria-describedby=${errId} onInput=${(e) => set(n, 'base_url', e.target.value)} />`}
            </${Field}>
          </div>
          ${p.configured && p.key_hint
            ? html`<${Check} label="Remove the stored key" name=${`${n}-remove_key`} checked=${f.remove_key} onChange=${(v) => set(n, 'remove_key', v)} />`
            : null}
        </li>`;
      })}
    </ol>
    <div class="card">
      <h2>Limits</h2>
      <div class="grid">
        <${Field} label="Time for one description (s)" name="ai_description_budget_seconds" error=${error} hint="Across every provider and retry, 1-120.">
          ${(id, errId) => html`<input id=${id} type="number" min="1" max="120" required value=${limits.budget} aria-describedby=${errId} onInput=${(e) => setLimits({ ...limits, budget: e.target.value })} />`}
        </${Field}>
        <${Field} label="Least time between calls for one camera (s)" name="ai_min_interval_seconds" error=${error} hint="0-3600; events inside it keep only the local detection.">
          ${(id, errId) => html`<input id=${id} type="number" min="0" max="3600" required value=${limits.interval} aria-describedby=${errId} onInput=${(e) => setLimits({ ...limits, interval: e.target.value })} />`}
        </${Field}>
      </div>
    </div>
    ${!shownAtField ? html`<${FormError} error=${error} />` : null}
    <div class="actions sticky-save"><button type="submit" class="primary" disabled=${busy}>${busy ? 'Saving…' : 'Save'}</button></div>
  </form>`;
}

// ---- Costs ------------------------------------------------------------------------------------------

export function CostsTab() {
  const settings = useApi('/system/settings');
  const [version, setVersion] = useState(0);
  return html`
    <${Loaded} qs=${[settings]}>
      ${(s) => html`<${CapsForm} key=${version} settings=${s} onSaved=${(n) => (settings.setData(n), setVersion((v) => v + 1))} />`}
    </${Loaded}>
    ${forbidden(settings) ? null : html`<${Usage} settings=${settings.data} />`}`;
}

function CapsForm({ settings, onSaved }) {
  const [daily, setDaily] = useState(settings.ai_daily_cost_cap_usd ?? '');
  const [monthly, setMonthly] = useState(settings.ai_monthly_cost_cap_usd ?? '');
  const [prices, setPrices] = useState(() =>
    Object.entries(settings.ai_prices).map(([model, p]) => ({ model, input: String(p.input_per_mtok), output: String(p.output_per_mtok) })),
  );
  const { busy, error, setError, run } = useAction();
  const setPrice = (i, k, v) => setPrices((l) => l.map((p, j) => (j === i ? { ...p, [k]: v } : p)));
  const submit = async (e) => {
    e.preventDefault();
    const ai_prices = {};
    prices.filter((p) => p.model.trim()).forEach((p) => {
      ai_prices[p.model.trim()] = { input_per_mtok: num(p.input) ?? 0, output_per_mtok: num(p.output) ?? 0 };
    });
    const s = await run(() => saveSettings({ ai_daily_cost_cap_usd: num(daily), ai_monthly_cost_cap_usd: num(monthly), ai_prices }));
    if (s) {
      toast('Cost settings saved');
      onSaved(s);
    }
  };
  return html`<form class="card" onSubmit=${submit} onInput=${() => error && setError(null)}>
    <h2>Spending caps</h2>
    <p class="muted">When a cap is reached, cloud calls pause until the next UTC day or month; events are still stored with their local detection.</p>
    <div class="grid">
      <${Field} label="Daily cap (USD)" name="ai_daily_cost_cap_usd" error=${error} hint="Empty: no cap.">
        ${(id, errId) => html`<input id=${id} type="number" min="0" step="0.01" inputmode="decimal" value=${daily} aria-describedby=${errId} onInput=${(e) => setDaily(e.target.value)} />`}
      </${Field}>
      <${Field} label="Monthly cap (USD)" name="ai_monthly_cost_cap_usd" error=${error} hint="Empty: no cap.">
        ${(id, errId) => html`<input id=${id} type="number" min="0" step="0.01" inputmode="decimal" value=${monthly} aria-describedby=${errId} onInput=${(e) => setMonthly(e.target.value)} />`}
      </${Field}>
    </div>
    <h3>Price overrides</h3>
    <p class="muted">USD per million tokens, for models whose list price differs from the built-in table.</p>
    ${prices.length
      ? html`<div class="prices">
          ${prices.map(
            (p, i) => html`<div class="price-row">
              <${Field} label="Model" name=${`price-model-${i}`}>${(id) => html`<input id=${id} value=${p.model} required onInput=${(e) => setPrice(i, 'model', e.target.value)} />`}</${Field}>
              <${Field} label="Input" name=${`price-in-${i}`}>${(id) => html`<input id=${id} type="number" min="0" step="any" value=${p.input} required onInput=${(e) => setPrice(i, 'input', e.target.value)} />`}</${Field}>
              <${Field} label="Output" name=${`price-out-${i}`}>${(id) => html`<input id=${id} type="number" min="0" step="any" value=${p.output} required onInput=${(e) => setPrice(i, 'output', e.target.value)} />`}</${Field}>
              <button type="button" class="danger" aria-label=${`Remove the price of ${p.model || 'this model'}`} onClick=${() => setPrices((l) => l.filter((_, j) => j !== i))}>Remove</button>
            </div>`,
          )}
        </div>`
      : html`<p class="muted">None: the built-in list prices apply.</p>`}
    ${error && error.field === 'ai_prices' ? html`<small class="error" role="alert">${error.detail}</small>` : null}
    <div class="actions">
      <button type="button" onClick=${() => setPrices((l) => [...l, { model: '', input: '', output: '' }])}>Add a price</button>
      <button type="submit" class="primary" disabled=${busy}>${busy ? 'Saving…' : 'Save'}</button>
    </div>
    <${FormError} error=${error} fields=${['ai_daily_cost_cap_usd', 'ai_monthly_cost_cap_usd', 'ai_prices']} />
  </form>`;
}

const DAYS_PER_PAGE = 14;

function Usage({ settings }) {
  const [range, setRange] = useState({ start: '', end: '' });
  const [page, setPage] = useState(1);
  const qs = new URLSearchParams();
  if (range.start) qs.set('start_date', range.start);
  if (range.end) qs.set('end_date', range.end);
  const usage = useApi('/ai/usage' + (qs.toString() ? '?' + qs : ''));
  const u = usage.data;
  const days = u ? [...u.by_day].sort((a, b) => (a.date < b.date ? 1 : -1)) : [];
  const pages = Math.ceil(days.length / DAYS_PER_PAGE);
  const shown = days.slice((page - 1) * DAYS_PER_PAGE, page * DAYS_PER_PAGE);
  const byCost = days.some((d) => d.cost_usd > 0);
  const max = Math.max(0, ...days.map((d) => (byCost ? d.cost_usd : d.calls)));
  const today = new Date().toISOString().slice(0, 10);
  const todayCost = days.find((d) => d.date.slice(0, 10) === today)?.cost_usd || 0;
  const setR = (k, v) => {
    setRange({ ...range, [k]: v });
    setPage(1);
  };
  const err = usage.error;
  return html`<section class="card">
    <h2>Usage</h2>
    <div class="filters">
      <${Field} label="From" name="start_date" error=${err} hint="Empty: 30 days ago.">
        ${(id, errId) => html`<input id=${id} type="date" value=${range.start} aria-describedby=${errId} onChange=${(e) => setR('start', e.target.value)} />`}
      </${Field}>
      <${Field} label="To" name="end_date" error=${err} hint="Empty: now.">
        ${(id, errId) => html`<input id=${id} type="date" value=${range.end} aria-describedby=${errId} onChange=${(e) => setR('end', e.target.value)} />`}
      </${Field}>
    </div>
    <${FormError} error=${err} fields=${['start_date', 'end_date']} />
    ${!u
      ? usage.loading ? html`<p class="muted" role="status">Loading…</p>` : null
      : html`
        <${Facts} label="Totals" rows=${[
          ['Period', `${u.start.slice(0, 10)} to ${u.end.slice(0, 10)} (UTC)`],
          ['Calls', `${fmtInt(u.total_calls)} (${fmtInt(u.successful_calls)} answered, ${fmtInt(u.failed_calls)} failed)`],
          ['Tokens', fmtInt(u.total_tokens)],
          ['Cost', fmtUsd(u.total_cost_usd)],
          ['Average latency', u.total_calls ? `${Math.round(u.avg_latency_ms)} ms` : null],
          ['Today (UTC)', settings && settings.ai_daily_cost_cap_usd !== null ? `${fmtUsd(todayCost)} of the ${fmtUsd(settings.ai_daily_cost_cap_usd)} daily cap` : null],
        ]} />
        <h3>By provider</h3>
        ${Object.keys(u.by_provider).length
          ? html`<div class="table-wrap"><table>
              <thead><tr><th>Provider</th><th class="num">Calls</th><th class="num">Answered</th><th class="num">Tokens in</th><th class="num">Tokens out</th><th class="num">Cost</th><th class="num">Latency</th></tr></thead>
              <tbody>
                ${Object.entries(u.by_provider).map(
                  ([n, p]) => html`<tr><td>${LABELS[n] || n}</td><td class="num">${fmtInt(p.calls)}</td><td class="num">${fmtInt(p.successful_calls)}</td>
                    <td class="num">${fmtInt(p.tokens_in)}</td><td class="num">${fmtInt(p.tokens_out)}</td><td class="num">${fmtUsd(p.cost_usd)}</td><td class="num">${Math.round(p.avg_latency_ms)} ms</td></tr>`,
                )}
              </tbody>
            </table></div>`
          : html`<p class="muted">No cloud calls in this period.</p>`}
        <h3>By day (UTC)</h3>
        ${days.length
          ? html`<div class="table-wrap"><table class="days">
              <thead><tr><th>Day</th><th class="num">Calls</th><th class="num">Cost</th><th class="bar-col"><span class="visually-hidden">${byCost ? 'Cost' : 'Calls'} as a bar</span></th></tr></thead>
              <tbody>
                ${shown.map(
                  (d) => html`<tr><td>${d.date.slice(0, 10)}</td><td class="num">${fmtInt(d.calls)}</td><td class="num">${fmtUsd(d.cost_usd)}</td>
                    <td class="bar-col"><${Bar} value=${byCost ? d.cost_usd : d.calls} max=${max} label=${`${fmtUsd(d.cost_usd)}, ${d.calls} calls`} /></td></tr>`,
                )}
              </tbody>
            </table></div>
            <${Pager} page=${page} pages=${pages} onPage=${setPage} />`
          : html`<p class="muted">Nothing to show.</p>`}`}
  </section>`;
}
