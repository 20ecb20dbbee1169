// One event (/events/:id): the snapshot with its boxes and the event's clip (a tab each; the
// clip's tab appears, waiting, while a recent event's clip is still being recorded, and opens
// when `event.updated` says it is there), every field, live updates for it, and the admin's
// actions (delete, describe again with an optional prompt).
import {
  html, useState, useEffect, useRef, api, useApi, useMessages, navigate, Link, Field, FormError, Spinner,
  Header, toast, fmtTime, fmtAgo, fmtUsd, can,
} from '../lib.mjs';
import { Shot, Description, thumbSrc } from './events.mjs';

const yesNo = (v) => (v ? 'Yes' : 'No');
const cap = (s) => (s ? s[0].toUpperCase() + s.slice(1) : 'Event');
/** An event younger than this without a clip may still get one (post-capture, a Protect export). */
const CLIP_WAIT_MS = 10 * 60 * 1000;

const fmtSeconds = (s) => (s == null ? '' : s < 10 ? `${Math.round(s * 10) / 10} s` : s < 120 ? `${Math.round(s)} s` : `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`);

/** The name a downloaded clip gets: `<camera>-<time>.mp4`. */
function clipName(ev) {
  const cam = String(ev.camera_name || 'camera').replace(/[^\p{L}\p{N}_-]+/gu, '-').replace(/^-+|-+$/g, '') || 'camera';
  const at = String(ev.timestamp || '').replace(/\.\d+/, '').replace(/[:]/g, '-').replace(/[^0-9TZ+-]/g, '');
  return `${cam}-${at || ev.id}.mp4`;
}

/** The snapshot with its boxes, and the clip when there is one (or may soon be): tabs to switch,
 *  the clip's download link. */
function Media({ ev }) {
  const recent = Date.now() - Date.parse(ev.timestamp) < CLIP_WAIT_MS;
  const mayGet = !ev.has_clip && recent && ev.detection_type !== 'motion';
  // A camera that does not record clips will not get one.
  const cam = useApi(mayGet && can('read:cameras') ? '/cameras/' + encodeURIComponent(ev.camera_id) : null);
  const waiting = mayGet && !(cam.data && cam.data.record_clips === false);
  const [view, setView] = useState(ev.has_clip ? 'clip' : 'snapshot');
  const [failed, setFailed] = useState(null);
  const video = useRef(null);
  const playNext = useRef(false);

  // The clip arrived while the page was open.
  const had = useRef(ev.has_clip);
  useEffect(() => {
    if (ev.has_clip && !had.current) toast('The clip is ready.');
    had.current = ev.has_clip;
  }, [ev.has_clip]);
  // Chosen with a click: it plays (the click allows sound).
  useEffect(() => {
    if (view === 'clip' && playNext.current && video.current) {
      playNext.current = false;
      video.current.play().catch(() => {});
    }
  }, [view]);

  const show = (v) => {
    playNext.current = v === 'clip';
    setView(v);
  };
  if (!ev.has_clip && !waiting) return html`<${Shot} ev=${ev} fit=${true} lazy=${false} />`;
  const clip = view === 'clip' && ev.has_clip;
  const dur = fmtSeconds(ev.clip_duration_seconds);
  const onError = (e) => {
    const err = e.currentTarget.error;
    setFailed(err && err.code === 4 ? 'This browser cannot play the clip; download it instead.' : 'The clip could not be loaded.');
  };
  return html`<div class="media">
    <div class="media-bar">
      <div class="tabs" role="tablist" aria-label="Snapshot or clip">
        <button type="button" role="tab" id="tab-snapshot" aria-controls="media-panel" aria-selected=${clip ? 'false' : 'true'}
          onClick=${() => show('snapshot')}>Snapshot</button>
        <button type="button" role="tab" id="tab-clip" aria-controls="media-panel" aria-selected=${clip ? 'true' : 'false'}
          disabled=${!ev.has_clip} title=${ev.has_clip ? null : 'The clip appears here once the camera has recorded it'}
          onClick=${() => show('clip')}>${ev.has_clip ? `Clip${dur ? ` · ${dur}` : ''}` : 'Clip · recording…'}</button>
      </div>
      ${ev.has_clip ? html`<a class="download" href=${ev.clip_url} download=${clipName(ev)}>Download clip</a>` : null}
    </div>
    <div id="media-panel" role="tabpanel" aria-labelledby=${clip ? 'tab-clip' : 'tab-snapshot'}>
      ${clip
        ? html`<video class="clip" ref=${video} controls playsinline preload="metadata" src=${ev.clip_url}
            poster=${ev.thumbnail_url ? thumbSrc(ev) : null} onError=${onError}
            aria-label=${`Clip of the ${ev.detection_type} on ${ev.camera_name || 'a camera'}`}></video>
          ${failed ? html`<p class="error" role="alert">${failed}</p>` : null}`
        : html`<${Shot} ev=${ev} fit=${true} lazy=${false} />`}
    </div>
  </div>`;
}

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
    if (!confirm(ev && ev.has_clip ? 'Delete this event, its snapshot and its clip?' : 'Delete this event and its snapshot?')) return;
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
    ['Clip', ev.has_clip ? fmtSeconds(ev.clip_duration_seconds) || 'Yes' : 'No'],
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
        <${Media} key=${ev.id} ev=${ev} />
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

