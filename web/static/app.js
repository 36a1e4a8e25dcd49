// Switchboard's browser client: a thin composition of the views in ui/ over
// the JavaScript client library in lib/ (a copy of clients/js/src).
import { Client } from './lib/index.js';
import { clock } from './ui/dom.js';
import { Alerts } from './ui/alerts.js';
import { StatusView, closeText } from './ui/status.js';
import { Tabs } from './ui/tabs.js';
import { ChatView, InboxView } from './ui/chat.js';
import { RoomView } from './ui/room.js';
import { Tickets } from './ui/tickets.js';

const $ = (id) => document.getElementById(id);

// Settings from the address: ?server=, ?user=, ?token= (a first ticket,
// removed from the address once read), ?ticketUrl=, ?maxFrameBytes= (the
// server's MAX_FRAME_BYTES, 65536 by default).
const params = new URLSearchParams(location.search);
const maxFrameBytes = Number(params.get('maxFrameBytes')) || 65536;
const narrow = matchMedia('(max-width: 600px)').matches;

const form = $('connect-form');
const serverInput = $('server-url');
const userInput = $('user-name');
const ticketInput = $('ticket');
const ticketURLInput = $('ticket-url');
const ticketBox = $('ticket-box');
const ticketHint = $('ticket-hint');
const connectButton = $('connect');
const disconnectButton = $('disconnect');
const joinForm = $('join-form');
const joinInput = $('join-room-input');
const joinError = $('join-error');

serverInput.value = params.get('server') ?? `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/websockets`;
userInput.value = params.get('user') ?? '';
ticketInput.value = params.get('token') ?? '';
ticketURLInput.value = params.get('ticketUrl') ?? '';
if (ticketInput.value || ticketURLInput.value) ticketBox.open = true;
if (params.has('token')) {
  params.delete('token');
  history.replaceState(null, '', `${location.pathname}${params.size ? `?${params}` : ''}`);
}

const alerts = new Alerts($('alerts'));
const rooms = new Map(); // name → RoomView
const tabs = new Tabs($('tabs'), $('panels'), (key) => {
  rooms.get(key)?.seen();
  if (key === 'inbox') inboxTab.tab.removeAttribute('data-unread');
});
const chat = new ChatView({ maxFrameBytes });
tabs.add('chat', 'Chat', chat.el);
const inbox = new InboxView();
const inboxTab = tabs.add('inbox', 'Inbox', inbox.el);

let client = null;
const status = new StatusView(() => client?.retryNow());
const tickets = new Tickets({
  onPrompt: () => {
    status.show('ticket', 'tickets work once: paste a fresh one to connect');
    ticketBox.open = true;
    ticketHint.textContent = 'Paste a fresh ticket and press Use ticket: the last one was used.';
    connectButton.textContent = 'Use ticket';
    ticketInput.focus();
  },
  onUsed: () => {
    ticketInput.value = '';
    ticketHint.textContent = 'Ticket used. Tickets work once: a reconnect needs a fresh one (or a ticket URL).';
  },
});
// For tests and the curious: how many tickets the page has used.
window.switchboard = { tickets };

/** socketURL accepts ws(s) and http(s) URLs, with or without /websockets. */
function socketURL(value) {
  const url = new URL(value, location.href);
  if (url.protocol === 'http:') url.protocol = 'ws:';
  if (url.protocol === 'https:') url.protocol = 'wss:';
  if (url.pathname === '/' || url.pathname === '') url.pathname = '/websockets';
  return url.href;
}

function connect() {
  const ticket = ticketInput.value.trim();
  if (tickets.waiting && ticket) {
    ticketInput.value = '';
    connectButton.textContent = 'Connect';
    tickets.provide(ticket);
    return;
  }
  let url;
  try {
    url = socketURL(serverInput.value.trim());
  } catch (err) {
    alerts.show(`The server address is not a URL: ${err.message}`, { source: 'connection' });
    serverInput.focus();
    return;
  }
  disconnect();
  alerts.clear('connection');
  const ticketURL = ticketURLInput.value.trim();
  tickets.configure({ ticket, url: ticketURL });
  // Without a ticket the client probes (probeAuth, its default then): an
  // authenticated server is reported at once as auth_required.
  const options = ticket || ticketURL
    ? { getToken: () => tickets.getToken() }
    : { user: userInput.value.trim() || undefined };
  const c = new Client(url, options);
  client = c;
  chat.attach(c);
  c.on('state', (change) => {
    if (c === client) onState(change);
  });
  c.on('error', (err) => {
    // Refusals of the connection are told by its "closed" state.
    if (c === client && err.code !== 'auth_refused' && err.code !== 'auth_required') alerts.show(`${err.code ? `${err.code}: ` : ''}${err.message}`, { code: err.code ?? '', source: 'connection' });
  });
  c.on('inbox', (m) => {
    inbox.add(m);
    if (tabs.selected !== 'inbox') inboxTab.tab.dataset.unread = String(Number(inboxTab.tab.dataset.unread ?? 0) + 1);
  });
  c.on('ping', (n) => {
    $('last-ping').textContent = `Ping ${n} at ${clock(new Date())}`;
  });
  c.connect().catch(() => {}); // the "closed" state says why
}

function disconnect() {
  tickets.cancel();
  connectButton.textContent = 'Connect';
  const c = client;
  if (!c) return;
  c.close();
  client = null;
  for (const view of [...rooms.values()]) removeRoom(view);
  status.show('closed', 'disconnected');
  chat.connection({ state: 'closed' });
  disconnectButton.disabled = true;
  $('join-room').disabled = true;
}

function onState(change) {
  const { state } = change;
  switch (state) {
    case 'connecting':
      if (!tickets.waiting) status.show('connecting', change.attempt ? `attempt ${change.attempt + 1}` : '');
      break;
    case 'online':
      status.show('online', '');
      $('self').textContent = change.user;
      $('self').dataset.user = change.user;
      alerts.clear('connection');
      ticketHint.textContent = '';
      break;
    case 'reconnecting':
      status.show('reconnecting', closeText(change.closeCode, change.reason), Date.now() + change.delayMs);
      break;
    case 'offline':
      status.show('offline', 'the browser is offline');
      break;
    case 'closed':
      if (change.error) refused(change.error);
      break;
    default:
  }
  disconnectButton.disabled = state === 'closed';
  $('join-room').disabled = state === 'closed';
  chat.connection(change);
  for (const view of rooms.values()) view.connection(state);
}

/** refused shows why the server would not have this connection. */
function refused(err) {
  const noTicket = err.code === 'auth_required' || /authentication timeout/.test(err.message);
  const text = noTicket
    ? 'This server needs a ticket: paste one under “Authenticated server”, or give a ticket URL, then Connect.'
    : `The server refused the connection: ${err.message}. Paste a fresh ticket and Connect.`;
  status.show('failed', noTicket ? 'a ticket is needed' : err.message);
  alerts.show(text, { code: err.closeCode ?? err.code, source: 'connection' });
  ticketBox.open = true;
  ticketHint.textContent = noTicket ? 'This server needs a ticket.' : `Refused: ${err.message}`;
}

function removeRoom(view) {
  rooms.delete(view.name);
  tabs.remove(view.name);
}

function joinRoom(name) {
  joinError.textContent = '';
  delete joinError.dataset.room;
  if (!client) {
    joinError.textContent = 'Connect first.';
    return;
  }
  if (rooms.has(name)) {
    tabs.select(name);
    return;
  }
  const view = new RoomView(client, name, {
    tabs, maxFrameBytes, narrow,
    onGone: (v, err) => {
      removeRoom(v);
      if (!err) return;
      const text = `Could not join ${v.name}: ${err.message}${err.code ? ` (${err.code})` : ''}`;
      joinError.textContent = text;
      joinError.dataset.room = v.name;
      joinError.dataset.code = err.code ?? '';
      if (joinInput.value === '') joinInput.value = v.name;
      alerts.show(text, { code: err.code ?? '', source: v.name });
    },
  });
  rooms.set(name, view);
  view.connection(client.state);
  view.join();
  tabs.select(name, { focus: false });
}

form.addEventListener('submit', (ev) => {
  ev.preventDefault();
  connect();
});
disconnectButton.addEventListener('click', disconnect);
joinForm.addEventListener('submit', (ev) => {
  ev.preventDefault();
  const name = joinInput.value.trim();
  if (name === '') return;
  joinInput.value = '';
  joinRoom(name);
});
document.body.dataset.ready = 'true';
if (ticketInput.value) connect();
