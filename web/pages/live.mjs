// /live: every camera live, with its status (GET /cameras, then `camera.status` messages). Each
// card plays the camera's fMP4 stream through MSE (live-video.mjs); when the browser cannot, or
// the appliance refuses it, the MJPEG stream; when that fails too, the latest picture about once
// a second. Only while the page is visible. A click on a camera (or ?camera=<id>) shows it large.
import { html, useState, useEffect, useRef, useApi, useMessages, useQuery, Link, Header, Spinner, Empty, FormError, fmtAgo, css } from '../lib.mjs';
import { StatusPill, applyStatus, unknownCamera, fmtFps, usePageVisible, snapshotUrl } from './camera-shared.mjs';
import { LiveVideo, mseAvailable, whyNot } from './live-video.mjs';

css(new URL('./live.css', import.meta.url));

/** While `active`, loads the camera's picture into a new Image, swaps it into `frameRef` once
 *  loaded, then waits out the rest of the second (3 s after a failure). Answers 'loading', 'ok'
 *  or 'failed'. */
function useSnapshots(id, active, frameRef, alt) {
  const [state, setState] = useState('loading');
  const altRef = useRef(alt);
  altRef.current = alt;
  useEffect(() => {
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
  }, [id, active]);
  return state;
}

/** While `active`, shows `/cameras/{id}/live.mjpeg` in an image in `frameRef`; calls
 *  `report('live')` once a picture shows and `report('failed', detail)` when the stream is
 *  refused or breaks. The stream is cut when it stops (it counts against the viewer limit). */
function useMjpeg(id, active, frameRef, alt, report) {
  const cb = useRef(report);
  cb.current = report;
  useEffect(() => {
    if (!active) return undefined;
    const url = `/api/v1/cameras/${encodeURIComponent(id)}/live.mjpeg`;
    const img = new Image();
    img.className = 'live-mjpeg';
    img.alt = alt;
    let stopped = false;
    let shown = false;
    const show = () => {
      if (stopped || shown || !img.naturalWidth) return;
      shown = true;
      cb.current('live');
    };
    // A multipart image may show its first part before (or without) a load event.
    const poll = setInterval(show, 300);
    img.onload = show;
    img.onerror = () => {
      if (stopped) return;
      stopped = true;
      clearInterval(poll);
      whyNot(url).then((detail) => cb.current('failed', detail));
    };
    img.src = url;
    if (frameRef.current) frameRef.current.replaceChildren(img);
    return () => {
      stopped = true;
      clearInterval(poll);
      img.onload = img.onerror = null;
      img.src = '';
      img.remove();
    };
  }, [id, active]);
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

/** A reason as a sentence (the server's close reasons may lack the full stop). */
const sentence = (s) => (s && !/[.!?…]$/.test(s) ? `${s}.` : s);

const codecName = (s) => (s && s.codec && s.codec.startsWith('avc1') ? 'H.264' : (s && s.codec) || 'video');

/** What a card shows of a streaming, visible camera: the MSE video, else the MJPEG stream, else
 *  snapshots; and a line saying which, and why not the better one. Mounted afresh each time the
 *  camera streams and the page is visible (so each starts with the video again). */
function LiveView({ camera, large, onToggle }) {
  const [mode, setMode] = useState(mseAvailable() ? 'video' : 'mjpeg');
  const [phase, setPhase] = useState('connecting'); // of the current mode: 'connecting' | 'live'
  const [note, setNote] = useState(mseAvailable() ? null : 'This browser has no Media Source Extensions.');
  const [info, setInfo] = useState(null); // the `stream` message while the video plays
  const [attempt, setAttempt] = useState(0);
  const timer = useRef(null);
  useEffect(() => () => clearTimeout(timer.current), []);
  const frameRef = useRef(null);

  const fallBack = (to, why) => {
    setMode(to);
    setPhase('connecting');
    setNote(why);
    setInfo(null);
  };
  const onVideo = (state, detail, stream) => {
    if (state === 'connecting') setPhase('connecting');
    else if (state === 'live') {
      setPhase('live');
      setNote(null);
      setInfo(stream);
    } else if (state === 'ended') {
      // The camera stopped or restarted its stream: a new socket (a failing one falls back).
      setPhase('connecting');
      setInfo(null);
      setNote(detail);
      clearTimeout(timer.current);
      timer.current = setTimeout(() => setAttempt((a) => a + 1), 1500);
    } else if (state === 'failed') fallBack('mjpeg', detail || 'The live video failed.');
  };
  useMjpeg(camera.id, mode === 'mjpeg', frameRef, `${camera.name}: live`, (state, detail) => {
    if (state === 'live') setPhase('live');
    else {
      const mjpeg = detail && detail !== note ? detail : detail ? null : 'The MJPEG stream is not available either.';
      fallBack('snapshot', [note, mjpeg].filter(Boolean).map(sentence).join(' '));
    }
  });
  const snap = useSnapshots(camera.id, mode === 'snapshot', frameRef, `${camera.name}: latest picture`);

  const showing = mode === 'snapshot' ? snap === 'ok' : phase === 'live';
  let line;
  if (mode === 'video') {
    line = phase === 'live'
      ? `Live · ${codecName(info)}${info && info.width ? ` ${info.width}×${info.height}` : ''}`
      : note ? `${sentence(note)} Reconnecting…` : 'Connecting to the live video…';
  } else if (mode === 'mjpeg') {
    line = `${phase === 'live' ? 'Live (MJPEG)' : 'Opening the MJPEG stream…'}${note ? ` · live video: ${note}` : ''}`;
  } else {
    line = `A picture a second${note ? ` · ${note}` : ''}`;
  }
  const key = (e) => {
    if (e.key === 'Enter' || e.key === ' ') {
      e.preventDefault();
      onToggle();
    }
  };
  return html`
    <div class="shot live-shot" role="button" tabindex="0" aria-pressed=${large ? 'true' : 'false'}
      aria-label=${large ? `Show ${camera.name} small again` : `Show ${camera.name} large`} onClick=${onToggle} onKeyDown=${key}>
      ${mode === 'video' ? html`<${LiveVideo} id=${camera.id} attempt=${attempt} label=${`${camera.name}: live video`} onState=${onVideo} />` : null}
      <div class="frame" ref=${frameRef} hidden=${mode === 'video' || !showing}></div>
      ${!showing
        ? html`<div class="placeholder" aria-hidden="true">
            <span>${mode === 'snapshot' && snap === 'failed' ? placeholderText(camera.status || {}) : 'Loading picture…'}</span>
          </div>`
        : null}
      ${showing && mode !== 'snapshot' ? html`<span class="live-badge" aria-hidden="true">Live</span>` : null}
    </div>
    <p class=${'live-mode ' + mode + (showing ? ' on' : '')} data-mode=${mode} role="status">${line}</p>`;
}

function LiveCamera({ camera, visible, large, onToggle }) {
  const status = camera.status || {};
  const streaming = ['streaming', 'connected'].includes(status.status);
  const facts = [fmtFps(status.fps), status.resolution, status.last_frame_at ? `last frame ${fmtAgo(status.last_frame_at)}` : ''].filter(Boolean);
  const ref = useRef(null);
  useEffect(() => {
    if (large && ref.current) ref.current.scrollIntoView({ block: 'nearest' });
  }, [large]);
  return html`<article ref=${ref} class=${'live-camera card' + (large ? ' large' : '')} data-camera-id=${camera.id} aria-labelledby=${`live-${camera.id}`}>
    <header class="live-head">
      <h2 id=${`live-${camera.id}`}>${camera.name}</h2>
      <${StatusPill} status=${status} />
    </header>
    ${visible && streaming
      ? html`<${LiveView} camera=${camera} large=${large} onToggle=${onToggle} />`
      : html`<div class="shot live-shot">
          <div class="placeholder" role="img" aria-label=${`${camera.name}: no picture`}>
            <span>${streaming ? 'Paused while the page is hidden.' : placeholderText(status)}</span>
          </div>
        </div>`}
    <p class="muted live-facts">${facts.length ? facts.join(' · ') : 'No frames yet'}${camera.is_enabled ? '' : ' · disabled'}</p>
    ${status.error && streaming ? html`<p class="error live-error">${status.error}</p>` : null}
    <nav class="row live-links" aria-label=${`${camera.name} links`}>
      <button type="button" class="link" aria-pressed=${large ? 'true' : 'false'} onClick=${onToggle}>${large ? 'Smaller' : 'Larger'}</button>
      <${Link} href=${`/cameras/${camera.id}`}>Settings</${Link}>
      <${Link} href=${`/events?camera_id=${encodeURIComponent(camera.id)}`}>Events</${Link}>
    </nav>
  </article>`;
}

export default function Live() {
  const { data, error, loading, reload, setData } = useApi('/cameras');
  const visible = usePageVisible();
  const [q, setQuery] = useQuery();
  const large = q.camera || null;
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
  // Escape shows the large camera small again.
  useEffect(() => {
    if (!large) return undefined;
    const f = (e) => e.key === 'Escape' && setQuery({});
    document.addEventListener('keydown', f);
    return () => document.removeEventListener('keydown', f);
  }, [large]);
  const toggle = (id) => setQuery(large === id ? {} : { camera: id });
  return html`<section class="live-page">
    <${Header} title="Live"><${Link} href="/cameras" class="button">Cameras</${Link}></${Header}>
    <${FormError} error=${error} />
    ${!data && loading ? html`<${Spinner} />` : null}
    ${data && !data.length
      ? html`<${Empty}>No cameras yet. <${Link} href="/cameras/new">Add a camera</${Link}>.</${Empty}>`
      : null}
    ${data && data.length
      ? html`<div class=${'live-grid' + (large ? ' has-large' : '')}>${data.map((c) => html`<${LiveCamera} key=${c.id} camera=${c} visible=${visible}
          large=${large === c.id} onToggle=${() => toggle(c.id)} />`)}</div>`
      : null}
  </section>`;
}
