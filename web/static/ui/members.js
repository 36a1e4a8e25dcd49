// A room's member list: the names the join answered, kept current by
// joins and leaves, and paged with "Load more" in large rooms.
import { h } from './dom.js';

/** MembersView shows a room's members in a collapsible box. */
export class MembersView {
  /** The element to place in a panel. */
  el;
  #room;
  #count;
  #list;
  #more;
  #error;
  #total = 0;
  #truncated = false;
  #after; // where the next page starts: the last name the server listed
  #self = '';

  /** @param {import('../lib/index.js').Room} room */
  constructor(room, { open }) {
    this.#room = room;
    this.#count = h('span', { class: 'member-count' });
    this.#list = h('ul', { class: 'members' });
    this.#more = h('button', { type: 'button', class: 'load-more secondary', hidden: true, onclick: () => this.loadMore() }, 'Load more members');
    this.#error = h('p', { class: 'field-error', role: 'alert' });
    this.el = h('details', { class: 'members-box', open },
      h('summary', {}, 'Members ', this.#count), this.#list, this.#more, this.#error);
  }

  /** set shows a MemberList: the whole room, or its first page and count. */
  set(ml, self) {
    this.#self = self ?? '';
    this.#list.replaceChildren();
    for (const u of ml.users) this.#add(u);
    this.#truncated = ml.truncated === true;
    this.#after = ml.users.at(-1);
    this.#total = ml.count ?? ml.users.length;
    this.#more.hidden = !this.#truncated;
    this.#render();
  }

  /**
   * joined adds a user announced by JoinedRoom. A large room's list is
   * paged in name order, so a name is only added when a page brings it.
   */
  joined(user) {
    if (this.#truncated || this.#has(user)) return;
    this.#add(user);
    this.#total++;
    this.#render();
  }

  /** left removes a user announced by LeftRoom. */
  left(user) {
    const li = this.#find(user);
    if (!li) return;
    li.remove();
    this.#total = Math.max(0, this.#total - 1);
    this.#render();
  }

  /** loadMore fetches the page of members after the last one shown. */
  async loadMore() {
    const last = this.#after;
    this.#more.disabled = true;
    this.#error.textContent = '';
    try {
      const page = await this.#room.members(last !== undefined ? { after: last } : {});
      for (const u of page.users) if (!this.#has(u)) this.#add(u);
      this.#after = page.next ?? page.users.at(-1) ?? last;
      this.#total = page.count;
      this.#more.hidden = page.next === undefined;
      this.#render();
    } catch (err) {
      this.#error.textContent = `Could not load members: ${err.message}`;
    } finally {
      this.#more.disabled = false;
    }
  }

  #add(user) {
    this.#list.append(h('li', { dataset: { user } }, user, user === this.#self ? h('span', { class: 'you' }, ' (you)') : null));
  }

  #find(user) {
    return [...this.#list.children].find((li) => li.dataset.user === user);
  }

  #has(user) {
    return this.#find(user) !== undefined;
  }

  #render() {
    const shown = this.#list.childElementCount;
    this.#count.textContent = shown < this.#total ? `(${shown} of ${this.#total})` : `(${this.#total})`;
  }
}
