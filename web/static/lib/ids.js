// Message ids are Redis stream ids, "<ms>-<seq>", that increase strictly
// within their stream. They must be compared as two numbers: "9-0" comes
// before "10-0", which a string comparison gets wrong.

const ID = /^(\d+)-(\d+)$/;

/** Reports whether s is a message id. */
export function isId(s) {
  return typeof s === 'string' && ID.test(s);
}

function cmpDigits(a, b) {
  a = a.replace(/^0+(?=\d)/, '');
  b = b.replace(/^0+(?=\d)/, '');
  if (a.length !== b.length) return a.length < b.length ? -1 : 1;
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * Compares two message ids numerically: negative when a comes first, 0 when
 * equal, positive when a comes later. Throws a TypeError on a malformed id.
 */
export function compareIds(a, b) {
  const x = ID.exec(a);
  const y = ID.exec(b);
  if (!x || !y) throw new TypeError(`not message ids: ${JSON.stringify(a)}, ${JSON.stringify(b)}`);
  return cmpDigits(x[1], y[1]) || cmpDigits(x[2], y[2]);
}
