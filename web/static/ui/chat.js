// The global chat and the inbox, each a tab.
import { h, clock } from './dom.js';
import { MessageList } from './messages.js';
import { Composer } from './composer.js';

/** How soon after a chat send a close 1009 is blamed on that message. */
const blameMs = 3000;

/** ChatView is the global chat tab. */
export class ChatView {
  #client = null;
  #messages;
  #composer;
  #lastSend = { text: '', at: 0 };
  /** The panel element. */
  el;

  /** @param {{maxFrameBytes: number}} options */
  constructor({ maxFrameBytes }) {
    this.#messages = new MessageList('Chat messages', (q) => this.#client.chatHistory(q),
      (m) => ({ id: m.id, text: m.content, postedAt: m.postedAt }));
    this.#composer = new Composer({
      label: 'Message to everyone', placeholder: 'Message everyone', maxFrameBytes,
      send: async (text) => {
        await this.#client.sendChat(text);
        this.#lastSend = { text, at: Date.now() };
      },
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

  /**
   * connection follows the client's state. A close 1009 right after a
   * send means the server found that message too large: it goes back in
   * the input with the reason.
   */
  connection(change) {
    this.#composer.enable(change.state === 'online');
    if (change.closeCode === 1009 && Date.now() - this.#lastSend.at < blameMs) {
      this.#composer.restore(this.#lastSend.text);
      this.#composer.showError('Not sent: the message is larger than the server accepts (it closed the connection, 1009). Shorten it or split it.');
      this.#lastSend = { text: '', at: 0 };
    }
  }
}

/** InboxView lists messages posted to this user with POST /message. */
export class InboxView {
  /** The panel element. */
  el;
  #list;
  #empty;

  constructor() {
    this.#list = h('ol', { class: 'messages', id: 'inbox-messages', role: 'log', 'aria-label': 'Inbox messages' });
    this.#empty = h('p', { class: 'hint' }, 'Messages posted to you with ', h('code', {}, 'POST /message'), ' appear here.');
    this.el = h('section', { class: 'panel inbox', id: 'inbox' },
      h('header', { class: 'panel-head' }, h('h2', {}, 'Inbox')),
      h('div', { class: 'panel-body' }, h('div', { class: 'conversation' }, this.#empty, this.#list)));
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
