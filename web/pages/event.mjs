// One event (/events/:id): the snapshot with its boxes, every field, live updates for it, and
// the admin's actions (delete, describe again with an optional prompt).
import {
  html, useState, useRef, api, useApi, useMessages, navigate, Link, Field, FormError, Spinner,
  Header, toast, fmtTime, fmtAgo, fmtUsd, can,
} from '../lib.mjs';
import { Shot, Description } from './events.mjs';

const yesNo = (v) => (v ? 'Yes' : 'No');
const cap = (s) => (s ? s[0].toUpperCase() + s.slice(1) : 'Event');

export default function EventPage({ params }) {
  const id = params[0];
  const path = '/events/' + encodeURIComponent(id);
  const { data: ev, error, loading, setData } = useApi(path);
  const [busy, setBusy] = useState(null); // 'delete' | 'reanalyse' while it runs
  const [actionError, setActionError] = useState(null);
  const [prompt, setPrompt] = useState('');
  const gone = useRef(false);

  const leave = (text) => {
    if (gone.current) return;
    gone.current = true;
    toast(text);
    navigate('/events');
  };

  useMessages(['event.updated', 'event.deleted'], (d, msg) => {
    if (!d || d.id !== id) return;
    if (msg.type === 'event.updated') setData(d);
    else if (busy !== 'delete') leave('This event was deleted.');
  });

  const remove = async () => {
    if (!confirm('Delete this event and its snapshot?')) return;
    setBusy('delete');
    setActionError(null);
    try {
      await api('DELETE', path);
      leave('Event deleted.');
    } catch (e) {
      setActionError(e);
      setBusy(null);
    }
  };

  const reanalyse = async () => {
    setBusy('reanalyse');
    setActionError(null);
    try {
      const body = prompt.trim() ? { prompt: prompt.trim() } : {};
      const updated = await api('POST', path + '/reanalyse', body);
      if (updated && updated.id === id) setData(updated);
      toast('Described again.');
    } catch (e) {
      setActionError(e);
    } finally {
      setBusy(null);
    }
  };

  const back = html`<${Link} href="/events" class="back">← Events</${Link}>`;
  if (!ev) {
    return html`<section class="event-page">${back}
      ${loading ? html`<${Spinner} label="Loading the event" />` : html`<${FormError} error=${error} />`}
    </section>`;
  }

  const facts = [
    ['Type', html`<span class=${'pill ' + ev.detection_type}>${ev.detection_type}</span>`],
    ['Confidence', `${ev.confidence}%`],
    ['Camera', html`<${Link} href=${'/events?camera_id=' + encodeURIComponent(ev.camera_id)} title="This camera's events">${ev.camera_name || ev.camera_id}</${Link}>`],
    ['Time', html`<time datetime=${ev.timestamp} title=${fmtAgo(ev.timestamp)}>${fmtTime(ev.timestamp)}</time>`],
    ['Objects', (ev.objects_detected || []).join(', ') || '—'],
    ['Source', ev.source_type],
    ['Doorbell ring', yesNo(ev.is_doorbell_ring)],
    ev.smart_detection_type ? ['Smart detection', ev.smart_detection_type] : null,
    ['AI provider', ev.provider_used ? ev.provider_used + (ev.ai_fallback_used ? ' (fallback)' : '') : '—'],
    ['AI cost', ev.ai_cost_usd != null ? fmtUsd(ev.ai_cost_usd) : '—'],
    ['AI confidence', ev.ai_confidence != null ? `${ev.ai_confidence}%` : '—'],
    ['Threat level', ev.threat_level || '—'],
    ev.ai_error ? ['AI error', html`<span class="error">${ev.ai_error}</span>`] : null,
    ['Re-analyses', String(ev.reanalysis_count)],
    ev.reanalyzed_at ? ['Last re-analysed', html`<time datetime=${ev.reanalyzed_at} title=${fmtAgo(ev.reanalyzed_at)}>${fmtTime(ev.reanalyzed_at)}</time>`] : null,
  ].filter(Boolean);

  const admin = can('admin');
  return html`<section class="event-page" data-event-id=${ev.id}>
    ${back}
    <${Header} title=${`${cap(ev.detection_type)} on ${ev.camera_name || 'a camera'}`}>
      ${admin ? html`
        <button type="button" onClick=${reanalyse} disabled=${!!busy}>${busy === 'reanalyse' ? 'Re-analysing…' : 'Re-analyse'}</button>
        <button type="button" class="danger" onClick=${remove} disabled=${!!busy}>${busy === 'delete' ? 'Deleting…' : 'Delete'}</button>` : null}
    </${Header}>
    <${FormError} error=${actionError} fields=${['prompt']} />
    <${FormError} error=${error} />
    <div class="detail">
      <div>
        <${Shot} ev=${ev} fit=${true} lazy=${false} />
        ${ev.description || ev.description_pending || ev.ai_error
          ? html`<${Description} ev=${ev} />`
          : html`<p class="description muted">No description.</p>`}
      </div>
      <div class="card">
        <h2>Details</h2>
        <dl class="facts">${facts.map(([k, v]) => html`<dt>${k}</dt><dd>${v}</dd>`)}</dl>
        ${admin ? html`<details open=${!!(actionError && actionError.field === 'prompt')}>
          <summary>Re-analyse with a prompt of your own</summary>
          <${Field} label="Prompt" name="prompt" error=${actionError} hint="Empty: the camera's prompt or the default one.">${(fid, errId) => html`
            <textarea id=${fid} rows="3" aria-describedby=${errId} value=${prompt} onInput=${(e) => setPrompt(e.target.value)}></textarea>`}</${Field}>
        </details>` : null}
      </div>
    </div>
  </section>`;
}

