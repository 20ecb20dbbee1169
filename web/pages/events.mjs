// The event timeline (/events): the filters (kept in the URL), one page of event cards that
// follows the live stream (created, updated, deleted; a card marks an event with a clip), and
// `Shot`, a snapshot with its detection boxes that pages/event.mjs shows too.
import {
  html, useState, useEffect, useRef, useApi, useMessages, useQuery, Link, Field, FormError, Pager,
  Spinner, Empty, Header, fmtTime, fmtAgo, fmtUsd, localToIso, isoToLocal, can, css,
} from '../lib.mjs';

css(new URL('./events.css', import.meta.url));

export const TYPES = ['person', 'vehicle', 'animal', 'package', 'motion', 'ring'];
const LIMIT = 24;
const FILTERS = ['camera_id', 'detection_type', 'start_date', 'end_date', 'search'];
let rendered = false; // `argus:events-rendered` is marked once per page load

const pct = (v) => `${(Number(v) || 0) * 100}%`;

/** The snapshot's address with a version: a better frame later rewrites the same file (and the
 *  browser keeps it a day), so the address changes with the boxes that belong to the picture. */
export function thumbSrc(ev) {
  let h = 5381;
  for (const c of JSON.stringify(ev.bounding_boxes || [])) h = ((h * 33) ^ c.charCodeAt(0)) >>> 0;
  return `${ev.thumbnail_url}${ev.thumbnail_url.includes('?') ? '&' : '?'}v=${h.toString(36)}`;
}

/** The event's snapshot with one box per detection. The boxes are placed in a frame that has the
 *  picture's own aspect ratio (known once it loads), letterboxed inside the `.shot`, so they line
 *  up whatever the picture's shape. `fit`: the `.shot` takes the picture's ratio (kept between
 *  1:1 and 21:9, and at most 75% of the window high) instead of 16:9. */
export function Shot({ ev, fit = false, lazy = true }) {
  const [ratio, setRatio] = useState(16 / 9);
  const [failed, setFailed] = useState(false);
  const loaded = (e) => {
    const { naturalWidth: w, naturalHeight: h } = e.currentTarget;
    if (w && h) setRatio(w / h);
  };
  const outer = fit ? Math.min(Math.max(ratio, 1), 21 / 9) : 16 / 9;
  const frame = ratio >= outer
    ? { left: '0', width: '100%', height: `${(outer / ratio) * 100}%`, top: `${(1 - outer / ratio) * 50}%` }
    : { top: '0', height: '100%', width: `${(ratio / outer) * 100}%`, left: `${(1 - ratio / outer) * 50}%` };
  const camera = ev.camera_name || 'a camera';
  const box = fit ? { aspectRatio: String(outer), maxWidth: `calc(75vh * ${outer})`, marginInline: 'auto' } : { aspectRatio: String(outer) };
  return html`<div class="shot" style=${box}>
    ${ev.thumbnail_url && !failed
      ? html`<div class="frame" style=${frame}>
          <img src=${thumbSrc(ev)} loading=${lazy ? 'lazy' : 'eager'} alt=${`${ev.detection_type} seen by ${camera}`}
            onLoad=${loaded} onError=${() => setFailed(true)} />
          ${(ev.bounding_boxes || []).map((b) => html`<div class=${'box' + (b.y < 0.1 ? ' low' : '') + (b.x + b.width > 0.75 ? ' right' : '')}
              style=${{ left: pct(b.x), top: pct(b.y), width: pct(b.width), height: pct(b.height) }}>
            <span>${b.label || b.class || 'object'}${typeof b.score === 'number' ? ` ${Math.round(b.score * 100)}%` : ''}</span>
          </div>`)}
        </div>`
      : html`<div class="none">${failed ? 'Snapshot unavailable' : 'No snapshot'}</div>`}
  </div>`;
}

/** The description, or what stands in for it. */
export function Description({ ev }) {
  if (ev.description) return html`<p class="description">${ev.description}</p>`;
  if (ev.description_pending) return html`<p class="description muted">Describing…</p>`;
  if (ev.ai_error) return html`<p class="description muted">${ev.ai_error}</p>`;
  return null;
}

function Card({ ev }) {
  return html`<article class="event" data-event-id=${ev.id}>
    <${Link} href=${`/events/${encodeURIComponent(ev.id)}`}>
      <${Shot} ev=${ev} />
      <div class="meta">
        <div class="line">
          <span class=${'pill ' + ev.detection_type}>${ev.detection_type}</span>
          <span class="conf">${ev.confidence}%</span>
          ${ev.has_clip ? html`<span class="clip-mark" title="Has a video clip"><span aria-hidden="true">▶ </span><span class="visually-hidden">Clip, </span>${ev.clip_duration_seconds != null ? `${Math.round(ev.clip_duration_seconds)} s` : 'clip'}</span>` : null}
          <span class="cam">${ev.camera_name || 'Unknown camera'}</span>
        </div>
        <time datetime=${ev.timestamp} title=${fmtAgo(ev.timestamp)}>${fmtTime(ev.timestamp)}</time>
        <${Description} ev=${ev} />
        ${ev.provider_used || ev.ai_cost_usd != null
          ? html`<small class="muted">${[ev.provider_used, ev.ai_cost_usd != null ? fmtUsd(ev.ai_cost_usd) : null].filter(Boolean).join(' · ')}</small>`
          : null}
      </div>
    </${Link}>
  </article>`;
}

const words = (s) => String(s || '').toLowerCase().match(/[\p{L}\p{N}]+/gu) || [];

/** True when the event is one the list's filters would answer (search: every word is the start
 *  of a word of the description, as the API does). */
function matches(ev, f) {
  if (f.camera_id && ev.camera_id !== f.camera_id) return false;
  if (f.detection_type && !f.detection_type.split(',').includes(ev.detection_type)) return false;
  const t = Date.parse(ev.timestamp);
  const day = (s) => /^\d{4}-\d{2}-\d{2}$/.test(s);
  if (f.start_date && t < Date.parse(f.start_date)) return false;
  if (f.end_date && t > Date.parse(f.end_date) + (day(f.end_date) ? 86399999 : 0)) return false;
  if (f.search) {
    const have = words(ev.description);
    if (!words(f.search).every((w) => have.some((h) => h.startsWith(w)))) return false;
  }
  return true;
}

export default function Events() {
  const [q, setQuery] = useQuery();
  const f = {
    camera_id: q.camera_id || q.camera || '',
    detection_type: q.detection_type || q.type || '',
    start_date: q.start_date || '',
    end_date: q.end_date || '',
    search: q.search || '',
  };
  const page = Math.max(1, parseInt(q.page, 10) || 1);
  const params = new URLSearchParams({ page, limit: LIMIT });
  FILTERS.forEach((k) => f[k] && params.set(k, f[k]));
  const { data, error, loading, setData } = useApi('/events?' + params);
  const cameras = useApi(can('read:cameras') ? '/cameras' : null);

  // Filters change the URL (and so the list); a filter change goes back to page 1.
  const latest = useRef(f);
  latest.current = f;
  const set = (k, v) => setQuery({ ...latest.current, [k]: v, page: undefined });

  // The search box commits ~300 ms after the last key; a URL change from elsewhere refills it.
  const [text, setText] = useState(f.search);
  const committed = useRef(f.search);
  useEffect(() => {
    if (f.search !== committed.current) {
      committed.current = f.search;
      setText(f.search);
    }
  }, [f.search]);
  useEffect(() => {
    if (text === committed.current) return undefined;
    const t = setTimeout(() => {
      committed.current = text;
      set('search', text);
    }, 300);
    return () => clearTimeout(t);
  }, [text]);

  useEffect(() => {
    if (data && !rendered) {
      rendered = true;
      performance.mark('argus:events-rendered');
    }
  }, [data]);

  const adjust = (d, items, delta) => ({ ...d, items, total: Math.max(0, d.total + delta), pages: Math.ceil(Math.max(0, d.total + delta) / d.limit) });
  useMessages(['event.created', 'event.updated', 'event.deleted'], (ev, msg) => {
    setData((d) => {
      if (!d || !ev) return d;
      const i = d.items.findIndex((x) => x.id === ev.id);
      if (msg.type === 'event.deleted') return i < 0 ? d : adjust(d, d.items.filter((x) => x.id !== ev.id), -1);
      if (i >= 0) {
        const items = d.items.slice();
        items[i] = ev;
        return { ...d, items };
      }
      // A new event, or one that matches only now (its description arrived): page 1 shows it
      // when it is newer than the page's last one.
      if (page !== 1 || !matches(ev, latest.current)) return d;
      const last = d.items[d.items.length - 1];
      if (msg.type === 'event.updated' && last && d.items.length >= LIMIT && ev.timestamp < last.timestamp) return d;
      const items = [...d.items, ev].sort((a, b) => (a.timestamp < b.timestamp ? 1 : a.timestamp > b.timestamp ? -1 : 0));
      return adjust(d, items.slice(0, LIMIT), 1);
    });
  });

  const camList = (cameras.data || []).slice().sort((a, b) => a.name.localeCompare(b.name));
  const typeOptions = f.detection_type && !TYPES.includes(f.detection_type) ? [...TYPES, f.detection_type] : TYPES;
  const any = FILTERS.some((k) => f[k]);
  const exportParams = new URLSearchParams();
  FILTERS.forEach((k) => f[k] && exportParams.set(k, f[k]));

  return html`<section class="events-page">
    <${Header} title="Events">
      ${data ? html`<span class="muted">${data.total} ${data.total === 1 ? 'event' : 'events'}</span>` : null}
      <a class="button" href=${'/api/v1/events/export?' + exportParams} download="events.csv">Export CSV</a>
    </${Header}>
    <form class="filters" role="search" onSubmit=${(e) => e.preventDefault()}>
      <${Field} label="Camera" name="camera_id" error=${error}>${(id, errId) => html`
        <select id=${id} aria-describedby=${errId} value=${f.camera_id} onChange=${(e) => set('camera_id', e.target.value)}>
          <option value="">All cameras</option>
          ${camList.map((c) => html`<option value=${c.id}>${c.name}</option>`)}
          ${f.camera_id && !camList.some((c) => c.id === f.camera_id) ? html`<option value=${f.camera_id}>${cameras.loading ? 'Loading…' : 'Unknown camera'}</option>` : null}
        </select>`}</${Field}>
      <${Field} label="Type" name="detection_type" error=${error}>${(id, errId) => html`
        <select id=${id} aria-describedby=${errId} value=${f.detection_type} onChange=${(e) => set('detection_type', e.target.value)}>
          <option value="">All types</option>
          ${typeOptions.map((t) => html`<option value=${t}>${t.split(',').join(', ')}</option>`)}
        </select>`}</${Field}>
      <${Field} label="From" name="start_date" error=${error}>${(id, errId) => html`
        <input id=${id} type="datetime-local" aria-describedby=${errId} value=${isoToLocal(f.start_date)}
          onChange=${(e) => set('start_date', localToIso(e.target.value))} />`}</${Field}>
      <${Field} label="To" name="end_date" error=${error}>${(id, errId) => html`
        <input id=${id} type="datetime-local" aria-describedby=${errId} value=${isoToLocal(f.end_date)}
          onChange=${(e) => set('end_date', localToIso(e.target.value))} />`}</${Field}>
      <${Field} label="Search" name="search" error=${error}>${(id, errId) => html`
        <input id=${id} type="search" aria-describedby=${errId} placeholder="e.g. red car" value=${text}
          onInput=${(e) => setText(e.target.value)} />`}</${Field}>
      ${any ? html`<div class="field"><button type="button" onClick=${() => setQuery({})}>Clear filters</button></div>` : null}
    </form>
    <${FormError} error=${error} fields=${FILTERS} />
    ${!data
      ? loading ? html`<${Spinner} label="Loading events" />` : null
      : data.items.length === 0
        ? html`<${Empty}>${any ? 'No events match these filters.' : 'No events yet. They appear here as the cameras see something.'}</${Empty}>`
        : html`<div class=${'grid events' + (loading ? ' stale' : '')} aria-busy=${loading ? 'true' : 'false'}>
            ${data.items.map((ev) => html`<${Card} key=${ev.id} ev=${ev} />`)}
          </div>`}
    ${data ? html`<${Pager} page=${page} pages=${data.pages} onPage=${(p) => setQuery({ ...latest.current, page: p > 1 ? p : undefined })} />` : null}
  </section>`;
}
