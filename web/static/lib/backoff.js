// Reconnect delays.

/** Defaults of the backoff option. */
export const defaultBackoff = Object.freeze({ initialMs: 500, maxMs: 30000 });

/**
 * Full-jitter exponential backoff: a delay drawn uniformly from
 * [0, min(maxMs, initialMs * 2^attempt)). attempt counts failed attempts
 * since the last stable connection, from 0.
 * @param {number} attempt
 * @param {{initialMs: number, maxMs: number}} backoff
 * @param {() => number} [random] a source of [0, 1) numbers
 */
export function backoffDelay(attempt, { initialMs, maxMs }, random = Math.random) {
  const cap = Math.min(maxMs, initialMs * 2 ** Math.min(attempt, 52));
  return Math.floor(random() * cap);
}

/**
 * The wait a close 1013 asks for: the number after "retryAfterMs=" in its
 * reason, or 0 when the reason names none.
 * @param {string} reason
 */
export function retryAfterMs(reason) {
  const m = /retryAfterMs=(\d+)/.exec(reason ?? '');
  return m ? Number(m[1]) : 0;
}
