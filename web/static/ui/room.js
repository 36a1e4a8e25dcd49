// One joined room as a tab: its messages, members, composer, and the
// outcome of each request made about it.
import { h } from './dom.js';
import { MessageList } from './messages.js';
import { MembersView } from './members.js';
import { Composer } from './composer.js';

const stateText = {
  joining: 'joining…',
  joined: '',
  waiting: 'waiting for the connection',
};

/** RoomView shows one room of the client in a tab. */
export class RoomView {
  /** The room's name. */
  name;
  #room;
  #client;
  #tab;
  #panel;
  #state = '';
  #stateBadge;
  #error;
  #messages;
  #members;
  #composer;
  #offs = [];
  #onGone;

  /**
   * @param {import('../lib/index.js').Client} client
   * @param {string} name
   * @param {{tabs: import('./tabs.js').Tabs, maxFrameBytes: number, narrow: boolean,
   *   onGone: (view: RoomView, err?: Error) => void}} options onGone: the room
   *   was left, or the server refused it (err)
   */
  constructor(client, name, { tabs, maxFrameBytes, narrow, onGone }) {
    this.name = name;
    this.#client = client;
    this.#room = client.room(name);
    this.#onGone = onGone;
    this.#stateBadge = h('span', { class: 'room-state' });
    this.#error = h('p', { class: 'panel-error', role: 'alert' });
    this.#messages = new MessageList(`Messages in ${name}`, (q) => this.#room.history(q),
      (m) => ({ id: m.id, user: m.user, text: m.message, postedAt: m.postedAt }));
    this.#members = new MembersView(this.#room, { open: !narrow });
    this.#composer = new Composer({
      label: `Message to ${name}`, placeholder: `Message ${name}`, maxFrameBytes,
      send: (text) => this.#room.send(text, { ack: true }),
    });
    this.#panel = h('section', { class: 'panel room', dataset: { room: name } },
      h('header', { class: 'panel-head' },
        h('h2', {}, name), this.#stateBadge,
        h('button', { type: 'button', class: 'leave secondary', onclick: () => this.leave() }, `Leave ${name}`)),
      this.#error,
      h('div', { class: 'panel-body' }, this.#messages.el, this.#members.el),
      this.#composer.el);
    this.#tab = tabs.add(name, name, this.#panel);

    const r = this.#room;
    this.#offs.push(
      r.on('message', (m) => {
        this.#messages.add(m);
        if (tabs.selected !== name) this.#unread(1);
      }),
      r.on('members', (ml) => {
        this.#members.set(ml, client.user);
        this.#setState('joined');
      }),
      r.on('joined', (j) => this.#members.joined(j.user)),
      r.on('left', (l) => {
        // The client's own user with an error: the re-join after a
        // reconnect was refused, and the room is no longer joined.
        if (l.error && l.user === client.user) this.#refused(l.error);
        else this.#members.left(l.user);
      }),
      r.on('gap', (g) => {
        if (g.reason === 'not_recovered') this.#messages.showGap('You were away longer than the server keeps messages: some may be missing above.');
      }),
      r.on('error', (err) => this.showError(err)),
    );
  }

  /** The tab's entry (tab and panel elements). */
  get tab() {
    return this.#tab;
  }

  /** join asks to join; the tab shows the outcome. */
  join() {
    this.#setState(this.#client.state === 'online' ? 'joining' : 'waiting');
    this.#room.join().then(
      () => this.#setState('joined'),
      (err) => {
        if (err.code !== 'closed') this.#refused(err);
      },
    );
  }

  /** connection follows the client's state: rooms re-join once online. */
  connection(state) {
    if (this.#state === 'gone') return;
    this.#composer.enable(state === 'online');
    if (state === 'online') this.#setState(this.#room.joined ? 'joined' : 'joining');
    else this.#setState('waiting');
  }

  /** seen clears the unread count when the tab is selected. */
  seen() {
    this.#tab.badge.textContent = '';
    this.#tab.tab.removeAttribute('data-unread');
  }

  /** showError shows an error about this room in its panel. */
  showError(err) {
    this.#error.textContent = `${err.code ? `${err.code}: ` : ''}${err.message}`;
  }

  /** leave leaves the room and removes the tab once the server confirmed it. */
  async leave() {
    try {
      await this.#room.leave();
    } catch (err) {
      this.showError(err);
      return;
    }
    this.#gone();
  }

  #refused(err) {
    if (this.#state === 'gone') return;
    this.#gone(err);
  }

  #gone(err) {
    this.#setState('gone');
    for (const off of this.#offs) off();
    this.#offs = [];
    this.#onGone(this, err);
  }

  #unread(n) {
    const now = Number(this.#tab.tab.dataset.unread ?? 0) + n;
    this.#tab.tab.dataset.unread = String(now);
    this.#tab.badge.textContent = String(now);
    this.#tab.badge.setAttribute('aria-label', `${now} unread`);
  }

  #setState(state) {
    if (this.#state === 'gone') return;
    this.#state = state;
    this.#panel.dataset.state = state;
    this.#tab.tab.dataset.state = state;
    const text = stateText[state] ?? '';
    this.#stateBadge.textContent = text;
    this.#stateBadge.hidden = text === '';
    this.#composer.enable(state === 'joined');
  }
}
