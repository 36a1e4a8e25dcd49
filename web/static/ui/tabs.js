// Conversations as WAI-ARIA tabs: a tablist of buttons, one tabpanel each,
// one tab in the tab order (roving tabindex), arrow keys, Home and End to
// move, activation follows focus.
import { h, uniqueId } from './dom.js';

/** Tabs manages a role=tablist element and the container of its panels. */
export class Tabs {
  #list;
  #panels;
  #tabs = []; // {key, tab, panel, label, badge}
  #onSelect;

  /**
   * @param {HTMLElement} list the role=tablist element
   * @param {HTMLElement} panels where the tabpanels go
   * @param {(key: string) => void} [onSelect] told when a tab is selected
   */
  constructor(list, panels, onSelect = () => {}) {
    this.#list = list;
    this.#panels = panels;
    this.#onSelect = onSelect;
    list.addEventListener('keydown', (ev) => this.#onKey(ev));
  }

  /**
   * add appends a tab labelled label showing panel, and returns its entry.
   * The panel gets role=tabpanel and is hidden unless selected.
   */
  add(key, label, panel) {
    const tabId = uniqueId('tab');
    const panelId = panel.id || uniqueId('panel');
    const text = h('span', { class: 'tab-label' }, label);
    const badge = h('span', { class: 'tab-badge' });
    const tab = h('button', {
      type: 'button', role: 'tab', id: tabId, 'aria-controls': panelId,
      'aria-selected': 'false', tabindex: '-1', dataset: { key },
      onclick: () => this.select(key, { focus: false }),
    }, text, badge);
    panel.id = panelId;
    panel.setAttribute('role', 'tabpanel');
    panel.setAttribute('aria-labelledby', tabId);
    panel.hidden = true;
    this.#list.append(tab);
    this.#panels.append(panel);
    const entry = { key, tab, panel, label: text, badge };
    this.#tabs.push(entry);
    if (this.#tabs.length === 1) this.select(key, { focus: false });
    return entry;
  }

  /** has reports whether a tab has that key. */
  has(key) {
    return this.#tabs.some((t) => t.key === key);
  }

  /** selected is the key of the selected tab, or undefined. */
  get selected() {
    return this.#tabs.find((t) => t.tab.getAttribute('aria-selected') === 'true')?.key;
  }

  /** select shows the tab's panel; focus moves keyboard focus to the tab. */
  select(key, { focus = true } = {}) {
    const entry = this.#tabs.find((t) => t.key === key);
    if (!entry) return;
    for (const t of this.#tabs) {
      const on = t === entry;
      t.tab.setAttribute('aria-selected', String(on));
      t.tab.tabIndex = on ? 0 : -1;
      t.panel.hidden = !on;
    }
    if (focus) entry.tab.focus();
    entry.tab.scrollIntoView?.({ block: 'nearest', inline: 'nearest' });
    this.#onSelect(key);
  }

  /** remove deletes a tab and its panel, selecting a neighbour if it was selected. */
  remove(key) {
    const i = this.#tabs.findIndex((t) => t.key === key);
    if (i < 0) return;
    const [entry] = this.#tabs.splice(i, 1);
    const wasSelected = entry.tab.getAttribute('aria-selected') === 'true';
    entry.tab.remove();
    entry.panel.remove();
    if (wasSelected && this.#tabs.length > 0) {
      this.select(this.#tabs[Math.max(0, i - 1)].key, { focus: false });
    }
  }

  #onKey(ev) {
    const i = this.#tabs.findIndex((t) => t.tab === document.activeElement);
    if (i < 0) return;
    const n = this.#tabs.length;
    let next;
    switch (ev.key) {
      case 'ArrowRight': next = (i + 1) % n; break;
      case 'ArrowLeft': next = (i - 1 + n) % n; break;
      case 'Home': next = 0; break;
      case 'End': next = n - 1; break;
      default: return;
    }
    ev.preventDefault();
    this.select(this.#tabs[next].key);
  }
}
