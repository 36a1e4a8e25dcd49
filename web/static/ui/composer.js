// A message composer: input, Send, and the error of the last send next to
// them. The text stays in the input until the send succeeded.
import { h, uniqueId, byteLength } from './dom.js';

/**
 * The bytes an envelope adds around a message's JSON-encoded text, with
 * room to spare for the channel, type, room name and ref.
 */
const envelopeBytes = 512;

/** Composer is a form that sends its text with send(text). */
export class Composer {
  /** The form element. */
  el;
  #input;
  #button;
  #error;
  #send;
  #maxFrameBytes;
  /** The text of the last send still waiting for its outcome. */
  pending = '';

  /**
   * @param {{label: string, placeholder: string, maxFrameBytes: number,
   *   send: (text: string) => Promise<unknown>}} options
   */
  constructor({ label, placeholder, maxFrameBytes, send }) {
    this.#send = send;
    this.#maxFrameBytes = maxFrameBytes;
    const inputId = uniqueId('compose');
    const errorId = uniqueId('compose-error');
    this.#input = h('textarea', {
      id: inputId, class: 'compose-input', rows: '1', placeholder, 'aria-describedby': errorId,
      onkeydown: (ev) => {
        if (ev.key === 'Enter' && !ev.shiftKey && !ev.isComposing) {
          ev.preventDefault();
          this.el.requestSubmit();
        }
      },
    });
    this.#button = h('button', { type: 'submit', class: 'send' }, 'Send');
    this.#error = h('p', { id: errorId, class: 'field-error', role: 'alert' });
    this.el = h('form', { class: 'composer', onsubmit: (ev) => { ev.preventDefault(); this.#submit(); } },
      h('label', { for: inputId, class: 'visually-hidden' }, label),
      h('div', { class: 'compose-row' }, this.#input, this.#button),
      this.#error);
  }

  /** enable allows or prevents sending. */
  enable(on) {
    this.#input.disabled = !on;
    this.#button.disabled = !on;
  }

  /** showError puts an error next to the input ('' clears it). */
  showError(text) {
    this.#error.textContent = text;
    this.#input.setAttribute('aria-invalid', String(text !== ''));
  }

  /** restore puts text back in an empty input, after a send was lost. */
  restore(text) {
    if (this.#input.value === '') this.#input.value = text;
  }

  async #submit() {
    const text = this.#input.value;
    if (text.trim() === '') return;
    const size = byteLength(JSON.stringify(text)) + envelopeBytes;
    if (size > this.#maxFrameBytes) {
      this.showError(`Too long to send: ${byteLength(text).toLocaleString()} bytes, and the server accepts frames of at most ${this.#maxFrameBytes.toLocaleString()} bytes. Shorten it or split it.`);
      return;
    }
    this.showError('');
    this.#button.disabled = true;
    this.pending = text;
    try {
      await this.#send(text);
      if (this.#input.value === text) this.#input.value = '';
    } catch (err) {
      this.showError(describeSendError(err));
    } finally {
      this.pending = '';
      this.#button.disabled = this.#input.disabled;
    }
  }
}

/** describeSendError turns a refused or lost send into a sentence. */
export function describeSendError(err) {
  if (err?.closeCode === 1009) return 'Not sent: the message is larger than the server accepts (it closed the connection, 1009). Shorten it or split it.';
  switch (err?.code) {
    case 'disconnected': return `Not sent: the connection closed${err.closeCode ? ` (${err.closeCode})` : ''} before the server confirmed it. Send again once reconnected; if the message is long, the server may refuse its size: shorten it.`;
    case 'buffer_full': return 'Not sent: too many messages are waiting for the connection.';
    case 'not_member': return 'Not sent: you are not in this room (any more). Join it again.';
    case 'rate_limited': return 'Not sent: too many messages at once. Wait a moment.';
    case 'closed': return 'Not sent: not connected.';
    default: return `Not sent: ${err?.message ?? err}`;
  }
}
