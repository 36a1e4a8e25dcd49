// Types of @switchboard/client and of every Switchboard protocol message.
// The protocol types mirror protocol/schemas/*.json (a Go test,
// protocol/schema_test.go, fails when they drift): for each schema, the
// contents type is named by its $defs.contents.title and the envelope by
// its title.

// ---------------------------------------------------------------------------
// Shared

/** A Redis stream id "<ms>-<seq>"; compare with compareIds, not as strings. */
export type MessageId = string;

/** Error codes the server sends. */
export type ErrorCode =
  | 'invalid_json'
  | 'unknown_channel'
  | 'unknown_type'
  | 'invalid_contents'
  | 'not_member'
  | 'rate_limited'
  | 'too_many_rooms'
  | 'forbidden'
  | 'unauthenticated'
  | 'already_authenticated'
  | 'history_disabled'
  | 'unavailable'
  | 'internal';

/** Protocol channels; "error" carries Errors for unreadable frames. */
export type ChannelName = 'chat' | 'chat-room' | 'ping' | 'session' | 'inbox' | 'error';

// ---------------------------------------------------------------------------
// Contents, one per message

/** chat SubmitMessage: the text. */
export type SubmitMessage = string;

/** chat NewMessageReceived. */
export interface ChatMessage {
  /** Absent when the server keeps no history. */
  id?: MessageId;
  content: string;
  postedAt: string;
}

/** chat GetHistory. */
export interface ChatGetHistory {
  since?: MessageId;
  before?: MessageId;
  limit?: number;
}

/** chat History. */
export interface ChatHistory {
  messages: ChatMessage[];
  complete: boolean;
}

/** chat Gap: delivery after `after` is not guaranteed; fetch history since it. */
export interface ChatGap {
  after: string;
}

/** chat-room JoinRoom. */
export interface JoinRoom {
  room: string;
  since?: MessageId;
}

/** chat-room LeaveRoom. */
export interface LeaveRoom {
  room: string;
}

/** chat-room SendMessage. */
export interface SendMessage {
  room: string;
  message: string;
  /** Ask for a Sent reply on success. */
  ack?: boolean;
}

/** chat-room GetHistory. */
export interface RoomGetHistory {
  room: string;
  since?: MessageId;
  before?: MessageId;
  limit?: number;
}

/** chat-room GetMembers. */
export interface GetMembers {
  room: string;
  after?: string;
  limit?: number;
}

/** chat-room MemberList: the reply to JoinRoom. */
export interface MemberList {
  room: string;
  users: string[];
  /** The full number of members when the list is truncated. */
  count?: number;
  truncated?: boolean;
}

/** chat-room Members: one page answering GetMembers. */
export interface Members {
  room: string;
  users: string[];
  count: number;
  /** The after of the next page; absent on the last. */
  next?: string;
}

/** chat-room JoinedRoom. */
export interface JoinedRoom {
  room: string;
  user: string;
  /** Only on the joiner's own copy after a join with since. */
  recovered?: boolean;
}

/** chat-room LeftRoom. */
export interface LeftRoom {
  room: string;
  user: string;
}

/** chat-room NewMessage. */
export interface RoomMessage {
  /** Absent when the server keeps no history. */
  id?: MessageId;
  room: string;
  user: string;
  message: string;
  postedAt: string;
}

/** chat-room History. */
export interface RoomHistory {
  room: string;
  messages: RoomMessage[];
  complete: boolean;
}

/** chat-room Sent: the acknowledgement of a SendMessage with ack. */
export interface Sent {
  room: string;
  /** "" (or absent on the wire) when the server keeps no history. */
  id?: MessageId;
}

/** chat-room Gap: delivery after `after` is not guaranteed; fetch history since it. */
export interface RoomGap {
  room: string;
  after: string;
}

/** ping Ping: which ping route was called. */
export type PingNumber = 1 | 2;

/** session Authenticate. */
export interface Authenticate {
  token: string;
}

/** session Authenticated: the greeting. */
export interface Authenticated {
  user: string;
  connection: string;
}

/** inbox Message. */
export interface InboxMessage {
  content: string;
  /** The app's own label, when POST /message had one. */
  type?: string;
  postedAt: string;
}

/** Error, on any channel. */
export interface ProtocolError {
  code: ErrorCode;
  message: string;
  /** Set when the error is about a room. */
  room?: string;
}

// ---------------------------------------------------------------------------
// Envelopes, one per message

/** An envelope: what every frame is. */
interface Envelope<C extends string, T extends string, X> {
  channel: C;
  message: { type: T; contents: X };
}
/** An envelope that may carry a ref, echoed by the server in replies. */
interface RefEnvelope<C extends string, T extends string, X> extends Envelope<C, T, X> {
  /** At most 64 bytes. */
  ref?: string;
}

export type ChatSubmitMessageFrame = RefEnvelope<'chat', 'SubmitMessage', SubmitMessage>;
export type ChatNewMessageReceivedFrame = Envelope<'chat', 'NewMessageReceived', ChatMessage>;
export type ChatGetHistoryFrame = { channel: 'chat'; ref?: string; message: { type: 'GetHistory'; contents?: ChatGetHistory } };
export type ChatHistoryFrame = RefEnvelope<'chat', 'History', ChatHistory>;
export type ChatGapFrame = Envelope<'chat', 'Gap', ChatGap>;
export type ChatRoomJoinRoomFrame = RefEnvelope<'chat-room', 'JoinRoom', JoinRoom>;
export type ChatRoomLeaveRoomFrame = RefEnvelope<'chat-room', 'LeaveRoom', LeaveRoom>;
export type ChatRoomSendMessageFrame = RefEnvelope<'chat-room', 'SendMessage', SendMessage>;
export type ChatRoomGetHistoryFrame = RefEnvelope<'chat-room', 'GetHistory', RoomGetHistory>;
export type ChatRoomGetMembersFrame = RefEnvelope<'chat-room', 'GetMembers', GetMembers>;
export type ChatRoomMemberListFrame = RefEnvelope<'chat-room', 'MemberList', MemberList>;
export type ChatRoomMembersFrame = RefEnvelope<'chat-room', 'Members', Members>;
export type ChatRoomJoinedRoomFrame = RefEnvelope<'chat-room', 'JoinedRoom', JoinedRoom>;
export type ChatRoomLeftRoomFrame = RefEnvelope<'chat-room', 'LeftRoom', LeftRoom>;
export type ChatRoomNewMessageFrame = Envelope<'chat-room', 'NewMessage', RoomMessage>;
export type ChatRoomHistoryFrame = RefEnvelope<'chat-room', 'History', RoomHistory>;
export type ChatRoomSentFrame = RefEnvelope<'chat-room', 'Sent', Sent>;
export type ChatRoomGapFrame = Envelope<'chat-room', 'Gap', RoomGap>;
export type PingFrame = Envelope<'ping', 'Ping', PingNumber>;
export type SessionAuthenticateFrame = RefEnvelope<'session', 'Authenticate', Authenticate>;
export type SessionAuthenticatedFrame = Envelope<'session', 'Authenticated', Authenticated>;
export type InboxMessageFrame = Envelope<'inbox', 'Message', InboxMessage>;
export type ErrorFrame = RefEnvelope<'chat' | 'chat-room' | 'ping' | 'session' | 'inbox' | 'error', 'Error', ProtocolError>;

/** Every frame a client sends. */
export type ClientFrame =
  | ChatSubmitMessageFrame
  | ChatGetHistoryFrame
  | ChatRoomJoinRoomFrame
  | ChatRoomLeaveRoomFrame
  | ChatRoomSendMessageFrame
  | ChatRoomGetHistoryFrame
  | ChatRoomGetMembersFrame
  | SessionAuthenticateFrame;

/** Every frame the server sends. */
export type ServerFrame =
  | ChatNewMessageReceivedFrame
  | ChatHistoryFrame
  | ChatGapFrame
  | ChatRoomMemberListFrame
  | ChatRoomMembersFrame
  | ChatRoomJoinedRoomFrame
  | ChatRoomLeftRoomFrame
  | ChatRoomNewMessageFrame
  | ChatRoomHistoryFrame
  | ChatRoomSentFrame
  | ChatRoomGapFrame
  | PingFrame
  | SessionAuthenticatedFrame
  | InboxMessageFrame
  | ErrorFrame;

// ---------------------------------------------------------------------------
// The client API

/** Connection states; closed is also the state before connect(). */
export type ClientState = 'connecting' | 'online' | 'reconnecting' | 'offline' | 'closed';

/** The payload of the "state" event. */
export interface StateChange {
  state: ClientState;
  /** connecting: failed attempts since the last stable connection. */
  attempt?: number;
  /** reconnecting: how long until the next attempt. */
  delayMs?: number;
  /** reconnecting: the close code and reason of the lost connection. */
  closeCode?: number;
  reason?: string;
  /** online: who the server greeted. */
  user?: string;
  connection?: string;
  /**
   * closed: why, when it was not close(); code auth_required or
   * auth_refused when the server wants a (valid) ticket.
   */
  error?: ClientError;
}

/** A minimal WebSocket constructor (the browser's, Node 22's, or the ws package's). */
export interface WebSocketConstructor {
  new (url: string): WebSocketLike;
}

/** What the client uses of a WebSocket. */
export interface WebSocketLike {
  send(data: string): void;
  close(code?: number, reason?: string): void;
  onopen?: ((ev: unknown) => void) | null;
  onmessage: ((ev: { data: unknown }) => void) | null;
  onclose: ((ev: { code: number; reason: string }) => void) | null;
  onerror: ((ev: unknown) => void) | null;
}

/** Something that fires "online" and "offline" events, like window. */
export interface NetworkEvents {
  addEventListener(type: 'online' | 'offline', fn: () => void): void;
  removeEventListener(type: 'online' | 'offline', fn: () => void): void;
}

/** Options of new Client(url, options). */
export interface ClientOptions {
  /**
   * Called before every connection attempt in ticket mode; its result is
   * passed as ?token=. Tickets are single-use: fetch a fresh one each time.
   */
  getToken?: () => string | Promise<string>;
  /** Open mode: the ?user= name. Ignored when getToken is set. */
  user?: string;
  /** A WebSocket implementation where the runtime has none (Node 20). */
  WebSocket?: WebSocketConstructor;
  /** Full-jitter exponential backoff bounds; default {initialMs: 500, maxMs: 30000}. */
  backoff?: { initialMs?: number; maxMs?: number };
  /** A connection online this long resets the backoff; default 10000. */
  stableAfterMs?: number;
  /** Frames kept while not online, beyond which sends reject with buffer_full; default 100. */
  maxBuffered?: number;
  /** A request with no reply within this long rejects with timeout; default 10000. */
  requestTimeoutMs?: number;
  /**
   * Send one harmless frame (session/Ping) as each socket opens, so that a
   * server needing a ticket says so at once (it answers "unauthenticated")
   * rather than after its authentication timeout: the client then closes
   * for good with an auth_required error. Open servers answer unknown_type,
   * which the client drops. Default: true when getToken is not set.
   */
  probeAuth?: boolean;
  /**
   * Where "online"/"offline" events come from: globalThis when it has
   * addEventListener (browsers), else none. null disables.
   */
  network?: NetworkEvents | null;
}

/** Payload of the "gap" events: missed history is being fetched. */
export interface GapNotice {
  room?: string;
  /** The last id delivered before the gap ("" when none). */
  after: string;
  reason: 'gap' | 'not_recovered';
}

/** Errors the client rejects with or emits. */
export declare class ClientError extends Error {
  /** A server ErrorCode, or the client's own. */
  code: ErrorCode | 'buffer_full' | 'disconnected' | 'closed' | 'timeout' | 'auth_refused' | 'auth_required';
  room?: string;
  ref?: string;
  closeCode?: number;
}

/** Events of a Client. */
export interface ClientEvents {
  state: StateChange;
  error: ClientError | Error;
  ping: PingNumber;
  inbox: InboxMessage;
  chat: ChatMessage;
  gap: GapNotice;
  /** Every frame received, raw. */
  frame: ServerFrame;
}

/** Events of a Room. */
export interface RoomEvents {
  message: RoomMessage;
  joined: JoinedRoom;
  /**
   * A user left; for the client's own user with error set, the server
   * refused the room's automatic re-join after a reconnect.
   */
  left: LeftRoom & { error?: ClientError };
  members: MemberList;
  gap: GapNotice;
  error: ClientError | Error;
}

/** Typed events: on, once and off, shared by Client and Room. */
export declare class Emitter<E> {
  /** Adds a listener; returns a function that removes it. */
  on<K extends keyof E>(event: K, fn: (value: E[K]) => void): () => void;
  once<K extends keyof E>(event: K, fn: (value: E[K]) => void): () => void;
  off<K extends keyof E>(event: K, fn: (value: E[K]) => void): void;
}

/** A room, from Client.room(name). */
export declare class Room extends Emitter<RoomEvents> {
  readonly name: string;
  /** Joined on the current connection. */
  readonly joined: boolean;
  /** The last message id delivered: where a resume starts. */
  readonly lastId: MessageId | undefined;
  /** Joins now or once online, and keeps the room joined across reconnects. */
  join(options?: { since?: MessageId }): Promise<MemberList>;
  leave(): Promise<LeftRoom>;
  send(text: string, options?: { ack?: false }): Promise<void>;
  send(text: string, options: { ack: true }): Promise<{ room: string; id: MessageId | '' }>;
  history(query?: { since?: MessageId; before?: MessageId; limit?: number }): Promise<RoomHistory>;
  members(query?: { after?: string; limit?: number }): Promise<Members>;
}

/** One logical connection to Switchboard. */
export declare class Client extends Emitter<ClientEvents> {
  /**
   * @param url ws://host/websockets, a list tried in turn after each lost
   * connection, or a function called before every attempt.
   */
  constructor(url: string | string[] | ((attempt: number) => string | Promise<string>), options?: ClientOptions);
  readonly state: ClientState;
  readonly user: string | undefined;
  readonly connectionId: string | undefined;
  readonly lastChatId: MessageId | undefined;
  /** Resolves once online; rejects if closed first (close(), refused ticket). */
  connect(): Promise<void>;
  /** Closes for good; pending requests and buffered frames reject with "closed". */
  close(): void;
  /** Reconnects now instead of after the backoff delay. */
  retryNow(): void;
  room(name: string): Room;
  sendChat(text: string): Promise<void>;
  chatHistory(query?: { since?: MessageId; before?: MessageId; limit?: number }): Promise<ChatHistory>;
}

/** Compares message ids numerically (negative, 0, positive). */
export declare function compareIds(a: MessageId, b: MessageId): number;
/** Whether s is a message id. */
export declare function isId(s: unknown): s is MessageId;
/** A full-jitter backoff delay for the attempt-th retry. */
export declare function backoffDelay(attempt: number, backoff: { initialMs: number; maxMs: number }, random?: () => number): number;
/** The retryAfterMs=<n> a close 1013 reason asks for, or 0. */
export declare function retryAfterMs(reason: string): number;
