// The ordered, duplicate-free delivery of one message stream (a room, or
// the global chat), with gap filling from history.
import { compareIds, isId } from './ids.js';

/** Largest number of history pages one gap fill reads. */
const maxFillPages = 200;

/**
 * Stream remembers the id of the last message delivered, drops messages at
 * or before it (replays after a resume overlap live traffic), and fills
 * gaps: while it fetches history after its last id, live messages are held
 * back and released afterwards, so delivery stays in id order.
 */
export class Stream {
  /** The id of the last message delivered, or undefined. */
  lastId;
  #fetch;
  #deliver;
  #filling = false;
  #again = false;
  #held = [];

  /**
   * @param {(since: string) => Promise<{messages: any[], complete: boolean}>} fetchPage
   *   reads the history page after since
   * @param {(message: any) => void} deliver hands a message to the app
   */
  constructor(fetchPage, deliver) {
    this.#fetch = fetchPage;
    this.#deliver = deliver;
  }

  /** Offers a live (or replayed) message. */
  offer(message) {
    if (this.#filling) {
      this.#held.push(message);
      return;
    }
    this.#emit(message);
  }

  #emit(message) {
    const id = message.id;
    if (isId(id)) {
      if (this.lastId !== undefined && compareIds(id, this.lastId) <= 0) return; // seen already
      this.lastId = id;
    }
    this.#deliver(message);
  }

  /**
   * Fetches and delivers what came after the last delivered id (or after
   * since, when nothing was delivered yet). Returns when the gap is filled
   * or the fetch failed; the error, if any, is thrown after held messages
   * are released.
   * @param {string} [since]
   */
  async fill(since) {
    const from = this.lastId ?? (isId(since) ? since : undefined);
    if (from === undefined) return;
    if (this.#filling) {
      this.#again = true;
      return;
    }
    this.#filling = true;
    let failure;
    try {
      do {
        this.#again = false;
        let cursor = this.lastId ?? from;
        for (let page = 0; page < maxFillPages; page++) {
          const { messages, complete } = await this.#fetch(cursor);
          for (const m of messages) this.#emit(m);
          const last = messages.at(-1)?.id;
          if (complete || !isId(last)) break;
          cursor = last;
          const firstHeld = this.#held.find((m) => isId(m.id))?.id;
          if (firstHeld !== undefined && compareIds(cursor, firstHeld) >= 0) break; // caught up with live
        }
      } while (this.#again);
    } catch (err) {
      failure = err;
    } finally {
      this.#filling = false;
      const held = this.#held;
      this.#held = [];
      for (const m of held) this.#emit(m);
    }
    if (failure) throw failure;
  }
}
