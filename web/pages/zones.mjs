// The motion zone editor of camera-edit: polygons drawn over the camera's latest picture (an SVG
// in picture fractions 0..1), a list to name, enable and delete them, vertices that drag (or move
// with the arrow keys). The zones are saved with the camera by the form that holds them.
import { html, useState, useRef, fieldError } from '../lib.mjs';
import { snapshotUrl } from './camera-shared.mjs';

const MAX_ZONES = 10;
const MAX_VERTICES = 64;

const clamp = (v) => Math.min(1, Math.max(0, v));
const round = (v) => Math.round(v * 10000) / 10000;
const pointsAttr = (vs) => vs.map((p) => `${round(p.x)},${round(p.y)}`).join(' ');

function centroid(vs) {
  const n = vs.length || 1;
  return { x: vs.reduce((s, p) => s + p.x, 0) / n, y: vs.reduce((s, p) => s + p.y, 0) / n };
}

/** The picture the zones are drawn on: the camera's snapshot, else `fallback` (a test
 *  thumbnail), else a grey 16:9 box. */
function usePicture(cameraId, fallback, live) {
  const [url, setUrl] = useState(() => snapshotUrl(cameraId));
  const [failed, setFailed] = useState(!live);
  const [aspect, setAspect] = useState(null);
  const src = !failed ? url : fallback || null;
  return {
    src,
    aspect: src ? aspect : null,
    onLoad: (e) => e.target.naturalWidth && setAspect(`${e.target.naturalWidth} / ${e.target.naturalHeight}`),
    onError: () => {
      if (!failed) setFailed(true);
    },
    refresh: () => {
      setFailed(false);
      setUrl(snapshotUrl(cameraId));
    },
  };
}

/** `zones`: the camera's detection_zones; `live`: the camera is streaming (else no snapshot is asked for); `onChange(zones)`; `error`: the form's ApiError. */
export default function ZoneEditor({ cameraId, live, zones, onChange, fallback, error, disabled }) {
  const pic = usePicture(cameraId, fallback, live);
  const [drawing, setDrawing] = useState(null); // the new zone's vertices while drawing
  const stage = useRef(null);
  const drag = useRef(null);

  const toPoint = (e) => {
    const r = stage.current.getBoundingClientRect();
    return { x: round(clamp((e.clientX - r.left) / r.width)), y: round(clamp((e.clientY - r.top) / r.height)) };
  };
  const setZone = (i, patch) => onChange(zones.map((z, j) => (j === i ? { ...z, ...patch } : z)));
  const setVertex = (zi, vi, p) => setZone(zi, { vertices: zones[zi].vertices.map((v, j) => (j === vi ? p : v)) });

  const clickStage = (e) => {
    if (!drawing || drawing.length >= MAX_VERTICES) return;
    setDrawing([...drawing, toPoint(e)]);
  };
  const finish = () => {
    if (!drawing || drawing.length < 3) return;
    onChange([...zones, { name: `Zone ${zones.length + 1}`, enabled: true, vertices: drawing }]);
    setDrawing(null);
  };

  const handleDown = (zi, vi) => (e) => {
    if (disabled) return;
    e.preventDefault();
    e.currentTarget.focus();
    e.currentTarget.setPointerCapture(e.pointerId);
    drag.current = { zi, vi, id: e.pointerId };
  };
  const handleMove = (zi, vi) => (e) => {
    const d = drag.current;
    if (d && d.zi === zi && d.vi === vi && d.id === e.pointerId) setVertex(zi, vi, toPoint(e));
  };
  const handleUp = () => {
    drag.current = null;
  };
  const handleKey = (zi, vi) => (e) => {
    const step = e.shiftKey ? 0.05 : 0.01;
    const p = zones[zi].vertices[vi];
    const moves = { ArrowLeft: [-step, 0], ArrowRight: [step, 0], ArrowUp: [0, -step], ArrowDown: [0, step] };
    if (moves[e.key]) {
      e.preventDefault();
      const [dx, dy] = moves[e.key];
      setVertex(zi, vi, { x: round(clamp(p.x + dx)), y: round(clamp(p.y + dy)) });
    } else if ((e.key === 'Delete' || e.key === 'Backspace') && zones[zi].vertices.length > 3) {
      e.preventDefault();
      setZone(zi, { vertices: zones[zi].vertices.filter((_, j) => j !== vi) });
    }
  };

  const err = fieldError(error, 'detection_zones');
  const label = (z, i) => z.name || `Zone ${i + 1}`;
  return html`<div class="zones">
    <div class=${'shot zone-shot' + (pic.src ? '' : ' blank') + (drawing ? ' drawing' : '')} ref=${stage} style=${pic.aspect ? { aspectRatio: pic.aspect } : {}}>
      ${pic.src
        ? html`<img src=${pic.src} alt="The camera's latest picture" onLoad=${pic.onLoad} onError=${pic.onError} />`
        : html`<span class="zone-nopic muted">No picture from the camera</span>`}
      <svg id="zone-editor" viewBox="0 0 1 1" preserveAspectRatio="none" onClick=${clickStage}
        role="img" aria-label=${`Motion zones: ${zones.length}`}>
        ${zones.map((z, i) => {
          const pts = pointsAttr(z.vertices);
          return html`<polygon key=${i} class=${'zone' + (z.enabled === false ? ' off' : '')} points=${pts} data-points=${pts} vector-effect="non-scaling-stroke" />`;
        })}
        ${drawing && drawing.length
          ? html`<polyline class="zone-new" points=${pointsAttr(drawing)} vector-effect="non-scaling-stroke" />`
          : null}
      </svg>
      ${zones.map((z, i) => {
        const c = centroid(z.vertices);
        return html`<span key=${'l' + i} class="zone-label" aria-hidden="true" style=${{ left: `${c.x * 100}%`, top: `${c.y * 100}%` }}>${label(z, i)}</span>`;
      })}
      ${!drawing && !disabled
        ? zones.map((z, zi) =>
            z.vertices.map(
              (p, vi) => html`<button type="button" key=${`${zi}-${vi}`} class="vertex"
                style=${{ left: `${p.x * 100}%`, top: `${p.y * 100}%` }}
                aria-label=${`${label(z, zi)}, corner ${vi + 1}: arrow keys move it, Delete removes it`}
                onPointerDown=${handleDown(zi, vi)} onPointerMove=${handleMove(zi, vi)}
                onPointerUp=${handleUp} onPointerCancel=${handleUp} onKeyDown=${handleKey(zi, vi)}></button>`,
            ),
          )
        : null}
      ${drawing
        ? drawing.map((p, i) => html`<span key=${'d' + i} class="vertex new" style=${{ left: `${p.x * 100}%`, top: `${p.y * 100}%` }}></span>`)
        : null}
    </div>

    <div class="row zone-tools">
      <button type="button" id="zone-add" disabled=${disabled || !!drawing || zones.length >= MAX_ZONES} onClick=${() => setDrawing([])}>Add zone</button>
      <button type="button" id="zone-finish" class=${drawing ? 'primary' : ''} disabled=${!drawing || drawing.length < 3} onClick=${finish}>Finish zone</button>
      ${drawing
        ? html`<button type="button" disabled=${!drawing.length} onClick=${() => setDrawing(drawing.slice(0, -1))}>Undo corner</button>
            <button type="button" class="link" onClick=${() => setDrawing(null)}>Cancel</button>`
        : html`<button type="button" class="link" onClick=${pic.refresh}>Refresh picture</button>`}
    </div>
    <p class="hint" role="status" aria-live="polite">
      ${drawing
        ? `Click on the picture to add corners (${drawing.length} so far, at least 3), then Finish zone.`
        : zones.length
          ? 'Drag a corner to move it (or focus it and use the arrow keys). Zones are saved with the camera: press Save.'
          : 'No zones: motion anywhere in the picture counts.'}
    </p>
    ${err ? html`<small class="error" role="alert">${err}</small>` : null}

    ${zones.length
      ? html`<ul class="zone-list">
          ${zones.map(
            (z, i) => html`<li key=${i} class=${'zone-item' + (z.enabled === false ? ' off' : '')}>
              <div class="field">
                <label for=${`zone-name-${i}`}>Zone ${i + 1} name</label>
                <input id=${`zone-name-${i}`} value=${z.name || ''} maxlength="100" disabled=${disabled}
                  onInput=${(e) => setZone(i, { name: e.target.value })} />
              </div>
              <div class="field check">
                <input type="checkbox" id=${`zone-on-${i}`} checked=${z.enabled !== false} disabled=${disabled}
                  onChange=${(e) => setZone(i, { enabled: e.target.checked })} />
                <label for=${`zone-on-${i}`}>Enabled</label>
              </div>
              <span class="muted">${z.vertices.length} corners</span>
              <button type="button" class="danger" disabled=${disabled} aria-label=${`Delete ${label(z, i)}`}
                onClick=${() => onChange(zones.filter((_, j) => j !== i))}>Delete</button>
            </li>`,
          )}
        </ul>`
      : null}
  </div>`;
}
