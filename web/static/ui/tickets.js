// Tickets for authenticated servers: where getToken finds a fresh one for
// every connection attempt. (That a server needs one at all, the client
// library learns by itself: its auth probe, error code auth_required.)

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
