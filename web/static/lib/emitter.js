// A minimal typed-event emitter shared by Client and Room.

/** Emitter calls listeners synchronously, in the order they were added. */
export class Emitter {
  #listeners = new Map();

  /**
   * Adds a listener and returns a function that removes it.
   * @param {string} event
   * @param {(value: any) => void} fn
   */
  on(event, fn) {
    let set = this.#listeners.get(event);
    if (!set) this.#listeners.set(event, (set = new Set()));
    set.add(fn);
    return () => this.off(event, fn);
  }

  /** Adds a listener called at most once. */
  once(event, fn) {
    const off = this.on(event, (value) => {
      off();
      fn(value);
    });
    return off;
  }

  /** Removes a listener. */
  off(event, fn) {
    this.#listeners.get(event)?.delete(fn);
  }

  /**
   * Calls every listener of event with value. A listener that throws does
   * not stop the others or the client: its error is reported
   * asynchronously, as an uncaught exception.
   */
  emit(event, value) {
    const set = this.#listeners.get(event);
    if (!set) return;
    for (const fn of [...set]) {
      try {
        fn(value);
      } catch (err) {
        setTimeout(() => {
          throw err;
        });
      }
    }
  }
}
