// Small parts the camera pages share: the status pill, folding a `camera.status` message into a
// camera list, the page's visibility, and the camera pages' style sheet.
import { html, useState, useEffect, css } from '../lib.mjs';

css(new URL('./cameras.css', import.meta.url));

/** The classes a camera can raise events for (the API's DETECTION_CLASSES). */
export const CLASSES = ['person', 'vehicle', 'animal', 'motion'];

/** `streaming`, `connecting`, `error`, `stopped` (Protect: `connected` ...) as a pill. */
export function StatusPill({ status }) {
  const s = (status && status.status) || 'unknown';
  return html`<span class=${'pill ' + s}>${s}</span>`;
}

/** A `camera.status` message's data (`{camera_id, name, status, last_frame_at, fps, resolution,
 *  error}`, flat) folded into a list of cameras; the list unchanged when the camera is unknown. */
export function applyStatus(cameras, m) {
  if (!Array.isArray(cameras) || !cameras.some((c) => c.id === m.camera_id)) return cameras;
  const { camera_id, name, ...status } = m;
  return cameras.map((c) => (c.id === camera_id ? { ...c, name: name || c.name, status: { ...c.status, ...status } } : c));
}

/** True when the camera list does not know the camera a message is about. */
export function unknownCamera(cameras, m) {
  return Array.isArray(cameras) && !cameras.some((c) => c.id === m.camera_id);
}

/** "15 fps", or '' when unknown. */
export function fmtFps(fps) {
  return fps === null || fps === undefined ? '' : `${Math.round(fps * 10) / 10} fps`;
}

/** True while the page is visible (document.visibilityState). */
export function usePageVisible() {
  const [visible, setVisible] = useState(document.visibilityState === 'visible');
  useEffect(() => {
    const f = () => setVisible(document.visibilityState === 'visible');
    document.addEventListener('visibilitychange', f);
    return () => document.removeEventListener('visibilitychange', f);
  }, []);
  return visible;
}

/** The URL of a camera's latest picture, never cached. */
export function snapshotUrl(id) {
  return `/api/v1/cameras/${encodeURIComponent(id)}/snapshot?t=${Date.now()}`;
}
