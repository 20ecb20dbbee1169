// A camera's live video on the Live page: the fMP4 stream of `/api/v1/cameras/{id}/live` (a
// WebSocket: a JSON `stream` message, the init segment, then one fragment per access unit)
// played through Media Source Extensions, kept near the live edge with a short buffer; and
// `whyNot`, the API's reason a live address refused (its JSON detail).
import { html, useEffect, useRef } from '../lib.mjs';

const MS = window.ManagedMediaSource || window.MediaSource;
/** Seconds kept behind the playing position; more is removed from the buffer. */
const KEEP = 10;
/** A lag behind the newest buffered picture above this jumps to near it. */
const MAX_LAG = 2;
/** Fragments waiting for the SourceBuffer above this: the socket is reopened (a fresh key frame). */
const MAX_QUEUE = 300;
/** No picture playing this long after the socket opened: the live video has failed. */
const START_TIMEOUT = 10000;

/** True when this browser has Media Source Extensions. */
export const mseAvailable = () => !!MS;

/** The API's JSON detail for a GET of `url` when it refuses (401, 403, 404, 503), else null. A
 *  refused WebSocket upgrade tells the page nothing, so this asks again as plain HTTP; a stream
 *  that answers is cancelled at once. */
export async function whyNot(url) {
  try {
    const r = await fetch(url, { headers: { Accept: 'application/json' }, credentials: 'same-origin' });
    if (r.ok) {
      if (r.body) r.body.cancel().catch(() => {});
      return null;
    }
    if (![401, 403, 404, 503].includes(r.status)) return null;
    const v = await r.json().catch(() => null);
    return v && typeof v.detail === 'string' ? v.detail : null;
  } catch (_) {
    return null;
  }
}

/** The WebSocket address of a camera's live stream. */
export function liveSocketUrl(id) {
  return (location.protocol === 'https:' ? 'wss:' : 'ws:') + '//' + location.host + '/api/v1/cameras/' + encodeURIComponent(id) + '/live';
}

/** Plays one camera's live socket into `video`. `report(state, detail, info)`: 'connecting';
 *  'live' (pictures play; `info` is the stream message); 'ended' (after it had played, the socket
 *  closed, the camera having stopped or restarted, or a picture did not decode; `detail` says
 *  why); 'failed' (it never played, or the browser cannot play it; `detail` says why). Nothing
 *  is reported after `close`. */
class Player {
  constructor(video, id, report) {
    this.video = video;
    this.id = id;
    this.report = report;
    this.queue = [];
    this.ms = null;
    this.sb = null;
    this.objectUrl = null;
    this.stream = null;
    this.played = false;
    this.done = false;
    this.timers = [];
    this.onPlaying = () => {
      if (this.done || this.played) return;
      this.played = true;
      this.report('live', null, this.stream);
    };
    // A picture it cannot decode: after the video played, a new socket (from a key frame) may
    // do better; before, the stream is not for this browser.
    this.onVideoError = () => {
      if (this.done) return;
      const e = video.error;
      const why = `The browser could not play the live video${e && e.message ? ` (${e.message})` : ''}.`;
      if (!this.played) {
        this.fail(why);
        return;
      }
      this.stop();
      this.report('ended', why);
    };
    video.muted = true;
    video.playsInline = true;
    video.disableRemotePlayback = true; // ManagedMediaSource (Safari) plays only without AirPlay
    video.addEventListener('playing', this.onPlaying);
    video.addEventListener('error', this.onVideoError);
    this.open();
  }

  open() {
    this.report('connecting');
    const ws = new WebSocket(liveSocketUrl(this.id));
    ws.binaryType = 'arraybuffer';
    this.ws = ws;
    this.timers.push(setTimeout(() => this.played || this.fail('The live video did not start within 10 s.'), START_TIMEOUT));
    this.timers.push(setInterval(() => this.keepUp(), 500));
    ws.onmessage = (m) => {
      if (this.done) return;
      if (typeof m.data === 'string') {
        let msg = null;
        try {
          msg = JSON.parse(m.data);
        } catch (_) {
          return;
        }
        if (msg && msg.type === 'stream') this.start(msg);
        return;
      }
      if (!this.stream) return;
      this.queue.push(m.data);
      if (this.queue.length > MAX_QUEUE) this.reopen();
      else this.pump();
    };
    ws.onclose = (e) => {
      if (this.done || ws !== this.ws) return;
      if (this.played) {
        this.stop();
        this.report('ended', e.reason || 'The live stream ended.');
        return;
      }
      if (e.reason) {
        this.fail(e.reason);
        return;
      }
      // Refused before upgrading (a 503 or 404 with a JSON detail the socket does not show).
      const gave = this.stream;
      whyNot('/api/v1/cameras/' + encodeURIComponent(this.id) + '/live').then((detail) => {
        this.fail(detail || (gave ? 'The live stream closed before a picture played.' : 'The live video did not connect.'));
      });
    };
  }

  /** A `stream` message: a new MediaSource and SourceBuffer for its codec (decode time restarts). */
  start(msg) {
    if (!msg.mime || !MS.isTypeSupported(msg.mime)) {
      this.fail(`This browser cannot play the camera's video (${msg.codec || msg.mime || 'unknown codec'}).`);
      return;
    }
    this.stream = msg;
    this.queue = [];
    this.sb = null;
    this.played = false;
    const ms = new MS();
    this.ms = ms;
    ms.addEventListener('sourceopen', () => {
      if (this.done || ms !== this.ms) return;
      try {
        const sb = ms.addSourceBuffer(msg.mime);
        sb.mode = 'segments';
        sb.addEventListener('updateend', () => {
          if (sb !== this.sb) return;
          this.keepUp();
          this.pump();
        });
        sb.addEventListener('error', () => sb === this.sb && this.fail('The live video could not be buffered.'));
        this.sb = sb;
        this.pump();
      } catch (e) {
        this.fail(`The live video could not start: ${e.message}`);
      }
    }, { once: true });
    if (this.objectUrl) URL.revokeObjectURL(this.objectUrl);
    this.objectUrl = URL.createObjectURL(ms);
    this.video.src = this.objectUrl;
  }

  /** Appends the next fragment, or first removes what lies more than KEEP s behind. */
  pump() {
    const { sb, ms, video } = this;
    if (this.done || !sb || sb.updating || !ms || ms.readyState !== 'open') return;
    const b = sb.buffered;
    if (b.length && video.currentTime - b.start(0) > KEEP + 5) {
      sb.remove(b.start(0), video.currentTime - KEEP);
      return;
    }
    const next = this.queue.shift();
    if (!next) return;
    try {
      sb.appendBuffer(next);
    } catch (e) {
      if (e.name === 'QuotaExceededError' && b.length && video.currentTime - b.start(0) > 1) {
        this.queue.unshift(next);
        sb.remove(b.start(0), video.currentTime - 1);
      } else {
        this.fail(`The live video could not be buffered: ${e.message}`);
      }
    }
  }

  /** Plays, and stays near the newest picture: a lag over MAX_LAG jumps, a small one plays a
   *  little faster; a gap (fragments skipped after falling behind) is stepped over. */
  keepUp() {
    const v = this.video;
    const b = v.buffered;
    if (this.done || !b.length) return;
    const end = b.end(b.length - 1);
    const t = v.currentTime;
    if (end - t > MAX_LAG) v.currentTime = Math.max(b.start(b.length - 1), end - 0.5);
    else {
      let inside = false;
      for (let i = 0; i < b.length; i++) {
        if (t >= b.start(i) && t <= b.end(i)) inside = true;
        else if (!inside && b.start(i) > t) {
          v.currentTime = b.start(i);
          break;
        }
      }
    }
    v.playbackRate = end - v.currentTime > 1 ? 1.1 : 1;
    if (v.paused) v.play().catch(() => {});
  }

  /** A new socket from a key frame (this one fell too far behind). */
  reopen() {
    this.stop();
    this.played = false;
    this.open();
  }

  fail(detail) {
    if (this.done) return;
    this.close();
    this.report('failed', detail);
  }

  stop() {
    for (const t of this.timers) clearTimeout(t); // timeouts and intervals share one list of ids
    this.timers = [];
    const ws = this.ws;
    this.ws = null;
    if (ws) {
      ws.onmessage = null;
      ws.onclose = null;
      // Closing one still connecting logs an error in the console: it closes once open instead.
      if (ws.readyState === WebSocket.CONNECTING) ws.onopen = () => ws.close();
      else if (ws.readyState === WebSocket.OPEN) ws.close();
    }
    this.queue = [];
    this.sb = null;
    this.stream = null;
    if (this.ms && this.ms.readyState === 'open') {
      try {
        this.ms.endOfStream();
      } catch (_) {
        /* already ending */
      }
    }
    this.ms = null;
  }

  /** Closes the socket and lets go of the MediaSource; reports nothing more. */
  close() {
    if (this.done) return;
    this.done = true;
    this.stop();
    const v = this.video;
    v.removeEventListener('playing', this.onPlaying);
    v.removeEventListener('error', this.onVideoError);
    v.removeAttribute('src');
    v.load();
    if (this.objectUrl) URL.revokeObjectURL(this.objectUrl);
    this.objectUrl = null;
  }
}

/** The live video of camera `id` while mounted; `onState(state, detail, info)` as `Player`
 *  reports. `attempt` changes to start over. */
export function LiveVideo({ id, label, attempt, onState }) {
  const ref = useRef(null);
  const cb = useRef(onState);
  cb.current = onState;
  useEffect(() => {
    const p = new Player(ref.current, id, (...a) => cb.current(...a));
    return () => p.close();
  }, [id, attempt]);
  return html`<video class="live-video" ref=${ref} muted autoplay playsinline disablepictureinpicture
    aria-label=${label}></video>`;
}
