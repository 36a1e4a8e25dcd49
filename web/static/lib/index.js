// @switchboard/client: a client for Switchboard's WebSocket protocol.
export { Client, ClientError } from './client.js';
export { Room } from './room.js';
export { Emitter } from './emitter.js';
export { compareIds, isId } from './ids.js';
export { backoffDelay, retryAfterMs } from './backoff.js';
