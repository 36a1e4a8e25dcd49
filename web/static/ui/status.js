// The connection state in the header: a word for the state, a detail line
// (with a live countdown to the next attempt) and a "Retry now" button.

/** closeNames explains the WebSocket close codes a user may see. */
const closeNames = {
  1000: 'closed', 1001: 'server going away', 1006: 'connection lost', 1008: 'refused by the server',
  1009: 'message too large', 1011: 'server error', 1012: 'server restarting', 1013: 'server busy',
};

/** closeText describes a close code and reason, e.g. "connection lost (1006)". */
export function closeText(code, reason) {
  if (!code) return reason || '';
  return `${closeNames[code] ?? 'closed'} (${code}${reason ? `: ${reason}` : ''})`;
}

const labels = {
  closed: 'Not connected',
  connecting: 'Connecting…',
  ticket: 'Waiting for a ticket',
  online: 'Connected',
  reconnecting: 'Reconnecting',
  offline: 'Offline',
  failed: 'Disconnected',
};

/**
 * StatusView shows a state ("closed", "connecting", "ticket", "online",
 * "reconnecting", "offline", "failed") in #status. Only the state word is
 * in a live region: the countdown would otherwise be read out every tick.
 */
export class StatusView {
  #root;
  #text;
  #detail;
  #retry;
  #timer = 0;
  #connects = 0;

  /** @param {() => void} onRetry called by "Retry now" */
  constructor(onRetry) {
    this.#root = document.getElementById('status');
    this.#text = document.getElementById('status-text');
    this.#detail = document.getElementById('status-detail');
    this.#retry = document.getElementById('retry-now');
    this.#retry.addEventListener('click', onRetry);
  }

  /** state is the state shown. */
  get state() {
    return this.#root.dataset.state;
  }

  /**
   * show displays state with a detail; retryAt (a Date.now() time) starts
   * a countdown to the next attempt.
   */
  show(state, detail = '', retryAt = 0) {
    clearInterval(this.#timer);
    this.#timer = 0;
    if (state === 'online' && this.#root.dataset.state !== 'online') {
      this.#connects++;
      this.#root.dataset.connects = String(this.#connects);
    }
    this.#root.dataset.state = state;
    document.body.dataset.connection = state;
    this.#text.textContent = labels[state] ?? state;
    this.#retry.hidden = !(state === 'reconnecting' || state === 'offline');
    const render = () => {
      const left = Math.max(0, retryAt - Date.now());
      const countdown = retryAt ? `next attempt in ${Math.ceil(left / 1000)} s` : '';
      this.#detail.textContent = [detail, countdown].filter(Boolean).join(' · ');
      if (retryAt && left === 0) {
        clearInterval(this.#timer);
        this.#timer = 0;
      }
    };
    render();
    if (retryAt) this.#timer = setInterval(render, 250);
  }
}
