// The global chat and the inbox, each a tab.
import { h, clock } from './dom.js';
import { MessageList } from './messages.js';
import { Composer } from './composer.js';

/** How long a chat send waits for its own message to come back. */
const confirmMs = 10000;

/** ChatView is the global chat tab. */
export class ChatView {
  #client = null;
  #messages;
  #composer;
  /** The panel element. */
  el;

  /** @param {{maxFrameBytes: number}} options */
  constructor({ maxFrameBytes }) {
    this.#messages = new MessageList('Chat messages', (q) => this.#client.chatHistory(q),
      (m) => ({ id: m.id, text: m.content, postedAt: m.postedAt }));
    this.#composer = new Composer({
      label: 'Message to everyone', placeholder: 'Message everyone', maxFrameBytes,
      send: (text) => this.#send(text),
    });
    this.#composer.enable(false);
    this.el = h('section', { class: 'panel chat', id: 'chat' },
      h('header', { class: 'panel-head' }, h('h2', {}, 'Chat'), h('span', { class: 'hint' }, 'Everyone on every node')),
      h('div', { class: 'panel-body' }, this.#messages.el),
      this.#composer.el);
    this.#messages.el.querySelector('ol').id = 'chat-messages';
  }

  /** attach shows a client's chat (and forgets the previous client's). */
  attach(client) {
    this.#client = client;
    client.on('chat', (m) => this.#messages.add(m));
    client.on('gap', (g) => {
      if (g.room === undefined && g.reason === 'not_recovered') this.#messages.showGap('Some chat messages may be missing above.');
    });
  }

  /** connection follows the client's state. */
  connection(change) {
    this.#composer.enable(change.state === 'online');
  }

  /**
   * #send posts text and resolves once it came back (the server sends chat
   * to the sender too): chat has no acknowledgement, and a message the
   * server refuses by closing the connection must not be taken as sent.
   */
  #send(text) {
    const c = this.#client;
    return new Promise((resolve, reject) => {
      const offs = [];
      const done = (settle) => {
        for (const off of offs) off();
        clearTimeout(timer);
        settle();
      };
      const timer = setTimeout(() => done(() => reject(Object.assign(new Error('the message did not come back within 10 s'), { code: 'timeout' }))), confirmMs);
      offs.push(
        c.on('chat', (m) => {
          if (m.content === text) done(resolve);
        }),
        c.on('state', (ch) => {
          if (ch.state !== 'online') done(() => reject(Object.assign(new Error('connection lost'), { code: 'disconnected', closeCode: ch.closeCode })));
        }),
      );
      c.sendChat(text).catch((err) => done(() => reject(err)));
    });
  }
}

/** InboxView lists messages posted to this user with POST /message. */
export class InboxView {
  /** The panel element. */
  el;
  #list;
  #empty;

  constructor() {
    this.#list = h('ol', { class: 'message-items', id: 'inbox-messages' });
    this.#empty = h('p', { class: 'hint' }, 'Messages posted to you with ', h('code', {}, 'POST /message'), ' appear here.');
    this.el = h('section', { class: 'panel inbox', id: 'inbox' },
      h('header', { class: 'panel-head' }, h('h2', {}, 'Inbox')),
      h('div', { class: 'panel-body' }, h('div', { class: 'conversation' }, this.#empty,
        h('div', { class: 'messages', role: 'log', 'aria-label': 'Inbox messages', tabindex: '0' }, this.#list))));
  }

  /** add shows one inbox message. */
  add(m) {
    this.#empty.hidden = true;
    this.#list.append(h('li', { class: 'msg', dataset: { type: m.type ?? '' } },
      m.type ? h('span', { class: 'who' }, m.type) : null,
      h('span', { class: 'text' }, m.content),
      h('time', { datetime: m.postedAt }, clock(m.postedAt))));
  }
}
