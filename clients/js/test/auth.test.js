// The client against nodes in authenticated mode: a fresh ticket from
// getToken for every (re)connect, and no reconnect once a ticket is refused.
import { after, before, test } from 'node:test';
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

/** Mints a ticket for user with POST /tokens, as an app's backend would. */
async function mint(user) {
  const res = await fetch(`${a2.http}/tokens`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${apiKey}` },
    body: JSON.stringify({ user, ttl: 60 }),
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
