// How the client reacts to a server's close codes that Switchboard does not
// produce on demand (1013 with a retry hint comes with issue 9's admission
// control): a small scripted WebSocket peer, speaking real RFC 6455 over a
// real socket, closes each connection with the code under test.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import http from 'node:http';
import { Client } from '../src/index.js';
import { record, waitFor } from './harness.js';

/**
 * Starts a WebSocket endpoint whose n-th connection is closed with
 * closes[n] = [code, reason]. Returns its URL, the connection times, and stop.
 */
async function closingPeer(closes) {
  const opened = [];
  const server = http.createServer((req, res) => res.writeHead(404).end());
  server.on('upgrade', (req, socket) => {
    const accept = createHash('sha1').update(req.headers['sec-websocket-key'] + '258EAFA5-E914-47DA-95CA-C5AB0DC85B11').digest('base64');
    socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`);
    const [code, reason] = closes[Math.min(opened.length, closes.length - 1)];
    opened.push(Date.now());
    const text = Buffer.from(reason);
    const payload = Buffer.concat([Buffer.from([code >> 8, code & 0xff]), text]);
    socket.write(Buffer.concat([Buffer.from([0x88, payload.length]), payload])); // FIN + close, unmasked
    socket.on('data', () => socket.end()); // the client's close reply
    socket.on('error', () => {});
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `ws://127.0.0.1:${server.address().port}/websockets`,
    opened,
    stop: () => {
      server.closeAllConnections?.();
      return new Promise((r) => server.close(r));
    },
  };
}

test('1013 waits at least retryAfterMs; 1008 before the greeting stops for good', async () => {
  const peer = await closingPeer([[1013, 'server busy; retryAfterMs=400'], [1008, 'bad signature']]);
  const c = new Client(peer.url, { backoff: { initialMs: 10, maxMs: 20 }, network: null });
  const states = record(c, 'state');
  try {
    await assert.rejects(c.connect(), (err) => err.code === 'auth_refused' && /bad signature/.test(err.message));
    assert.equal(peer.opened.length, 2);
    assert.ok(peer.opened[1] - peer.opened[0] >= 390, `retried after ${peer.opened[1] - peer.opened[0]} ms`);
    const r = states.find((s) => s.state === 'reconnecting');
    assert.ok(r.delayMs >= 400 && r.closeCode === 1013, JSON.stringify(r));
    assert.equal(c.state, 'closed');
    await new Promise((res) => setTimeout(res, 200));
    assert.equal(peer.opened.length, 2, 'no attempt after the refusal');
  } finally {
    c.close();
    await peer.stop();
  }
});

test('other closes reconnect with backoff, moving through the URL list', async () => {
  const a = await closingPeer([[1012, 'messages were missed: reconnect and catch up with since']]);
  const b = await closingPeer([[1001, 'server shutting down']]);
  const c = new Client([a.url, b.url], { backoff: { initialMs: 10, maxMs: 40 }, network: null });
  try {
    c.connect().catch(() => {});
    await waitFor(() => a.opened.length >= 2 && b.opened.length >= 2, 'attempts on both URLs');
    assert.ok(Math.abs(a.opened.length - b.opened.length) <= 1, `alternates: ${a.opened.length} vs ${b.opened.length}`);
    assert.notEqual(c.state, 'closed');
  } finally {
    c.close();
    await Promise.all([a.stop(), b.stop()]);
  }
});
