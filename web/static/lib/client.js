// The connection to Switchboard: one socket, reconnected with backoff, and
// the requests and rooms multiplexed over it.
import { Emitter } from './emitter.js';
import { Room } from './room.js';
import { Stream } from './stream.js';
import { backoffDelay, defaultBackoff, retryAfterMs } from './backoff.js';
import { ClientError } from './errors.js';

export { ClientError };

/** Close codes the client acts on. */
const CLOSE_POLICY = 1008; // before the greeting: a refused ticket
const CLOSE_TRY_AGAIN = 1013;

/**
 * The ref of the auth probe: a session/Ping, which no server accepts from
 * a client. An open server answers unknown_type (after its greeting); an
 * authenticated one, waiting for a ticket, answers unauthenticated at once.
 */
const PROBE_REF = 'sb.auth-probe';

/** How many refs of unanswered sends are remembered to route late errors. */
const recentRefsKept = 256;

/**
 * Client is one logical connection to Switchboard. See index.d.ts for the
 * options and events.
 */
export class Client extends Emitter {
  #url;
  #urlIndex = 0;
  #opts;
  #WebSocket;
  #network;
  #netHandlers = null;

  #state = 'closed';
  #ws = null;
  #gen = 0; // increases per socket; events of older sockets are ignored
  #greeted = false;
  #everOnline = false;
  #attempt = 0;
  #retryTimer = null;
  #stableTimer = null;
  #user;
  #connectionId;

  #seq = 0;
  #pending = new Map(); // ref → pending request
  #recentRefs = new Map(); // ref → room, for errors after a send resolved
  #buffer = []; // frames waiting for the connection
  #waiters = []; // connect() promises
  #rooms = new Map();
  #chat;

  /**
   * @param {string | string[] | ((attempt: number) => string | Promise<string>)} url
   *   the WebSocket URL (ws://host/websockets), a list tried in turn, or a
   *   function called before every attempt
   * @param {import('./index.js').ClientOptions} [options]
   */
  constructor(url, options = {}) {
    super();
    if (!url || (Array.isArray(url) && url.length === 0)) throw new TypeError('a URL is required');
    this.#url = url;
    this.#opts = {
      getToken: options.getToken,
      user: options.user,
      backoff: { ...defaultBackoff, ...options.backoff },
      stableAfterMs: options.stableAfterMs ?? 10000,
      maxBuffered: options.maxBuffered ?? 100,
      requestTimeoutMs: options.requestTimeoutMs ?? 10000,
      probeAuth: options.probeAuth ?? !options.getToken,
    };
    this.#WebSocket = options.WebSocket !== undefined ? options.WebSocket : globalThis.WebSocket;
    if (typeof this.#WebSocket !== 'function') {
      throw new TypeError('no WebSocket implementation: pass one as options.WebSocket (Node 20 has none built in)');
    }
    this.#network = options.network !== undefined
      ? options.network
      : typeof globalThis.addEventListener === 'function' ? globalThis : null;
    this.#chat = new Stream(
      (since) => this.chatHistory({ since }),
      (m) => this.emit('chat', m),
    );
  }

  /** connecting, online, reconnecting, offline or closed. */
  get state() {
    return this.#state;
  }

  /** The user the server greeted this connection as, once online. */
  get user() {
    return this.#user;
  }

  /** The server's id of the current connection, once online. */
  get connectionId() {
    return this.#connectionId;
  }

  /** The id of the last chat message delivered. */
  get lastChatId() {
    return this.#chat.lastId;
  }

  /**
   * Opens the connection (and keeps it open until close()). Resolves when
   * the client is online; rejects if it is closed first, by close() or a
   * refused ticket.
   */
  connect() {
    if (this.#state === 'online') return Promise.resolve();
    const p = new Promise((resolve, reject) => this.#waiters.push({ resolve, reject }));
    if (this.#state === 'closed') {
      this.#attempt = 0;
      this.#listenNetwork(true);
      if (this.#network && globalThis.navigator?.onLine === false) this.#setState('offline');
      else this.#open();
    }
    return p;
  }

  /**
   * Closes the connection for good: no reconnect. Pending requests and
   * buffered frames are rejected with code "closed".
   */
  close() {
    this.#shutdown(new ClientError('closed', 'the client was closed'));
  }

  /** Reconnects now instead of waiting for the backoff delay. */
  retryNow() {
    if (this.#state !== 'reconnecting' && this.#state !== 'offline') return;
    clearTimeout(this.#retryTimer);
    this.#retryTimer = null;
    this.#open();
  }

  /**
   * The room of that name; the same object for the same name.
   * @param {string} name
   */
  room(name) {
    let r = this.#rooms.get(name);
    if (!r) {
      r = new Room(name, {
        request: (...args) => this.#request(...args),
        online: () => this.#state === 'online',
        user: () => this.#user,
      });
      this.#rooms.set(name, r);
    }
    return r;
  }

  /**
   * Posts text to the global chat. Resolves once written (buffered while
   * offline); a refusal is an "error" event.
   * @param {string} text
   */
  sendChat(text) {
    if (typeof text !== 'string') return Promise.reject(new TypeError('text must be a string'));
    return this.#request('chat', 'SubmitMessage', text, { expect: [] });
  }

  /**
   * Reads stored chat messages, oldest first; resolves with the History
   * contents.
   * @param {{since?: string, before?: string, limit?: number}} [query]
   */
  chatHistory({ since, before, limit } = {}) {
    const contents = {};
    if (since !== undefined) contents.since = since;
    if (before !== undefined) contents.before = before;
    if (limit !== undefined) contents.limit = limit;
    return this.#request('chat', 'GetHistory', contents, { expect: ['History'] });
  }

  // ---- connection lifecycle ----

  #setState(state, extra = {}) {
    this.#state = state;
    this.emit('state', { state, ...extra });
  }

  async #nextURL() {
    const u = this.#url;
    if (typeof u === 'function') return u(this.#attempt);
    if (Array.isArray(u)) return u[this.#urlIndex % u.length];
    return u;
  }

  async #open() {
    const gen = ++this.#gen;
    this.#greeted = false;
    this.#setState('connecting', { attempt: this.#attempt });
    let target;
    try {
      target = new URL(await this.#nextURL());
      if (this.#opts.getToken) {
        const token = await this.#opts.getToken();
        if (gen !== this.#gen) return;
        if (token) target.searchParams.set('token', token);
      } else if (this.#opts.user !== undefined) {
        target.searchParams.set('user', this.#opts.user);
      }
    } catch (err) {
      if (gen !== this.#gen) return;
      this.emit('error', err);
      this.#scheduleReconnect(0, '');
      return;
    }
    if (gen !== this.#gen) return;
    let ws;
    try {
      ws = new this.#WebSocket(target.href);
    } catch (err) {
      this.emit('error', err);
      this.#scheduleReconnect(0, '');
      return;
    }
    this.#ws = ws;
    if (this.#opts.probeAuth) {
      ws.onopen = () => {
        if (gen !== this.#gen || this.#greeted) return;
        try {
          ws.send(JSON.stringify({ channel: 'session', ref: PROBE_REF, message: { type: 'Ping' } }));
        } catch {
          // closing already: its close event tells
        }
      };
    }
    ws.onmessage = (ev) => {
      if (gen === this.#gen) this.#onData(ev.data);
    };
    ws.onclose = (ev) => {
      if (gen === this.#gen) this.#onClose(ev.code, ev.reason ?? '');
    };
    ws.onerror = () => {}; // a close event follows
  }

  #online({ user, connection }) {
    this.#greeted = true;
    this.#user = user;
    this.#connectionId = connection;
    const resumed = this.#everOnline;
    this.#everOnline = true;
    this.#setState('online', { user, connection });
    clearTimeout(this.#stableTimer);
    this.#stableTimer = setTimeout(() => {
      this.#attempt = 0;
    }, this.#opts.stableAfterMs);
    // Re-joins are written before anything buffered, so that a buffered
    // send finds its room joined: the server handles a connection's frames
    // in order.
    for (const r of this.#rooms.values()) r.rejoin();
    const buffered = this.#buffer;
    this.#buffer = [];
    for (const b of buffered) this.#write(b);
    if (resumed && this.#chat.lastId !== undefined) {
      this.#chat.fill(this.#chat.lastId).catch((err) => this.emit('error', err));
    }
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const w of waiters) w.resolve();
  }

  #onClose(code, reason) {
    const wasGreeted = this.#greeted;
    this.#ws = null;
    this.#greeted = false;
    clearTimeout(this.#stableTimer);
    for (const r of this.#rooms.values()) r.disconnected();
    this.#failPending(new ClientError('disconnected', `connection closed (${code}${reason ? ': ' + reason : ''})`, { closeCode: code }));
    if (code === CLOSE_POLICY && !wasGreeted) {
      const err = new ClientError('auth_refused', `the server refused the connection: ${reason || 'policy violation'}`, { closeCode: code });
      this.emit('error', err);
      this.#shutdown(err);
      return;
    }
    this.#urlIndex++;
    this.#scheduleReconnect(code === CLOSE_TRY_AGAIN ? retryAfterMs(reason) : 0, reason, code);
  }

  #scheduleReconnect(atLeastMs, reason, code) {
    if (this.#state === 'closed') return;
    const delayMs = Math.max(backoffDelay(this.#attempt, this.#opts.backoff), atLeastMs);
    this.#attempt++;
    if (this.#network && globalThis.navigator?.onLine === false) {
      this.#setState('offline');
      return;
    }
    this.#setState('reconnecting', { delayMs, closeCode: code, reason });
    clearTimeout(this.#retryTimer);
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = null;
      this.#open();
    }, delayMs);
  }

  #goOffline() {
    if (this.#state === 'closed' || this.#state === 'offline') return;
    clearTimeout(this.#retryTimer);
    this.#retryTimer = null;
    clearTimeout(this.#stableTimer);
    this.#gen++;
    const ws = this.#ws;
    this.#ws = null;
    this.#greeted = false;
    if (ws) {
      ws.onopen = ws.onmessage = ws.onclose = null;
      try {
        ws.close(1000, 'offline');
      } catch {
        // already closing
      }
    }
    for (const r of this.#rooms.values()) r.disconnected();
    this.#failPending(new ClientError('disconnected', 'the network went offline'));
    this.#setState('offline');
  }

  #listenNetwork(on) {
    const net = this.#network;
    if (!net) return;
    if (on && !this.#netHandlers) {
      this.#netHandlers = {
        offline: () => this.#goOffline(),
        online: () => {
          if (this.#state === 'offline' || this.#state === 'reconnecting') {
            this.#attempt = 0;
            clearTimeout(this.#retryTimer);
            this.#retryTimer = null;
            this.#open();
          }
        },
      };
      net.addEventListener('offline', this.#netHandlers.offline);
      net.addEventListener('online', this.#netHandlers.online);
    } else if (!on && this.#netHandlers) {
      net.removeEventListener('offline', this.#netHandlers.offline);
      net.removeEventListener('online', this.#netHandlers.online);
      this.#netHandlers = null;
    }
  }

  #shutdown(err) {
    this.#gen++;
    clearTimeout(this.#retryTimer);
    clearTimeout(this.#stableTimer);
    this.#retryTimer = this.#stableTimer = null;
    this.#listenNetwork(false);
    const ws = this.#ws;
    this.#ws = null;
    this.#greeted = false;
    if (ws) {
      ws.onopen = ws.onmessage = ws.onclose = null;
      try {
        ws.close(1000, 'client closed');
      } catch {
        // already closing
      }
    }
    for (const r of this.#rooms.values()) r.closed(err);
    this.#failPending(err);
    const buffered = this.#buffer;
    this.#buffer = [];
    for (const b of buffered) b.entry.reject(err);
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const w of waiters) w.reject(err);
    if (this.#state !== 'closed') this.#setState('closed', err.code === 'closed' ? {} : { error: err });
  }

  // ---- requests ----

  /**
   * Sends a request with a fresh ref. expect lists the reply types that
   * resolve it (none: resolved once written); match recognises a reply
   * from a server that does not echo refs.
   */
  #request(channel, type, contents, { expect, room, match, bufferable = true }) {
    const ref = `r${++this.#seq}`;
    const frame = { channel, ref, message: { type, contents } };
    return new Promise((resolve, reject) => {
      const entry = { ref, channel, room, expect, match, timer: null };
      entry.resolve = (v) => {
        this.#settle(entry);
        resolve(v);
      };
      entry.reject = (e) => {
        this.#settle(entry);
        reject(e);
      };
      const item = { frame, entry };
      if (this.#state === 'online' && this.#ws) {
        this.#write(item);
      } else if (this.#state === 'closed') {
        reject(new ClientError('closed', 'the client is closed; call connect() first'));
      } else if (!bufferable) {
        reject(new ClientError('disconnected', 'the client is not connected'));
      } else if (this.#buffer.length >= this.#opts.maxBuffered) {
        reject(new ClientError('buffer_full', `already ${this.#buffer.length} frames buffered while offline (maxBuffered)`));
      } else {
        this.#buffer.push(item);
      }
    });
  }

  #settle(entry) {
    clearTimeout(entry.timer);
    this.#pending.delete(entry.ref);
  }

  #write({ frame, entry }) {
    try {
      this.#ws.send(JSON.stringify(frame));
    } catch (err) {
      entry.reject(new ClientError('disconnected', `write failed: ${err.message}`));
      return;
    }
    if (entry.expect.length === 0) {
      this.#recentRefs.set(entry.ref, entry.room);
      if (this.#recentRefs.size > recentRefsKept) this.#recentRefs.delete(this.#recentRefs.keys().next().value);
      entry.resolve(undefined);
      return;
    }
    this.#pending.set(entry.ref, entry);
    entry.timer = setTimeout(() => {
      entry.reject(new ClientError('timeout', `no reply to ${frame.message.type} within ${this.#opts.requestTimeoutMs} ms`, { ref: entry.ref, room: entry.room }));
    }, this.#opts.requestTimeoutMs);
  }

  #failPending(err) {
    for (const entry of [...this.#pending.values()]) entry.reject(err);
  }

  /** The oldest pending request a ref-less reply answers. */
  #matchWithoutRef(channel, type, contents) {
    for (const entry of this.#pending.values()) {
      if (entry.channel !== channel) continue;
      if (entry.room !== undefined && contents?.room !== entry.room) continue;
      if (entry.match ? entry.match(type, contents) : entry.expect.includes(type)) return entry;
    }
    return undefined;
  }

  // ---- incoming frames ----

  /**
   * Handles the answer to the auth probe, reporting whether the frame was
   * one: "unauthenticated" before the greeting means the server needs a
   * ticket and none was given, which closes the client for good (state
   * closed, error code auth_required) instead of waiting for the server's
   * authentication timeout; any other answer is dropped.
   */
  #probeAnswer(ref, contents) {
    const unauthenticated = contents?.code === 'unauthenticated';
    if (ref !== PROBE_REF && !(unauthenticated && !this.#greeted && this.#opts.probeAuth && ref === undefined)) return false;
    if (unauthenticated && !this.#greeted) {
      const err = new ClientError('auth_required', 'the server needs a ticket: pass getToken (no ticket was given)');
      this.emit('error', err);
      this.#shutdown(err);
    }
    return true;
  }

  #onData(data) {
    if (typeof data !== 'string') data = new TextDecoder().decode(data);
    let frame;
    try {
      frame = JSON.parse(data);
    } catch {
      this.emit('error', new ClientError('invalid_json', 'the server sent a frame that is not JSON'));
      return;
    }
    const { channel, ref } = frame;
    const type = frame.message?.type;
    const contents = frame.message?.contents;
    this.emit('frame', frame);
    if (type === 'Error' && this.#probeAnswer(ref, contents)) return;

    let entry = typeof ref === 'string' ? this.#pending.get(ref) : undefined;
    if (!entry && ref === undefined && type !== 'Error') entry = this.#matchWithoutRef(channel, type, contents);
    let unmatchedError;
    if (type === 'Error') {
      const room = contents?.room ?? (typeof ref === 'string' ? this.#recentRefs.get(ref) : undefined);
      const err = new ClientError(contents?.code ?? 'internal', contents?.message ?? 'error', { room, ref });
      if (entry) entry.reject(err);
      else unmatchedError = err;
      if (unmatchedError && room !== undefined && channel === 'chat-room' && this.#rooms.has(room)) {
        this.#rooms.get(room).receive('Error', contents, unmatchedError);
        return;
      }
    } else if (entry && (entry.expect.includes(type) || entry.match?.(type, contents))) {
      entry.resolve(contents);
    }

    switch (channel) {
      case 'session':
        if (type === 'Authenticated') this.#online(contents);
        break;
      case 'ping':
        if (type === 'Ping') this.emit('ping', contents);
        break;
      case 'inbox':
        if (type === 'Message') this.emit('inbox', contents);
        break;
      case 'chat':
        if (type === 'NewMessageReceived') this.#chat.offer(contents);
        else if (type === 'Gap') {
          this.emit('gap', { after: this.#chat.lastId ?? contents.after ?? '', reason: 'gap' });
          this.#chat.fill(contents.after).catch((err) => this.emit('error', err));
        }
        break;
      case 'chat-room': {
        const r = typeof contents?.room === 'string' ? this.#rooms.get(contents.room) : undefined;
        if (r) r.receive(type, contents, unmatchedError);
        break;
      }
      default:
    }
    if (unmatchedError) this.emit('error', unmatchedError);
  }
}
