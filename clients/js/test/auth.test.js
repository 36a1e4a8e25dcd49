// The client against nodes in authenticated mode: a fresh ticket from
// getToken for every (re)connect, and no reconnect once a ticket is refused.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Client } from '../src/index.js';
import { record, startNode, startRedis, waitFor } from './harness.js';

const apiKey = 'test-api-key-for-the-js-client-tests';
const env = (redis) => ({ REDIS_URL: redis, JWT_SECRET: 'a-secret-of-at-least-thirty-two-bytes!!', SERVER_API_KEY: apiKey });
let a1;
let a2;
const clients = [];

before(async () => {
  const redis = await startRedis();
  [a1, a2] = await Promise.all([startNode(env(redis)), startNode(env(redis))]);
});

after(() => {
  for (const c of clients) c.close();
});

/**
 * Mints a ticket for user with POST /tokens, as an app's backend would,
 * limited to rooms when given.
 */
async function mint(user, rooms) {
  const res = await fetch(`${a2.http}/tokens`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${apiKey}` },
    body: JSON.stringify({ user, ttl: 60, ...(rooms && { rooms }) }),
  });
  assert.equal(res.status, 200, await res.clone().text());
  return (await res.json()).token;
}

test('getToken is called for every connect, and the client reconnects with a fresh ticket', async () => {
  const tokens = [];
  const c = new Client([a1.ws, a2.ws], {
    backoff: { initialMs: 20, maxMs: 100 },
    getToken: async () => {
      const t = await mint('carol');
      tokens.push(t);
      return t;
    },
  });
  clients.push(c);
  await c.connect();
  assert.equal(c.user, 'carol');
  assert.equal(tokens.length, 1);
  const first = c.connectionId;

  await a1.kill();
  await waitFor(() => c.state === 'online' && c.connectionId !== first, 'the reconnect on the other node');
  assert.equal(tokens.length, 2);
  assert.notEqual(tokens[0], tokens[1]);
  assert.equal(c.user, 'carol');
});

test('a refused ticket closes the client for good', async () => {
  let calls = 0;
  const c = new Client(a2.ws, {
    backoff: { initialMs: 20, maxMs: 100 },
    getToken: () => {
      calls++;
      return 'not-a-ticket';
    },
  });
  clients.push(c);
  const errors = record(c, 'error');
  await assert.rejects(c.connect(), (err) => err.code === 'auth_refused' && err.closeCode === 1008);
  assert.equal(c.state, 'closed');
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(calls, 1, 'no reconnect after a refusal');
  assert.equal(errors.length, 1);
});

test('a ticket used twice is refused on the reconnect', async () => {
  const token = await mint('erin');
  let calls = 0;
  const c = new Client(a2.ws, {
    backoff: { initialMs: 20, maxMs: 100 },
    getToken: () => {
      calls++;
      return token; // wrong: tickets are single-use
    },
  });
  clients.push(c);
  await c.connect();
  const other = new Client(a2.ws, { getToken: () => token, backoff: { initialMs: 20, maxMs: 100 } });
  clients.push(other);
  await assert.rejects(other.connect(), (err) => err.code === 'auth_refused' && /used/.test(err.message));
  assert.equal(c.state, 'online');
  assert.equal(calls, 1);
});

test('without a ticket, the client learns at once that the server needs one', async () => {
  const c = new Client(a2.ws, { backoff: { initialMs: 20, maxMs: 100 } });
  clients.push(c);
  const errors = record(c, 'error');
  const states = record(c, 'state');
  const start = Date.now();
  await assert.rejects(c.connect(), (err) => err.code === 'auth_required');
  const took = Date.now() - start;
  // The server's AUTH_TIMEOUT is 5 s: without the probe the refusal would come then.
  assert.ok(took < 2500, `refused after ${took} ms`);
  assert.equal(c.state, 'closed');
  assert.equal(states.at(-1).error?.code, 'auth_required');
  assert.deepEqual(errors.map((e) => e.code), ['auth_required']);
  await new Promise((r) => setTimeout(r, 200));
  assert.equal(states.filter((s) => s.state === 'connecting').length, 1, 'no reconnect once a ticket is known to be needed');
});

describe('a re-join the new ticket does not allow', () => {
  // Every ticket after the first allows only #kept: the automatic re-join
  // of #dropped after a reconnect is refused with forbidden.
  const tickets = (user) => {
    let n = 0;
    return () => mint(user, n++ === 0 ? ['#kept', '#dropped'] : ['#kept']);
  };

  test('after the server closed the connection: an error event and a left event', async () => {
    const c = new Client(a2.ws, { backoff: { initialMs: 20, maxMs: 100 }, network: null, getToken: tickets('dave') });
    clients.push(c);
    await c.connect();
    const kept = c.room('#kept');
    const dropped = c.room('#dropped');
    await Promise.all([kept.join(), dropped.join()]);
    const errors = record(dropped, 'error');
    const left = record(dropped, 'left');
    const keptErrors = record(kept, 'error');
    const first = c.connectionId;

    const res = await fetch(`${a2.http}/connections/${first}`, { method: 'DELETE', headers: { Authorization: `Bearer ${apiKey}` } });
    assert.equal(res.status, 204, await res.text());
    await waitFor(() => c.connectionId !== first && kept.joined && errors.length > 0, 'the reconnect and its re-joins');

    assert.deepEqual(errors.map((e) => [e.code, e.room]), [['forbidden', '#dropped']]);
    const own = left.filter((l) => l.error);
    assert.equal(own.length, 1, JSON.stringify(left));
    assert.equal(own[0].user, 'dave');
    assert.equal(own[0].error.code, 'forbidden');
    assert.equal(dropped.joined, false);
    assert.deepEqual(keptErrors, []);
    assert.equal(c.state, 'online');
  });

  test('with a join waiting while offline: the promise rejects, and a left event', async () => {
    const net = new EventTarget();
    const c = new Client(a2.ws, { backoff: { initialMs: 20, maxMs: 100 }, network: net, getToken: tickets('erin2') });
    clients.push(c);
    await c.connect();
    const dropped = c.room('#dropped');
    await dropped.join();
    const errors = record(dropped, 'error');
    const left = record(dropped, 'left');

    net.dispatchEvent(new Event('offline'));
    assert.equal(c.state, 'offline');
    const waiting = dropped.join(); // goes out with the re-join
    net.dispatchEvent(new Event('online'));
    await assert.rejects(waiting, (err) => err.code === 'forbidden' && err.room === '#dropped');

    assert.deepEqual(errors, [], 'the rejected promise tells; no error event besides');
    assert.equal(left.filter((l) => l.error?.code === 'forbidden').length, 1, JSON.stringify(left));
    assert.equal(dropped.joined, false);
  });
});
