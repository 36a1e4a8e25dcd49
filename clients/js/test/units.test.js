// Pure functions: id ordering, backoff bounds, the 1013 retry hint.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { backoffDelay, compareIds, isId, retryAfterMs } from '../src/index.js';

test('compareIds orders stream ids numerically', () => {
  const cases = [
    ['1-0', '1-0', 0],
    ['9-0', '10-0', -1],
    ['10-0', '9-0', 1],
    ['1700000000000-2', '1700000000000-10', -1],
    ['1700000000001-0', '1700000000000-99', 1],
    ['007-1', '7-1', 0],
  ];
  for (const [a, b, want] of cases) {
    assert.equal(Math.sign(compareIds(a, b)), want, `${a} vs ${b}`);
  }
  assert.throws(() => compareIds('abc', '1-0'), TypeError);
});

test('isId accepts only ms-seq ids', () => {
  for (const [s, want] of [['1-0', true], ['1662747165904-12', true], ['', false], ['1', false], ['a-1', false], [5, false]]) {
    assert.equal(isId(s), want, String(s));
  }
});

test('backoffDelay is full jitter under a growing, bounded cap', () => {
  const b = { initialMs: 100, maxMs: 1000 };
  const cases = [
    [0, 100], [1, 200], [2, 400], [3, 800], [4, 1000], [60, 1000],
  ];
  for (const [attempt, cap] of cases) {
    assert.equal(backoffDelay(attempt, b, () => 0), 0, `attempt ${attempt} low end`);
    assert.equal(backoffDelay(attempt, b, () => 0.999999), cap - 1, `attempt ${attempt} high end`);
    assert.equal(backoffDelay(attempt, b, () => 0.5), cap / 2, `attempt ${attempt} middle`);
  }
});

test('retryAfterMs reads the hint of a close 1013', () => {
  const cases = [
    ['server busy; retryAfterMs=2300', 2300],
    ['{"reason":"busy","retryAfterMs=15"}', 15],
    ['cannot check ticket now, try again', 0],
    ['', 0],
    [undefined, 0],
  ];
  for (const [reason, want] of cases) assert.equal(retryAfterMs(reason), want, String(reason));
});
