// Small DOM helpers shared by the page's views.

/**
 * h builds an element: h('button', {type: 'button', class: 'link'}, 'Retry').
 * Attributes whose value is null, undefined or false are left out; "on"
 * attributes holding functions become event listeners; children may be
 * strings, nodes, or null (skipped).
 */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children) {
    if (c !== null && c !== undefined) el.append(c);
  }
  return el;
}

let nextId = 0;

/** uniqueId returns a fresh DOM id with the given prefix. */
export function uniqueId(prefix) {
  nextId++;
  return `${prefix}-${nextId}`;
}

/** clock formats a time (RFC 3339 string or Date) as HH:MM:SS in local time. */
export function clock(t) {
  const d = t instanceof Date ? t : new Date(t);
  if (Number.isNaN(d.getTime())) return '';
  return d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit', hour12: false });
}

/** byteLength is the UTF-8 size of s. */
export function byteLength(s) {
  return new TextEncoder().encode(s).length;
}
