// Tickets for authenticated servers: where getToken finds a fresh one for
// every connection attempt, and how the page learns at once that a server
// needs one.

/**
 * Tickets is the page's getToken. A pasted ticket is used once (tickets are
 * single-use); after that a ticket URL, when set, is asked for a fresh one
 * (POST, answering the ticket as text or as {"token": …}); without one the
 * user is prompted and the attempt waits until they paste a ticket.
 */
export class Tickets {
  #pasted = '';
  #url = '';
  #waiting = null;
  #onPrompt;
  #onUsed;
  /** How many tickets getToken has handed out. */
  calls = 0;

  /**
   * @param {{onPrompt: () => void, onUsed: () => void}} hooks onPrompt: a
   *   fresh ticket is needed from the user; onUsed: the pasted one was used
   */
  constructor({ onPrompt, onUsed }) {
    this.#onPrompt = onPrompt;
    this.#onUsed = onUsed;
  }

  /** configure sets the pasted ticket and the ticket URL ('' for none). */
  configure({ ticket, url }) {
    this.#pasted = ticket;
    this.#url = url;
  }

  /** waiting reports whether an attempt waits for the user's ticket. */
  get waiting() {
    return this.#waiting !== null;
  }

  /** getToken returns the ticket for the next connection attempt. */
  async getToken() {
    if (this.#pasted) {
      const t = this.#pasted;
      this.#pasted = '';
      this.calls++;
      this.#onUsed();
      return t;
    }
    if (this.#url) {
      const res = await fetch(this.#url, { method: 'POST', credentials: 'same-origin', headers: { Accept: 'application/json, text/plain' } });
      const body = (await res.text()).trim();
      if (!res.ok) throw new Error(`the ticket URL answered ${res.status} ${body.slice(0, 200)}`);
      this.calls++;
      return body.startsWith('{') ? JSON.parse(body).token : body;
    }
    return new Promise((resolve, reject) => {
      this.#waiting = { resolve, reject };
      this.#onPrompt();
    }).then((t) => {
      this.calls++;
      return t;
    });
  }

  /** provide hands a pasted ticket to a waiting attempt; false if none waits. */
  provide(ticket) {
    const w = this.#waiting;
    if (!w) return false;
    this.#waiting = null;
    w.resolve(ticket);
    return true;
  }

  /** cancel ends a wait for the user's ticket. */
  cancel() {
    const w = this.#waiting;
    this.#waiting = null;
    w?.reject(new Error('cancelled'));
  }
}

/** probeRef marks the probe request and its reply, which the page keeps to itself. */
const probeRef = 'page-auth-probe';

/**
 * probingWebSocket returns a WebSocket class for connections made without
 * a ticket. An authenticated server would wait AUTH_TIMEOUT (5 s by
 * default) for a ticket before refusing; this socket instead sends one
 * harmless request as soon as it opens. An open server greets first and
 * answers it (the answer is dropped here); an authenticated one answers
 * "unauthenticated", which this socket turns into what the server would
 * have done after the timeout: a close 1008 before the greeting, which the
 * client reports as a refusal.
 */
export function probingWebSocket(Base = globalThis.WebSocket) {
  return class ProbingWebSocket {
    onmessage = null;
    onclose = null;
    onerror = null;
    #ws;
    #greeted = false;
    #ended = false;

    constructor(url) {
      const ws = new Base(url);
      this.#ws = ws;
      ws.onopen = () => {
        ws.send(JSON.stringify({ channel: 'chat', ref: probeRef, message: { type: 'GetHistory', contents: { limit: 1 } } }));
      };
      ws.onmessage = (ev) => this.#receive(ev);
      ws.onclose = (ev) => this.#end({ code: ev.code, reason: ev.reason });
      ws.onerror = (ev) => this.onerror?.(ev);
    }

    send(data) {
      this.#ws.send(data);
    }

    close(code, reason) {
      this.#ws.close(code, reason);
    }

    #end(ev) {
      if (this.#ended) return;
      this.#ended = true;
      this.onclose?.(ev);
    }

    #receive(ev) {
      let frame;
      try {
        frame = JSON.parse(ev.data);
      } catch {
        this.onmessage?.(ev);
        return;
      }
      if (!this.#greeted) {
        if (frame.channel === 'session' && frame.message?.type === 'Authenticated') {
          this.#greeted = true;
        } else if (frame.message?.type === 'Error' && frame.message.contents?.code === 'unauthenticated') {
          this.#ws.close(1000, 'no ticket');
          this.#end({ code: 1008, reason: 'this server needs a ticket' });
          return;
        }
      }
      if (frame.ref === probeRef) return;
      this.onmessage?.(ev);
    }
  };
}
