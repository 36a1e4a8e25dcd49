// A room of the chat-room channel, as one client sees it.
import { Emitter } from './emitter.js';
import { Stream } from './stream.js';
import { isId } from './ids.js';
import { ClientError } from './errors.js';

const CHANNEL = 'chat-room';

/**
 * Room is obtained from Client.room(name). Its requests return promises
 * settled by the server's reply to that request. Events: "message"
 * (NewMessage contents, in id order, each once), "joined" and "left"
 * (JoinedRoom/LeftRoom contents, for any user), "members" (the MemberList
 * answering a join or re-join), "gap" ({room, after, reason}: the client is
 * fetching missed history), "error" (an Error about this room that no
 * request was waiting for).
 *
 * When the server refuses the automatic re-join after a reconnect (the
 * ticket of the new connection does not allow the room, too_many_rooms…),
 * the room stops being re-joined: a join() promise still waiting rejects
 * with the Error, otherwise it is an "error" event; and if the room had
 * been joined, a "left" event for the client's own user carries it as
 * error, since the room is no longer joined.
 */
export class Room extends Emitter {
  /** The room's name. */
  name;
  #host;
  #wanted = false;
  #joined = false;
  #waiting = null; // {promise, resolve, reject} of join() callers
  #inFlight = false; // a JoinRoom awaits its reply
  #members = null; // the last MemberList contents
  // The newest stored id when the room was first joined, the resume point
  // while no message has been delivered yet. Not used to drop duplicates:
  // a message stored before the probe may still be on its way live.
  #floor;
  #probed = false;
  #everJoined = false; // a MemberList came: the app shows the room joined
  #stream;

  /** @internal Rooms are created by Client.room. */
  constructor(name, host) {
    super();
    this.name = name;
    this.#host = host;
    this.#stream = new Stream(
      (since) => this.history({ since }),
      (m) => this.emit('message', m),
    );
  }

  /** Whether the room is joined on the current connection. */
  get joined() {
    return this.#joined;
  }

  /** The id of the last message delivered, the point a resume starts from. */
  get lastId() {
    return this.#stream.lastId;
  }

  /**
   * Joins the room, now or as soon as the client is online, and keeps it
   * joined across reconnects, resuming after the last message seen. since
   * resumes after a message id remembered from an earlier session. Resolves
   * with the MemberList contents; rejects with the server's Error (the room
   * is then not re-joined).
   * @param {{since?: string}} [options]
   */
  join({ since } = {}) {
    if (since !== undefined) {
      if (!isId(since)) return Promise.reject(new TypeError(`since must be a message id, got ${JSON.stringify(since)}`));
      this.#stream.lastId = since;
    }
    this.#wanted = true;
    if (this.#joined) return Promise.resolve(this.#members);
    if (!this.#waiting) {
      let settle;
      const p = new Promise((resolve, reject) => {
        settle = { resolve, reject };
      });
      p.catch(() => {}); // the caller may not wait; the "error" event still tells
      this.#waiting = { promise: p, ...settle };
    }
    // Offline, the JoinRoom goes out when the client comes online (rejoin).
    if (this.#host.online() && !this.#inFlight) this.#sendJoin(false);
    return this.#waiting.promise;
  }

  #settleJoin(err, members) {
    const w = this.#waiting;
    this.#waiting = null;
    if (!w) return;
    if (err) w.reject(err);
    else w.resolve(members);
  }

  /** Sends JoinRoom; auto: a re-join after a reconnect, not a join() call. */
  #sendJoin(auto) {
    const contents = { room: this.name };
    const since = this.#stream.lastId ?? this.#floor;
    if (since !== undefined) contents.since = since;
    this.#inFlight = true;
    this.#host.request(CHANNEL, 'JoinRoom', contents, { expect: ['MemberList'], room: this.name, bufferable: false }).then(
      () => {
        this.#inFlight = false;
      },
      (err) => {
        this.#inFlight = false;
        // Lost connections re-join by themselves; anything else is the
        // server refusing (or not answering) this join.
        if (err.code === 'disconnected') return;
        if (err.code === 'timeout') {
          this.#settleJoin(err);
          return;
        }
        this.#wanted = false;
        if (!auto) {
          this.#settleJoin(err);
          return;
        }
        const told = this.#waiting !== null;
        this.#settleJoin(err);
        if (!told) this.emit('error', err);
        if (this.#everJoined) this.emit('left', { room: this.name, user: this.#host.user() ?? '', error: err });
      },
    );
  }

  /** @internal Called by the client once online: re-joins a wanted room. */
  rejoin() {
    this.#joined = false;
    this.#inFlight = false;
    if (this.#wanted) this.#sendJoin(true);
  }

  /** @internal Called by the client when it is closed for good. */
  closed(err) {
    this.#joined = false;
    this.#settleJoin(err);
  }

  /** @internal Called by the client when the connection is lost. */
  disconnected() {
    this.#joined = false;
  }

  /**
   * Leaves the room; resolves with the LeftRoom contents. Offline, the room
   * is simply no longer re-joined.
   */
  leave() {
    this.#wanted = false;
    this.#settleJoin(new ClientError('closed', 'left before the join completed'));
    if (!this.#joined && !this.#inFlight) return Promise.resolve({ room: this.name, user: this.#host.user() ?? '' });
    this.#joined = false;
    const p = this.#host.request(CHANNEL, 'LeaveRoom', { room: this.name }, {
      expect: ['LeftRoom'], room: this.name, bufferable: false,
      match: (type, c) => type === 'LeftRoom' && c.user === this.#host.user(),
    });
    return p.catch((err) => {
      if (err.code === 'disconnected') return { room: this.name, user: this.#host.user() ?? '' };
      throw err;
    });
  }

  /**
   * Posts text to the room. Without ack, resolves once the frame is
   * written (buffered while offline, up to maxBuffered) and a later refusal
   * is an "error" event; with ack, resolves with the Sent contents
   * ({room, id}) and rejects with the server's Error.
   * @param {string} text
   * @param {{ack?: boolean}} [options]
   */
  send(text, { ack = false } = {}) {
    if (typeof text !== 'string') return Promise.reject(new TypeError('text must be a string'));
    const contents = { room: this.name, message: text };
    if (!ack) return this.#host.request(CHANNEL, 'SendMessage', contents, { expect: [], room: this.name });
    contents.ack = true;
    return this.#host.request(CHANNEL, 'SendMessage', contents, {
      expect: ['Sent'], room: this.name,
      // A server that does not answer ack yet: our own NewMessage with this
      // text is the acknowledgement.
      match: (type, c) => type === 'NewMessage' && c.user === this.#host.user() && c.message === text,
    }).then((c) => ({ room: c.room, id: c.id ?? '' }));
  }

  /**
   * Reads stored messages, oldest first: since and before are exclusive
   * bounds. Resolves with the History contents.
   * @param {{since?: string, before?: string, limit?: number}} [query]
   */
  history({ since, before, limit } = {}) {
    const contents = { room: this.name };
    if (since !== undefined) contents.since = since;
    if (before !== undefined) contents.before = before;
    if (limit !== undefined) contents.limit = limit;
    return this.#host.request(CHANNEL, 'GetHistory', contents, { expect: ['History'], room: this.name });
  }

  /**
   * Reads one page of the room's members, sorted; resolves with the
   * Members contents ({room, users, count, next?}). Pass next as after for
   * the following page.
   * @param {{after?: string, limit?: number}} [query]
   */
  members({ after, limit } = {}) {
    const contents = { room: this.name };
    if (after !== undefined) contents.after = after;
    if (limit !== undefined) contents.limit = limit;
    return this.#host.request(CHANNEL, 'GetMembers', contents, { expect: ['Members'], room: this.name });
  }

  /** @internal Handles a chat-room frame about this room. */
  receive(type, contents, unmatchedError) {
    switch (type) {
      case 'MemberList':
        this.#joined = true;
        this.#everJoined = true;
        this.#members = contents;
        this.#settleJoin(null, contents);
        this.emit('members', contents);
        if (this.#stream.lastId === undefined && !this.#probed) this.#probe();
        break;
      case 'JoinedRoom':
        this.emit('joined', contents);
        if (contents.user === this.#host.user() && contents.recovered === false) this.#fill(undefined, 'not_recovered');
        break;
      case 'LeftRoom':
        this.emit('left', contents);
        break;
      case 'NewMessage':
        this.#stream.offer(contents);
        break;
      case 'Gap':
        this.#fill(contents.after, 'gap');
        break;
      case 'Error':
        if (unmatchedError) this.emit('error', unmatchedError);
        break;
      default:
    }
  }

  /**
   * Learns the newest stored id on a first join without since, so that a
   * reconnect before any message arrived still resumes without a gap.
   */
  #probe() {
    this.#probed = true;
    this.history({ limit: 1 }).then(
      (page) => {
        const id = page.messages.at(-1)?.id;
        if (isId(id)) this.#floor = id;
      },
      () => {}, // no history kept: nothing to resume from
    );
  }

  #fill(after, reason) {
    const from = this.#stream.lastId ?? this.#floor ?? after;
    this.emit('gap', { room: this.name, after: from ?? '', reason });
    this.#stream.fill(from).catch((err) => {
      // A lost connection resumes from lastId by itself.
      if (err.code !== 'disconnected' && err.code !== 'closed') this.emit('error', err);
    });
  }
}
