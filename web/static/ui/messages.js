// A list of messages in id order, each shown once, with "Load older" paging
// and a notice for messages that may be missing.
import { compareIds, isId } from '../lib/index.js';
import { h, clock } from './dom.js';

/** How many messages one list keeps in the page. */
const maxItems = 1000;

/** How many messages one "Load older" asks for. */
const pageSize = 50;

/** MessageList renders messages ({id?, user?, text, postedAt}). */
export class MessageList {
  /** The element to place in a panel. */
  el;
  #list;
  #scroller;
  #older;
  #olderError;
  #gap;
  #ids = new Set();
  #fetchOlder;

  /**
   * @param {string} label the list's accessible name
   * @param {(query: {before?: string, limit: number}) => Promise<{messages: object[], complete: boolean}>} fetchOlder
   * @param {(m: object) => {id?: string, user?: string, text: string, postedAt: string}} toItem
   */
  constructor(label, fetchOlder, toItem) {
    this.toItem = toItem;
    this.#fetchOlder = fetchOlder;
    this.#older = h('button', { type: 'button', class: 'load-older secondary', onclick: () => this.loadOlder() }, 'Load older messages');
    this.#olderError = h('p', { class: 'field-error', role: 'alert' });
    this.#gap = h('p', { class: 'gap-notice', hidden: true });
    this.#list = h('ol', { class: 'message-items' });
    this.#scroller = h('div', { class: 'messages', role: 'log', 'aria-label': label, tabindex: '0' }, this.#list);
    this.el = h('div', { class: 'conversation' }, h('div', { class: 'older' }, this.#older, this.#olderError), this.#gap, this.#scroller);
  }

  /** add shows a message in id order, unless it is already shown. */
  add(m) {
    const item = this.toItem(m);
    if (item.id) {
      if (this.#ids.has(item.id)) return;
      this.#ids.add(item.id);
    }
    const li = h('li', { class: 'msg', dataset: { id: item.id ?? '', user: item.user ?? '' } },
      item.user !== undefined ? h('span', { class: 'who' }, item.user) : null,
      h('span', { class: 'text' }, item.text),
      h('time', { datetime: item.postedAt }, clock(item.postedAt)));
    // Live messages are newest: search from the end for the first older one.
    let before = null;
    if (isId(item.id)) {
      for (let c = this.#list.lastElementChild; c; c = c.previousElementSibling) {
        if (isId(c.dataset.id) && compareIds(c.dataset.id, item.id) < 0) break;
        if (isId(c.dataset.id)) before = c;
      }
    }
    const atBottom = this.#atBottom();
    this.#list.insertBefore(li, before);
    while (this.#list.childElementCount > maxItems) {
      this.#ids.delete(this.#list.firstElementChild.dataset.id);
      this.#list.firstElementChild.remove();
    }
    if (atBottom && before === null) this.#scrollToEnd();
  }

  /** showGap shows (or, with '', hides) a notice about missing messages. */
  showGap(text) {
    this.#gap.textContent = text;
    this.#gap.hidden = text === '';
  }

  /** loadOlder fetches the page before the oldest message shown. */
  async loadOlder() {
    const oldest = [...this.#list.children].find((li) => isId(li.dataset.id))?.dataset.id;
    this.#older.disabled = true;
    this.#olderError.textContent = '';
    try {
      const page = await this.#fetchOlder(oldest ? { before: oldest, limit: pageSize } : { limit: pageSize });
      const s = this.#scroller;
      const keep = s.scrollHeight - s.scrollTop;
      for (const m of page.messages) this.add(m);
      s.scrollTop = s.scrollHeight - keep;
      if (page.complete) {
        this.#older.hidden = true;
        return;
      }
    } catch (err) {
      this.#olderError.textContent = `Could not load older messages: ${err.message}`;
    }
    this.#older.disabled = false;
  }

  #atBottom() {
    const l = this.#scroller;
    return l.scrollHeight - l.scrollTop - l.clientHeight < 40;
  }

  #scrollToEnd() {
    this.#scroller.scrollTop = this.#scroller.scrollHeight;
  }
}
