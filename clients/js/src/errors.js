// The client's error type.

/**
 * ClientError is how the client rejects: code is the server's error code
 * (invalid_contents, not_member, …) or one of the client's own:
 * "buffer_full", "disconnected", "closed", "timeout", "auth_refused" (the
 * server refused the ticket, or closed with 1008 before its greeting),
 * "auth_required" (the server needs a ticket and none was given).
 */
export class ClientError extends Error {
  /**
   * @param {string} code
   * @param {string} message
   * @param {{room?: string, ref?: string, closeCode?: number}} [details]
   */
  constructor(code, message, details = {}) {
    super(message);
    this.name = 'ClientError';
    this.code = code;
    if (details.room !== undefined) this.room = details.room;
    if (details.ref !== undefined) this.ref = details.ref;
    if (details.closeCode !== undefined) this.closeCode = details.closeCode;
  }
}
