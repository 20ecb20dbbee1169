// /cameras: the list of cameras with their live status; start, stop, edit and delete them.
import { html, useState, api, useApi, useMessages, Link, Header, Spinner, Empty, FormError, toast, can } from '../lib.mjs';
import { StatusPill, applyStatus, unknownCamera, fmtFps } from './camera-shared.mjs';

function CameraRow({ camera, busy, onAction, onDelete, write }) {
  const status = camera.status || {};
  const running = status.status && status.status !== 'stopped';
  const protect = camera.type === 'protect';
  return html`<tr data-camera-id=${camera.id}>
    <td data-label="Name" class="cam-name"><${Link} href=${`/cameras/${camera.id}`}>${camera.name}</${Link}></td>
    <td data-label="Type">${camera.type}</td>
    <td data-label="Status">
      <${StatusPill} status=${status} />
      ${status.error ? html`<small class="error cam-error">${status.error}</small>` : null}
    </td>
    <td data-label="FPS">${fmtFps(status.fps) || '—'}</td>
    <td data-label="Enabled">${camera.is_enabled ? 'yes' : 'no'}</td>
    <td data-label="Actions" class="cam-actions">
      <div class="actions">
        ${write && !protect
          ? running
            ? html`<button type="button" disabled=${busy} onClick=${() => onAction(camera, 'stop')} aria-label=${`Stop ${camera.name}`}>Stop</button>`
            : html`<button type="button" disabled=${busy} onClick=${() => onAction(camera, 'start')} aria-label=${`Start ${camera.name}`}>Start</button>`
          : null}
        <${Link} href=${`/cameras/${camera.id}`} class="button" aria-label=${`Edit ${camera.name}`}>${write ? 'Edit' : 'View'}</${Link}>
        ${write
          ? html`<button type="button" class="danger" disabled=${busy} onClick=${() => onDelete(camera)} aria-label=${`Delete ${camera.name}`}>Delete</button>`
          : null}
      </div>
    </td>
  </tr>`;
}

export default function Cameras() {
  const { data, error, loading, reload, setData } = useApi('/cameras');
  const [busy, setBusy] = useState(null);
  const [actionError, setActionError] = useState(null);
  const write = can('write:cameras');
  useMessages('camera.status', (m) => {
    if (unknownCamera(data, m)) reload();
    else setData((list) => applyStatus(list, m));
  });
  const replace = (cam) => setData((list) => list.map((c) => (c.id === cam.id ? cam : c)));
  const act = async (camera, what) => {
    setBusy(camera.id);
    setActionError(null);
    try {
      replace(await api('POST', `/cameras/${camera.id}/${what}`));
      toast(what === 'start' ? `Starting ${camera.name}` : `Stopped ${camera.name}`);
    } catch (e) {
      setActionError(e);
    } finally {
      setBusy(null);
    }
  };
  const remove = async (camera) => {
    if (!confirm(`Delete the camera "${camera.name}" with all its events and snapshots?`)) return;
    setBusy(camera.id);
    setActionError(null);
    try {
      await api('DELETE', `/cameras/${camera.id}`);
      setData((list) => list.filter((c) => c.id !== camera.id));
      toast(`Deleted ${camera.name}`);
    } catch (e) {
      setActionError(e);
    } finally {
      setBusy(null);
    }
  };
  return html`<section>
    <${Header} title="Cameras">
      <${Link} href="/live" class="button">Live</${Link}>
      ${write ? html`<${Link} href="/cameras/new" class="button primary" id="camera-add">Add camera</${Link}>` : null}
    </${Header}>
    <${FormError} error=${actionError} />
    <${FormError} error=${error} />
    ${!data && loading ? html`<${Spinner} />` : null}
    ${data && !data.length ? html`<${Empty}>No cameras yet.${write ? html` <${Link} href="/cameras/new">Add one</${Link}>.` : ''}</${Empty}>` : null}
    ${data && data.length
      ? html`<div class="table-wrap card cam-table-wrap">
          <table class="cam-table">
            <thead><tr><th scope="col">Name</th><th scope="col">Type</th><th scope="col">Status</th><th scope="col">FPS</th><th scope="col">Enabled</th><th scope="col"><span class="visually-hidden">Actions</span></th></tr></thead>
            <tbody>
              ${data.map((c) => html`<${CameraRow} key=${c.id} camera=${c} busy=${busy === c.id} write=${write} onAction=${act} onDelete=${remove} />`)}
            </tbody>
          </table>
        </div>`
      : null}
  </section>`;
}
