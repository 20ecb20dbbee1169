// /live: every camera's latest picture, refreshed about once a second while the page is visible,
// with its live status (GET /cameras, then `camera.status` messages).
import { html, useState, useEffect, useRef, useApi, useMessages, Link, Header, Spinner, Empty, FormError, fmtAgo } from '../lib.mjs';
import { StatusPill, applyStatus, unknownCamera, fmtFps, usePageVisible, snapshotUrl } from './camera-shared.mjs';

/** While `active` (the page is visible) and `streaming`, loads the camera's picture into a new
 *  Image, swaps it into `frameRef` once loaded, then waits out the rest of the second (3 s after a
 *  failure). Answers 'loading', 'ok' or 'failed' (also when the camera is not streaming). */
function useSnapshots(id, active, frameRef, alt, streaming) {
  const [state, setState] = useState('loading');
  const altRef = useRef(alt);
  altRef.current = alt;
  useEffect(() => {
    if (!streaming) {
      setState('failed');
      return undefined;
    }
    if (!active) return undefined;
    let timer = null;
    let img = null;
    let stopped = false;
    const next = () => {
      const started = Date.now();
      img = new Image();
      const mine = img;
      mine.onload = () => {
        if (stopped) return;
        mine.alt = altRef.current;
        if (frameRef.current) frameRef.current.replaceChildren(mine);
        setState('ok');
        timer = setTimeout(next, Math.max(0, 1000 - (Date.now() - started)));
      };
      mine.onerror = () => {
        if (stopped) return;
        setState('failed');
        timer = setTimeout(next, 3000);
      };
      mine.src = snapshotUrl(id);
    };
    next();
    return () => {
      stopped = true;
      clearTimeout(timer);
      if (img && !img.complete) img.src = '';
    };
  }, [id, active, streaming]);
  return state;
}

function placeholderText(status) {
  if (status.error) return status.error;
  switch (status.status) {
    case 'stopped':
      return 'The camera is stopped.';
    case 'connecting':
      return 'Connecting to the camera…';
    case 'error':
      return 'The camera failed.';
    default:
      return 'No recent picture.';
  }
}

function LiveCamera({ camera, visible }) {
  const status = camera.status || {};
  const frameRef = useRef(null);
  const streaming = ['streaming', 'connected'].includes(status.status);
  const state = useSnapshots(camera.id, visible, frameRef, `${camera.name}: latest picture`, streaming);
  const facts = [fmtFps(status.fps), status.resolution, status.last_frame_at ? `last frame ${fmtAgo(status.last_frame_at)}` : ''].filter(Boolean);
  return html`<article class="live-camera card" data-camera-id=${camera.id} aria-labelledby=${`live-${camera.id}`}>
    <header class="live-head">
      <h2 id=${`live-${camera.id}`}>${camera.name}</h2>
      <${StatusPill} status=${status} />
    </header>
    <div class="shot live-shot">
      <div class="frame" ref=${frameRef} hidden=${state !== 'ok'}></div>
      ${state !== 'ok'
        ? html`<div class="placeholder" role="img" aria-label=${`${camera.name}: no picture`}>
            <span>${state === 'loading' ? 'Loading picture…' : placeholderText(status)}</span>
          </div>`
        : null}
    </div>
    <p class="muted live-facts">${facts.length ? facts.join(' · ') : 'No frames yet'}${camera.is_enabled ? '' : ' · disabled'}</p>
    ${status.error && state === 'ok' ? html`<p class="error live-error">${status.error}</p>` : null}
    <nav class="row live-links" aria-label=${`${camera.name} links`}>
      <${Link} href=${`/cameras/${camera.id}`}>Settings</${Link}>
      <${Link} href=${`/events?camera_id=${encodeURIComponent(camera.id)}`}>Events</${Link}>
    </nav>
  </article>`;
}

export default function Live() {
  const { data, error, loading, reload, setData } = useApi('/cameras');
  const visible = usePageVisible();
  useMessages('camera.status', (m) => {
    if (unknownCamera(data, m)) reload();
    else setData((list) => applyStatus(list, m));
  });
  // Status messages come on changes only: refresh fps and "last frame" now and then.
  useEffect(() => {
    if (!visible) return undefined;
    const t = setInterval(reload, 15000);
    return () => clearInterval(t);
  }, [visible, reload]);
  return html`<section>
    <${Header} title="Live"><${Link} href="/cameras" class="button">Cameras</${Link}></${Header}>
    <${FormError} error=${error} />
    ${!data && loading ? html`<${Spinner} />` : null}
    ${data && !data.length
      ? html`<${Empty}>No cameras yet. <${Link} href="/cameras/new">Add a camera</${Link}>.</${Empty}>`
      : null}
    ${data && data.length
      ? html`<div class="live-grid">${data.map((c) => html`<${LiveCamera} key=${c.id} camera=${c} visible=${visible} />`)}</div>`
      : null}
  </section>`;
}
