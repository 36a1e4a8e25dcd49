// Stream: in-order, duplicate-free delivery and gap filling, fed from a
// history source given as data.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Stream } from '../src/stream.js';

const msg = (id) => ({ id, message: `m${id}` });

/** A history source: pages after a cursor, pageSize at a time. */
function history(ids, pageSize) {
  const calls = [];
  const fetch = async (since) => {
    calls.push(since);
    await new Promise((r) => setTimeout(r, 5));
    const start = ids.findIndex((id) => Number(id.split('-')[0]) > Number(since.split('-')[0]));
    const rest = start < 0 ? [] : ids.slice(start);
    return { messages: rest.slice(0, pageSize).map(msg), complete: rest.length <= pageSize };
  };
  return { fetch, calls };
}

test('drops messages at or before the last delivered id', () => {
  const out = [];
  const s = new Stream(async () => ({ messages: [], complete: true }), (m) => out.push(m.id));
  for (const id of ['1-0', '2-0', '2-0', '1-0', '10-0', '9-0', '10-1']) s.offer(msg(id));
  s.offer({ message: 'no id (history off)' });
  assert.deepEqual(out, ['1-0', '2-0', '10-0', '10-1', undefined]);
  assert.equal(s.lastId, '10-1');
});

test('a fill delivers missed history before the live messages held meanwhile', async () => {
  const cases = [
    { name: 'one page', pageSize: 10, live: ['6-0', '7-0'], want: ['2-0', '3-0', '4-0', '5-0', '6-0', '7-0'] },
    { name: 'several pages', pageSize: 2, live: ['6-0', '7-0'], want: ['2-0', '3-0', '4-0', '5-0', '6-0', '7-0'] },
    { name: 'live overlaps history', pageSize: 2, live: ['4-0', '5-0', '6-0'], want: ['2-0', '3-0', '4-0', '5-0', '6-0'] },
  ];
  for (const c of cases) {
    const out = [];
    const h = history(['1-0', '2-0', '3-0', '4-0', '5-0'], c.pageSize);
    const s = new Stream(h.fetch, (m) => out.push(m.id));
    s.offer(msg('1-0'));
    const filling = s.fill('1-0');
    for (const id of c.live) s.offer(msg(id));
    assert.deepEqual(out, ['1-0'], `${c.name}: live messages wait for the fill`);
    await filling;
    assert.deepEqual(out.slice(1), c.want, c.name);
    assert.equal(h.calls[0], '1-0', c.name);
  }
});

test('a failed fill still releases the held messages, then reports the error', async () => {
  const out = [];
  const s = new Stream(async () => {
    throw new Error('history_disabled');
  }, (m) => out.push(m.id));
  s.offer(msg('1-0'));
  const filling = s.fill();
  s.offer(msg('3-0'));
  await assert.rejects(filling, /history_disabled/);
  assert.deepEqual(out, ['1-0', '3-0']);
});

test('a fill with nothing to resume from does nothing', async () => {
  let called = false;
  const s = new Stream(async () => {
    called = true;
    return { messages: [], complete: true };
  }, () => {});
  await s.fill('');
  await s.fill(undefined);
  assert.equal(called, false);
});
