// Switchboard demo client: plain JavaScript, no build step, no dependencies.
//
// Every frame, both ways, is an envelope:
//   {"channel": "chat-room", "message": {"type": "JoinRoom", "contents": {...}}}
//
// The client survives network failures without losing room messages: an
// unexpected close is retried with capped exponential backoff and full
// jitter, and every new connection re-joins each room with "since" set to
// the newest message id seen there, so the server replays exactly what was
// missed (or says recovered:false when it no longer has all of it).
'use strict';

(() => {
  // Reconnection: delays are drawn from [0, min(CAP, BASE * 2^attempt)).
  const BACKOFF_BASE_MS = 500;
  const BACKOFF_CAP_MS = 30000;
  // A connection that stayed usable this long was healthy: its failure
  // restarts the backoff instead of growing it further.
  const STABLE_MS = 5000;
  // The server allows 20 frames/s with bursts of 40 by default. Stay well
  // under that so re-joining many rooms at once is not rate-limited.
  const SEND_BURST = 20;
  const SEND_PER_SECOND = 10;
  // Bounds on what a long-running tab keeps in the DOM.
  const MAX_LIST_ITEMS = 1000;
  const MAX_ERRORS = 50;

  const CLOSE_NORMAL = 1000;
  const CLOSE_POLICY = 1008;
  const CLOSE_NAMES = {
    1000: 'closed', 1001: 'server going away', 1006: 'connection lost',
    1008: 'policy violation', 1009: 'frame too large', 1011: 'server error', 1013: 'server busy',
  };

  const $ = (id) => document.getElementById(id);

  // ---- State -------------------------------------------------------------

  const conn = {
    ws: null,
    generation: 0,     // bumped per socket, so stale timers and events are ignored
    phase: 'idle',     // idle | connecting | authenticating | connected | waiting | failed
    wanted: false,     // the user asked to be connected and has not asked to stop
    settings: null,    // {url, user, ticket} the user connected with
    attempt: 0,        // failed attempts since the last healthy connection
    retryTimer: 0,
    establishedAt: 0,  // when the current socket became usable; 0 until then
    connects: 0,       // sockets that became usable (shown to tests as data-connects)
  };
  const me = { user: '', ticketUser: '' };
  const chat = { seen: new Set(), lastId: '', catchingUp: false };
  const rooms = new Map(); // name → room, see newRoom
  const outbox = { queue: [], tokens: SEND_BURST, refilledAt: 0, timer: 0 };
  let selectedRoom = '';
  let historyDisabled = false;
  let joinSeq = 0;

  // ---- Connection lifecycle ---------------------------------------------

  // connect starts a session the user asked for, replacing any current one.
  function connect(settings) {
    closeQuietly();
    markRoomsOffline();
    conn.settings = settings;
    conn.wanted = true;
    conn.attempt = 0;
    openSocket();
  }

  function openSocket() {
    clearTimeout(conn.retryTimer);
    let ws;
    try {
      ws = new WebSocket(socketURL(conn.settings));
    } catch (err) {
      fail(`Bad server URL: ${err.message}`);
      return;
    }
    const gen = ++conn.generation;
    conn.ws = ws;
    conn.establishedAt = 0;
    // Named users keep their name; anonymous users get a new id per
    // connection and ticket users learn theirs from Authenticated.
    setSelf(conn.settings.ticket ? me.ticketUser : conn.settings.user);
    setPhase('connecting', conn.attempt ? `attempt ${conn.attempt + 1}` : '');
    // Handlers check the generation: a socket we replaced or closed on
    // purpose must not touch the state of its successor.
    ws.onopen = () => gen === conn.generation && onOpen();
    ws.onmessage = (ev) => gen === conn.generation && onFrame(ev.data);
    ws.onclose = (ev) => gen === conn.generation && onClose(ev);
    // onerror carries no detail; the close event that always follows does.
  }

  function onOpen() {
    outbox.tokens = SEND_BURST; // the server's limiter is per connection
    if (!conn.settings.ticket) {
      // Open mode: the server greets every connection with Authenticated
      // once it is subscribed; resuming before that could miss messages.
      setPhase('authenticating');
      return;
    }
    // The ticket goes in the first frame rather than the URL so that it
    // does not end up in proxy and access logs.
    setPhase('authenticating');
    send('session', 'Authenticate', { token: conn.settings.ticket });
  }

  // established runs once the connection may be used: right after open in
  // open mode, after Authenticated with a ticket.
  function established() {
    conn.establishedAt = Date.now();
    conn.connects++;
    setPhase('connected');
    resumeChat();
    for (const room of [...rooms.values()]) resumeRoom(room);
  }

  function onClose(ev) {
    const wasUsable = conn.establishedAt > 0;
    const upFor = wasUsable ? Date.now() - conn.establishedAt : 0;
    conn.ws = null;
    conn.establishedAt = 0;
    dropOutbox();
    markRoomsOffline();
    const why = closeText(ev);
    if (!conn.wanted) {
      setPhase('idle', why);
      return;
    }
    // A policy close before the connection was usable means the server
    // refused who we are (bad, expired or reused ticket, no ticket, too
    // slow to authenticate): retrying the same credentials cannot succeed.
    if (ev.code === CLOSE_POLICY && !wasUsable) {
      const hint = conn.settings.ticket ? ' — paste a fresh ticket and press Connect; your rooms will be re-joined' : '';
      fail(why + hint);
      showError('session', String(ev.code), ev.reason || 'the server refused the connection');
      return;
    }
    if (upFor >= STABLE_MS) conn.attempt = 0;
    scheduleReconnect(why);
  }

  function scheduleReconnect(why) {
    // Full jitter: anywhere between 0 and the exponential ceiling, so the
    // many clients dropped by one failure do not all return at the same
    // instant and knock the recovering server over again.
    const ceiling = Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * 2 ** Math.min(conn.attempt, 16));
    const delay = Math.random() * ceiling;
    conn.attempt++;
    setPhase('waiting', `${why}; retrying in ${(delay / 1000).toFixed(1)} s`);
    conn.retryTimer = setTimeout(openSocket, delay);
  }

  // disconnect is the user's Disconnect: no reconnection. Rooms are kept
  // (offline) and re-joined if the same user connects again.
  function disconnect() {
    conn.wanted = false;
    closeQuietly();
    markRoomsOffline();
    setPhase('idle', 'disconnected');
  }

  // fail stops for good and tells the user why.
  function fail(why) {
    conn.wanted = false;
    closeQuietly();
    markRoomsOffline();
    setPhase('failed', why);
  }

  // closeQuietly closes the current socket without running its close
  // handler: the caller decides what happens next.
  function closeQuietly() {
    clearTimeout(conn.retryTimer);
    conn.generation++;
    const ws = conn.ws;
    conn.ws = null;
    conn.establishedAt = 0;
    dropOutbox();
    if (ws) ws.close(CLOSE_NORMAL, 'bye');
  }

  function isConnected() {
    return conn.phase === 'connected';
  }

  function closeText(ev) {
    const name = CLOSE_NAMES[ev.code] || 'closed';
    return `${name} (${ev.code}${ev.reason ? `: ${ev.reason}` : ''})`;
  }

  // socketURL accepts ws(s):// or http(s):// URLs, with or without the
  // /websockets path, and adds ?user= for named open-mode connections.
  function socketURL(settings) {
    const url = new URL(settings.url, location.href);
    if (url.protocol === 'http:') url.protocol = 'ws:';
    if (url.protocol === 'https:') url.protocol = 'wss:';
    if (url.pathname === '/' || url.pathname === '') url.pathname = '/websockets';
    if (settings.user && !settings.ticket) url.searchParams.set('user', settings.user);
    return url.href;
  }

  function defaultServerURL() {
    if (!location.host) return 'ws://localhost:8080/websockets';
    return `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/websockets`;
  }

  // ---- Sending ------------------------------------------------------------

  // send queues one envelope; frames leave at a paced rate (token bucket).
  // It returns false when there is no open connection.
  function send(channel, type, contents) {
    if (!conn.ws || conn.ws.readyState !== WebSocket.OPEN) return false;
    outbox.queue.push(JSON.stringify({ channel, message: { type, contents } }));
    drainOutbox();
    return true;
  }

  function drainOutbox() {
    const now = performance.now();
    outbox.tokens = Math.min(SEND_BURST, outbox.tokens + ((now - outbox.refilledAt) * SEND_PER_SECOND) / 1000);
    outbox.refilledAt = now;
    while (outbox.queue.length && outbox.tokens >= 1 && conn.ws && conn.ws.readyState === WebSocket.OPEN) {
      outbox.tokens -= 1;
      conn.ws.send(outbox.queue.shift());
    }
    if (outbox.queue.length && !outbox.timer) {
      outbox.timer = setTimeout(() => {
        outbox.timer = 0;
        drainOutbox();
      }, 1000 / SEND_PER_SECOND);
    }
  }

  // dropOutbox forgets unsent frames: a new connection re-derives what it
  // must send (joins, history) from the state.
  function dropOutbox() {
    outbox.queue.length = 0;
    clearTimeout(outbox.timer);
    outbox.timer = 0;
  }

  // ---- Receiving ------------------------------------------------------------

  const handlers = {
    'chat/NewMessageReceived': addChatMessage,
    'chat/History': onChatHistory,
    'chat-room/MemberList': onMemberList,
    'chat-room/JoinedRoom': onJoinedRoom,
    'chat-room/LeftRoom': onLeftRoom,
    'chat-room/NewMessage': (m) => {
      const room = rooms.get(m.room);
      if (room) addRoomMessage(room, m);
    },
    'chat-room/History': onRoomHistory,
    'ping/Ping': (n) => {
      $('last-ping').textContent = `ping ${n}`;
    },
    'inbox/Message': addInboxMessage,
    'session/Authenticated': onAuthenticated,
  };

  function onFrame(data) {
    let env;
    try {
      env = JSON.parse(data);
    } catch {
      showError('client', 'bad_frame', 'the server sent a frame that is not JSON');
      return;
    }
    const msg = env.message || {};
    if (msg.type === 'Error') {
      onError(env.channel, msg.contents || {});
      return;
    }
    const handle = handlers[`${env.channel}/${msg.type}`];
    // Unknown types are ignored so that a newer server can add messages.
    if (handle) handle(msg.contents);
  }

  function onAuthenticated(a) {
    if (conn.settings.ticket) {
      // Another user behind the new ticket must not inherit our rooms.
      if (me.ticketUser && me.ticketUser !== a.user) forgetConversation();
      me.ticketUser = a.user;
    }
    // Anonymous connections learn their generated user id here.
    setSelf(a.user);
    if (conn.phase === 'authenticating') established();
  }

  function onError(channel, e) {
    const code = e.code || 'unknown';
    const text = e.message || '';
    switch (code) {
      case 'already_authenticated':
        if (conn.phase === 'authenticating') {
          showNotice('This server runs in open mode: the ticket was not needed.');
          established();
          return;
        }
        break;
      case 'unauthenticated':
        showError(channel, code, text);
        fail('this server requires a ticket (POST /tokens)');
        return;
      case 'history_disabled':
        onHistoryDisabled();
        return;
      case 'forbidden':
      case 'too_many_rooms':
        // Only JoinRoom fails this way.
        if (channel === 'chat-room') failJoin(roomNamedIn(text));
        break;
      case 'unavailable':
        // The broker hiccuped; a join it refused was undone, so retry it.
        if (channel === 'chat-room') retryPendingJoins();
        break;
    }
    showError(channel, code, text);
  }

  function onHistoryDisabled() {
    if (historyDisabled) return;
    historyDisabled = true;
    chat.catchingUp = false;
    showNotice('This server keeps no history: messages sent while you are disconnected cannot be replayed.');
    for (const room of rooms.values()) {
      if (room.history === 'rejoin') showGap(room, 'This server keeps no history: messages sent while you were away are lost.');
      room.history = '';
    }
  }

  // ---- Global chat ----------------------------------------------------------

  // resumeChat fills the chat after (re)connecting. Chat needs no join —
  // every connection receives it — so what was posted while we were away
  // comes from history, after the newest message we hold.
  function resumeChat() {
    if (historyDisabled) return;
    chat.catchingUp = Boolean(chat.lastId);
    send('chat', 'GetHistory', chat.lastId ? { since: chat.lastId } : {});
  }

  function onChatHistory(h) {
    const messages = h.messages || [];
    for (const m of messages) addChatMessage(m);
    // A catch-up page cut short by the page size: fetch the next one,
    // continuing from this page (not from live messages that may be newer).
    if (chat.catchingUp && !h.complete && messages.length) {
      send('chat', 'GetHistory', { since: messages[messages.length - 1].id });
      return;
    }
    chat.catchingUp = false;
  }

  function addChatMessage(m) {
    if (!remember(chat, m.id)) return;
    const li = messageItem(m.id, m.postedAt);
    li.append(span('text', m.content));
    insertByID($('chat-messages'), li);
  }

  // ---- Rooms ------------------------------------------------------------------

  function newRoom(name) {
    const pane = $('room-template').content.firstElementChild.cloneNode(true);
    pane.dataset.room = name;
    pane.querySelector('.room-name').textContent = name;
    pane.querySelector('.room-input').placeholder = `Message ${name}…`;
    const room = {
      name,
      state: 'offline',  // offline | joining | joined | leaving
      members: new Set(),
      seen: new Set(),
      lastId: '',        // newest message id seen: where a re-join resumes
      everJoined: false,
      ackNext: false,    // our MemberList came; the next JoinedRoom is our own
      joinSeq: 0,        // order of our JoinRoom, to match refusals to it
      history: '',       // '' | recent | rejoin: why a History page is awaited
      abandon: false,    // left while joining: leave once the join completes
      unread: 0,
      pane,
      tab: roomTab(name),
    };
    pane.querySelector('.leave').addEventListener('click', () => leaveRoom(room));
    pane.querySelector('.dismiss-gap').addEventListener('click', () => hideGap(room));
    pane.querySelector('.room-send').addEventListener('submit', (ev) => {
      ev.preventDefault();
      const input = pane.querySelector('.room-input');
      const text = input.value;
      if (!text.trim() || room.state !== 'joined') return;
      if (send('chat-room', 'SendMessage', { room: name, message: text })) input.value = '';
    });
    $('room-panes').append(pane);
    $('room-tabs').append(room.tab);
    return room;
  }

  function roomTab(name) {
    const li = document.createElement('li');
    li.dataset.room = name;
    const button = document.createElement('button');
    button.type = 'button';
    button.setAttribute('role', 'tab');
    button.append(span('name', name), span('unread', ''));
    button.addEventListener('click', () => selectRoom(name));
    li.append(button);
    return li;
  }

  // joinRoom is the user's Join: it opens the room's tab and joins now, or
  // as soon as the connection is up.
  function joinRoom(name) {
    let room = rooms.get(name);
    if (!room) {
      room = newRoom(name);
      rooms.set(name, room);
    }
    room.abandon = false;
    selectRoom(name);
    if (room.state === 'offline' && isConnected()) sendJoin(room);
    renderRoom(room);
  }

  function sendJoin(room) {
    const contents = { room: room.name };
    room.history = '';
    if (room.lastId) {
      // Resume after the newest message we hold: the server replays what
      // we missed, before any live message, without duplicates.
      contents.since = room.lastId;
    } else if (room.everJoined) {
      // Nothing to resume from (the room was empty): look at recent
      // history instead, which covers anything posted while we were away.
      if (historyDisabled) showGap(room, 'This server keeps no history: messages sent while you were away are lost.');
      else room.history = 'rejoin';
    } else if (!historyDisabled) {
      room.history = 'recent'; // first visit: show some context
    }
    room.state = 'joining';
    room.ackNext = false;
    room.joinSeq = ++joinSeq;
    send('chat-room', 'JoinRoom', contents);
    renderRoom(room);
  }

  // resumeRoom brings a room back after a new connection: the server
  // forgot our membership when the old connection ended.
  function resumeRoom(room) {
    if (room.state === 'leaving' || room.abandon) removeRoom(room);
    else sendJoin(room);
  }

  function onMemberList(list) {
    const room = rooms.get(list.room);
    if (!room) return;
    room.members = new Set(list.users);
    // The server sends the joiner its MemberList and then its own
    // JoinedRoom, holding the room's broadcasts until both are out: the
    // next JoinedRoom for this room is our acknowledgement.
    if (room.state === 'joining') room.ackNext = true;
    renderMembers(room);
  }

  function onJoinedRoom(j) {
    const room = rooms.get(j.room);
    if (!room) return;
    const mine = !me.user || j.user === me.user;
    if (room.state === 'joining' && room.ackNext && mine) {
      onJoinAcknowledged(room, j);
      return;
    }
    if (j.user === me.user) return; // a repeated acknowledgement
    room.members.add(j.user);
    renderMembers(room);
    addSystemLine(room, `${j.user} joined`);
  }

  function onJoinAcknowledged(room, j) {
    room.ackNext = false;
    room.state = 'joined';
    room.everJoined = true;
    if (!me.user) setSelf(j.user); // anonymous: the server named us
    // recovered is only present when we asked to resume; false means the
    // server no longer holds everything after our since.
    if (j.recovered === false) showGap(room);
    if (room.abandon) {
      leaveRoom(room);
      return;
    }
    if (room.history) send('chat-room', 'GetHistory', { room: room.name });
    renderRoom(room);
  }

  function onRoomHistory(h) {
    const room = rooms.get(h.room);
    if (!room) return;
    for (const m of h.messages || []) addRoomMessage(room, m);
    // After a re-join without a resume point, a page cut short may not
    // reach back to when we left.
    if (room.history === 'rejoin' && !h.complete) showGap(room);
    room.history = '';
  }

  function onLeftRoom(l) {
    const room = rooms.get(l.room);
    if (!room) return;
    if (room.state === 'leaving' && l.user === me.user) {
      removeRoom(room);
      return;
    }
    room.members.delete(l.user);
    renderMembers(room);
    addSystemLine(room, `${l.user} left`);
  }

  // leaveRoom is the user's Leave.
  function leaveRoom(room) {
    if (room.state === 'joined' && isConnected()) {
      room.state = 'leaving';
      send('chat-room', 'LeaveRoom', { room: room.name });
      renderRoom(room);
    } else if (room.state === 'joining' && isConnected()) {
      room.abandon = true; // LeaveRoom now could overtake a failing join
      renderRoom(room);
    } else {
      removeRoom(room); // offline: the server already forgot us
    }
  }

  // failJoin drops the room a refused JoinRoom was for: the one named in
  // the error, else our oldest join still unanswered.
  function failJoin(name) {
    let room = name && rooms.get(name);
    if (!room || room.state !== 'joining') {
      room = [...rooms.values()]
        .filter((r) => r.state === 'joining' && !r.ackNext)
        .sort((a, b) => a.joinSeq - b.joinSeq)[0];
    }
    if (room) removeRoom(room);
  }

  // roomNamedIn extracts the quoted room name from an error message such
  // as: your ticket does not allow room "#haskell".
  function roomNamedIn(text) {
    const m = /room "((?:[^"\\]|\\.)*)"/.exec(text);
    if (!m) return '';
    try {
      return JSON.parse(`"${m[1]}"`);
    } catch {
      return '';
    }
  }

  function retryPendingJoins() {
    const gen = conn.generation;
    const pending = [...rooms.values()].filter((r) => r.state === 'joining' && !r.ackNext);
    if (!pending.length) return;
    // Jittered, like reconnects, so a broker outage is not hammered.
    setTimeout(() => {
      if (gen !== conn.generation || !isConnected()) return;
      for (const room of pending) if (room.state === 'joining' && !room.ackNext) sendJoin(room);
    }, 1000 + Math.random() * 3000);
  }

  function markRoomsOffline() {
    for (const room of [...rooms.values()]) {
      if (room.state === 'leaving' || room.abandon) {
        removeRoom(room);
        continue;
      }
      room.state = 'offline';
      room.ackNext = false;
      renderRoom(room);
    }
  }

  function removeRoom(room) {
    rooms.delete(room.name);
    room.pane.remove();
    room.tab.remove();
    if (selectedRoom === room.name) selectRoom(rooms.size ? [...rooms.keys()][0] : '');
    $('no-rooms').hidden = rooms.size > 0;
  }

  function addRoomMessage(room, m) {
    if (!remember(room, m.id)) return;
    const li = messageItem(m.id, m.postedAt);
    li.dataset.user = m.user;
    if (m.user === me.user) li.classList.add('mine');
    li.append(span('user', m.user), span('text', m.message));
    insertByID(room.pane.querySelector('.room-messages'), li);
    if (room.name !== selectedRoom) {
      room.unread++;
      room.tab.querySelector('.unread').textContent = String(room.unread);
    }
  }

  function addSystemLine(room, text) {
    const li = document.createElement('li');
    li.className = 'system';
    li.append(span('time', clock(new Date())), span('text', text));
    appendBounded(room.pane.querySelector('.room-messages'), li);
  }

  function showGap(room, text) {
    const notice = room.pane.querySelector('.gap-notice');
    if (text) notice.querySelector('.gap-text').textContent = text;
    notice.hidden = false;
    room.pane.dataset.gap = 'true';
    room.tab.dataset.gap = 'true';
  }

  function hideGap(room) {
    room.pane.querySelector('.gap-notice').hidden = true;
    delete room.pane.dataset.gap;
    delete room.tab.dataset.gap;
  }

  function selectRoom(name) {
    selectedRoom = name;
    for (const room of rooms.values()) {
      const on = room.name === name;
      room.pane.hidden = !on;
      room.tab.querySelector('button').setAttribute('aria-selected', String(on));
      if (on) {
        room.unread = 0;
        room.tab.querySelector('.unread').textContent = '';
      }
    }
    $('no-rooms').hidden = rooms.size > 0;
  }

  // forgetConversation drops everything tied to one identity and server.
  function forgetConversation() {
    for (const room of [...rooms.values()]) removeRoom(room);
    chat.seen.clear();
    chat.lastId = '';
    chat.catchingUp = false;
    $('chat-messages').replaceChildren();
    historyDisabled = false;
    me.ticketUser = '';
  }

  // ---- Inbox and errors ---------------------------------------------------

  function addInboxMessage(m) {
    const li = messageItem('', m.postedAt);
    if (m.type) li.append(span('kind', m.type));
    li.append(span('text', m.content));
    appendBounded($('inbox-messages'), li);
  }

  function showError(channel, code, text) {
    const li = document.createElement('li');
    li.dataset.code = code;
    li.dataset.channel = channel || '';
    li.append(span('code', code), span('message', text), span('where', `${channel || 'error'} · ${clock(new Date())}`));
    prependBounded($('errors'), li);
  }

  function showNotice(text) {
    const li = document.createElement('li');
    li.className = 'info';
    li.dataset.code = 'notice';
    li.append(span('message', text), span('where', clock(new Date())));
    prependBounded($('errors'), li);
  }

  // ---- Rendering helpers ----------------------------------------------------

  function setPhase(phase, detail = '') {
    conn.phase = phase;
    const labels = {
      idle: 'Not connected', connecting: 'Connecting…', authenticating: 'Authenticating…',
      connected: 'Connected', waiting: 'Reconnecting…', failed: 'Connection failed',
    };
    const status = $('status');
    status.dataset.state = phase;
    status.dataset.connects = String(conn.connects);
    $('status-text').textContent = labels[phase];
    $('status-detail').textContent = detail;
    $('disconnect').disabled = !conn.wanted;
    $('chat-input').disabled = $('chat-send').disabled = phase !== 'connected';
    for (const room of rooms.values()) renderRoom(room);
  }

  function setSelf(user) {
    me.user = user || '';
    $('self').dataset.user = me.user;
    $('self').textContent = me.user ? `You are ${me.user}` : '';
    for (const room of rooms.values()) renderMembers(room);
  }

  function renderRoom(room) {
    const labels = { offline: 'offline', joining: 'joining…', joined: 'joined', leaving: 'leaving…' };
    const state = room.abandon ? 'leaving' : room.state;
    room.pane.dataset.state = state;
    room.tab.dataset.state = state;
    room.pane.querySelector('.room-state').textContent = labels[state];
    const usable = state === 'joined' && isConnected();
    room.pane.querySelector('.room-input').disabled = !usable;
    room.pane.querySelector('.room-send-button').disabled = !usable;
    $('no-rooms').hidden = rooms.size > 0;
  }

  function renderMembers(room) {
    const list = room.pane.querySelector('.members');
    const items = [...room.members].sort().map((user) => {
      const li = document.createElement('li');
      li.dataset.user = user;
      li.textContent = user;
      if (user === me.user) li.classList.add('me');
      return li;
    });
    list.replaceChildren(...items);
    room.pane.querySelector('.member-count').textContent = `(${room.members.size})`;
  }

  function messageItem(id, postedAt) {
    const li = document.createElement('li');
    li.className = 'msg';
    if (id) li.dataset.id = id;
    const at = postedAt ? new Date(postedAt) : new Date();
    const time = span('time', clock(at));
    time.title = postedAt || '';
    li.append(time);
    return li;
  }

  function span(className, text) {
    const s = document.createElement('span');
    s.className = className;
    s.textContent = text;
    return s;
  }

  function clock(d) {
    return Number.isNaN(d.getTime()) ? '' : d.toLocaleTimeString();
  }

  // remember records a message id and reports whether it is new. The
  // server never repeats one, but dropping duplicates here keeps the view
  // right even if a replay and a live delivery ever overlapped.
  function remember(holder, id) {
    if (!id) return true; // history off: ids are absent, nothing to compare
    if (holder.seen.has(id)) return false;
    holder.seen.add(id);
    if (!holder.lastId || compareIDs(id, holder.lastId) > 0) holder.lastId = id;
    return true;
  }

  // compareIDs orders "<milliseconds>-<sequence>" message ids.
  function compareIDs(a, b) {
    const [am, as] = a.split('-').map(Number);
    const [bm, bs] = b.split('-').map(Number);
    return am - bm || as - bs;
  }

  // insertByID keeps a list in message-id order: history pages and live
  // messages can arrive interleaved. Most messages are the newest, so the
  // scan from the end usually stops at once. Lines without an id (system
  // lines, messages from a server without history) stay where they are.
  function insertByID(list, li) {
    const stick = nearBottom(list);
    const id = li.dataset.id;
    let before = null; // null: append
    for (let cur = list.lastElementChild; id && cur; cur = cur.previousElementSibling) {
      if (!cur.dataset.id) continue;
      if (compareIDs(cur.dataset.id, id) < 0) break;
      before = cur;
    }
    list.insertBefore(li, before);
    trim(list);
    if (stick) list.scrollTop = list.scrollHeight;
  }

  function appendBounded(list, li) {
    const stick = nearBottom(list);
    list.append(li);
    trim(list);
    if (stick) list.scrollTop = list.scrollHeight;
  }

  function prependBounded(list, li) {
    list.prepend(li);
    while (list.children.length > MAX_ERRORS) list.lastElementChild.remove();
  }

  function trim(list) {
    while (list.children.length > MAX_LIST_ITEMS) list.firstElementChild.remove();
  }

  // nearBottom: follow new messages only if the reader was already at the
  // end, not while they scroll back.
  function nearBottom(list) {
    return list.scrollHeight - list.scrollTop - list.clientHeight < 40;
  }

  // ---- Forms ------------------------------------------------------------------

  function readSettings() {
    const url = $('server-url').value.trim();
    const user = $('user-name').value.trim();
    const ticket = $('ticket').value.trim();
    if (user && ([...user].length > 64 || /\p{Cc}/u.test(user))) {
      showError('client', 'invalid_user', 'user names are 1 to 64 characters without control characters');
      return null;
    }
    return { url, user, ticket };
  }

  function wireForms() {
    $('server-url').value = defaultServerURL();
    $('connect-form').addEventListener('submit', (ev) => {
      ev.preventDefault();
      const settings = readSettings();
      if (!settings) return;
      const old = conn.settings;
      // A different server or user must not inherit the rooms and chat.
      if (old && (old.url !== settings.url || old.user !== settings.user || !old.ticket !== !settings.ticket)) {
        forgetConversation();
      }
      connect(settings);
    });
    $('disconnect').addEventListener('click', disconnect);
    $('chat-form').addEventListener('submit', (ev) => {
      ev.preventDefault();
      const input = $('chat-input');
      if (!input.value.trim()) return;
      if (send('chat', 'SubmitMessage', input.value)) input.value = '';
    });
    $('join-form').addEventListener('submit', (ev) => {
      ev.preventDefault();
      const input = $('join-room-input');
      const name = input.value.trim();
      if (!name) return;
      joinRoom(name);
      input.value = '';
    });
    $('clear-errors').addEventListener('click', () => $('errors').replaceChildren());
  }

  wireForms();
  setPhase('idle');
})();
