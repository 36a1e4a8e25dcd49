// The page's problems region, near the top of the page on every screen
// size: an assertive live region, so problems are announced when they
// appear, with a dismiss button per problem.
import { h } from './dom.js';

/** How many problems stay listed. */
const maxAlerts = 5;

/** Alerts lists problems in the #alerts region. */
export class Alerts {
  #list;

  /** @param {HTMLElement} list the live region's list */
  constructor(list) {
    this.#list = list;
  }

  /**
   * show lists a problem; code (an error or close code) and source (what
   * caused it: "connection", a room name, …) are kept as data attributes.
   */
  show(text, { code = '', source = '' } = {}) {
    const li = h('li', { dataset: { code: String(code), source } },
      h('span', { class: 'alert-text' }, text),
      h('button', { type: 'button', class: 'link dismiss', 'aria-label': 'Dismiss', onclick: () => li.remove() }, '×'));
    this.#list.append(li);
    while (this.#list.childElementCount > maxAlerts) this.#list.firstElementChild.remove();
  }

  /** clear removes the problems of one source, or all. */
  clear(source) {
    for (const li of [...this.#list.children]) {
      if (source === undefined || li.dataset.source === source) li.remove();
    }
  }
}
