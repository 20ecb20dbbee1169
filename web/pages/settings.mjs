// The settings page (/settings?tab=...): the tab strip and which tab shows. Each tab lives in
// its own module: settings-ai (AI providers, costs), settings-storage, settings-mqtt,
// settings-keys and settings-system; settings-common holds what they share.
import { html, css, useQuery, Header } from '../lib.mjs';
import { ProvidersTab, CostsTab } from './settings-ai.mjs';
import StorageTab from './settings-storage.mjs';
import MqttTab from './settings-mqtt.mjs';
import KeysTab from './settings-keys.mjs';
import SystemTab from './settings-system.mjs';

css(new URL('./settings.css', import.meta.url));

const TABS = [
  ['ai', 'AI providers', ProvidersTab],
  ['costs', 'Costs', CostsTab],
  ['storage', 'Storage', StorageTab],
  ['mqtt', 'MQTT', MqttTab],
  ['keys', 'API keys', KeysTab],
  ['system', 'System', SystemTab],
];

export default function Settings() {
  const [q, setQuery] = useQuery();
  const current = TABS.find(([k]) => k === q.tab) || TABS[0];
  const [tab, , Tab] = current;
  const choose = (k) => setQuery({ ...q, tab: k });
  // Arrow keys move between the tabs, as the ARIA tabs pattern has it.
  const onKey = (e) => {
    const i = TABS.indexOf(current);
    const step = { ArrowRight: 1, ArrowLeft: -1 }[e.key];
    const to = step ? TABS[(i + step + TABS.length) % TABS.length] : e.key === 'Home' ? TABS[0] : e.key === 'End' ? TABS[TABS.length - 1] : null;
    if (!to) return;
    e.preventDefault();
    choose(to[0]);
    requestAnimationFrame(() => document.getElementById(`settings-tab-${to[0]}`)?.focus());
  };
  return html`<section class="settings">
    <${Header} title="Settings" />
    <div class="tabs" role="tablist" aria-label="Settings" onKeyDown=${onKey}>
      ${TABS.map(
        ([k, label]) => html`<button type="button" role="tab" id=${`settings-tab-${k}`} aria-selected=${k === tab ? 'true' : 'false'}
          aria-controls="settings-panel" tabindex=${k === tab ? 0 : -1} onClick=${() => choose(k)}>${label}</button>`,
      )}
    </div>
    <div role="tabpanel" id="settings-panel" aria-labelledby=${`settings-tab-${tab}`}>
      <${Tab} key=${tab} />
    </div>
  </section>`;
}
