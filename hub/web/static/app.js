// The hub's page: sign in with an API token (kept in this tab's
// sessionStorage), the boxes' state and the lessons from the JSON API, kept
// up to date by the hub's event stream (polled only when the stream cannot
// be opened), remote start and stop, live view over WHEP, the lessons'
// playback.
'use strict';

const TOKEN_KEY = 'classcap.token';
const POLL_MS = 2000; // while the event stream cannot be opened
const RETRY_MS = [1000, 30000]; // the stream is opened again after this, doubling

const $ = (id) => document.getElementById(id);
let token = sessionStorage.getItem(TOKEN_KEY) || '';
let live = null; // { device, session }
const devices = new Map(); // id -> device, as the list and the events tell it
const lessons = new Map(); // id -> lesson
const busy = new Set(); // devices with a command under way

// call sends an API request with the token; it resolves to
// { ok, status, data } and never rejects (a network error is status 0).
async function call(method, path, body) {
  const init = { method, headers: { 'Authorization': 'Bearer ' + token } };
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  try {
    const resp = await fetch(path, init);
    let data = null;
    try { data = await resp.json(); } catch (_) { /* no JSON body */ }
    return { ok: resp.ok, status: resp.status, data: data || {} };
  } catch (e) {
    return { ok: false, status: 0, data: { error: 'the hub does not answer: ' + e.message } };
  }
}

function text(el, s, cls) {
  el.textContent = s;
  el.className = cls || '';
}

function cell(tr, content, cls) {
  const td = document.createElement('td');
  if (content instanceof Node) td.appendChild(content); else td.textContent = content;
  if (cls) td.className = cls;
  tr.appendChild(td);
  return td;
}

function button(label, action, id, onClick) {
  const b = document.createElement('button');
  b.type = 'button';
  b.textContent = label;
  b.dataset.action = action;
  b.setAttribute('aria-label', label + ' ' + id);
  b.addEventListener('click', onClick);
  return b;
}

// --- sign in ---

async function signIn(t) {
  token = t;
  const r = await call('GET', '/api/v1/whoami');
  if (!r.ok) {
    token = '';
    sessionStorage.removeItem(TOKEN_KEY);
    return r.data.error || ('HTTP ' + r.status);
  }
  sessionStorage.setItem(TOKEN_KEY, t);
  text($('whoami-text'), 'Signed in as ' + r.data.name + ' (' + r.data.role + ')');
  $('whoami').hidden = false;
  $('signin').hidden = true;
  $('app').hidden = false;
  await refresh();
  openEvents();
  return '';
}

function signOut() {
  token = '';
  sessionStorage.removeItem(TOKEN_KEY);
  closeEvents();
  stopPolling();
  devices.clear();
  lessons.clear();
  endLive();
  $('player').removeAttribute('src');
  $('player').load();
  $('app').hidden = true;
  $('whoami').hidden = true;
  $('signin').hidden = false;
  $('token').value = '';
  $('token').focus();
}

$('signin-form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  text($('signin-error'), '');
  const err = await signIn($('token').value.trim());
  if (err) text($('signin-error'), 'Not signed in: ' + err, 'error');
});
$('signout').addEventListener('click', signOut);

// --- boxes ---

function mb(n) { return n >= 1024 ? (n / 1024).toFixed(1) + ' GB' : n + ' MB'; }

function health(st) {
  const out = { camera: ['-'], mics: ['-'], disk: ['-'], clock: ['-'], backlog: ['-'] };
  if (!st || !st.online) return out;
  if (st.camera) out.camera = st.camera.ok ? ['ok', 'ok'] : ['fault: ' + (st.camera.fault || 'no pictures'), 'bad'];
  if (st.microphone) {
    const m = st.microphone;
    if (!m.ok) out.mics = ['fault: ' + (m.fault || 'no sound'), 'bad'];
    else if (m.dead && m.dead.length) out.mics = ['dead channel ' + m.dead.join(', '), 'warn'];
    else {
      const peak = Math.max(...(m.levels || []).map((l) => l.peak_dbfs));
      out.mics = ['ok' + (isFinite(peak) ? ', peak ' + peak.toFixed(0) + ' dBFS' : ''), 'ok'];
    }
  }
  if (st.disk) {
    const low = st.disk.free_mb < 1024;
    out.disk = [mb(st.disk.free_mb) + ' free of ' + mb(st.disk.total_mb), low ? 'warn' : 'ok'];
  }
  if (st.clock) out.clock = st.clock.synced ? ['synced' + (st.clock.source ? ' (' + st.clock.source + ')' : ''), 'ok'] : ['not synced', 'warn'];
  if (st.upload) {
    const u = st.upload;
    out.backlog = [u.backlog_segments + ' segments, ' + (u.backlog_bytes / 1e6).toFixed(1) + ' MB',
      u.backlog_segments > 0 ? 'warn' : 'ok'];
  }
  return out;
}

// syncRows makes tbody's rows those of items, in order, one row per key:
// a row whose key is still listed is kept and updated in place (make builds
// a new one, update fills it in), rows whose key is gone are removed. The
// rows change whenever a box reports; a button a person is about to click
// is not replaced under the pointer, and keeps its focus.
function syncRows(tbody, items, keyAttr, keyOf, make, update) {
  const keys = new Set(items.map(keyOf));
  const rows = new Map();
  for (const tr of [...tbody.rows]) {
    const key = tr.dataset[keyAttr];
    if (keys.has(key) && !rows.has(key)) rows.set(key, tr); else tr.remove();
  }
  let at = tbody.firstElementChild; // where the next item's row belongs
  for (const item of items) {
    const key = keyOf(item);
    let tr = rows.get(key);
    if (!tr) {
      tr = make(item);
      tr.dataset[keyAttr] = key;
      rows.set(key, tr);
    }
    update(tr, item);
    if (tr === at) at = at.nextElementSibling;
    else tbody.insertBefore(tr, at); // new, or moved up (a row is moved only when the order changed)
  }
}

// field sets the text and class of the row's cell for field.
function field(tr, name, s, cls) {
  text(tr.querySelector(`[data-field="${name}"]`), s, cls);
}

const healthFields = ['camera', 'mics', 'disk', 'clock', 'backlog'];

function makeDeviceRow(d) {
  const tr = document.createElement('tr');
  const th = document.createElement('th');
  th.scope = 'row';
  th.textContent = d.id;
  tr.appendChild(th);
  for (const k of ['online', 'recorder', 'lesson', ...healthFields]) cell(tr, '').dataset.field = k;
  const actions = document.createElement('div');
  actions.append(
    button('Start recording', 'start', d.id, () => record(d.id, 'start')),
    button('Stop recording', 'stop', d.id, () => record(d.id, 'stop')),
    button('Watch live', 'live', d.id, () => startLive(d.id)));
  cell(tr, actions);
  return tr;
}

function updateDeviceRow(tr, d) {
  const st = d.state || {};
  tr.dataset.online = d.online ? 'yes' : 'no';
  tr.dataset.recorder = d.recorder || '';
  field(tr, 'online', d.online ? 'yes' : 'no', d.online ? 'ok' : 'bad');
  let rec = d.recorder || '-';
  const rs = st.recorder && st.recorder.remote_start;
  if (rs) rec = 'starting in ' + rs.veto_left_s.toFixed(0) + ' s (the teacher may decline)';
  if (st.live && st.live.vetoed) rec += '; live view refused by the teacher';
  field(tr, 'recorder', rec, d.recorder === 'recording' ? 'rec' : '');
  field(tr, 'lesson', d.lesson || '-');
  const h = health(st);
  for (const k of healthFields) field(tr, k, h[k][0], h[k][1]);
  if (live && live.device === d.id) followLive(st);
  const btn = (action) => tr.querySelector(`button[data-action="${action}"]`);
  btn('start').disabled = !d.online || busy.has(d.id) || d.recorder === 'recording';
  btn('stop').disabled = !d.online || busy.has(d.id) || d.recorder !== 'recording';
  btn('live').disabled = !d.online || !!(live && live.device === d.id);
}

function byID(a, b) { return a.id < b.id ? -1 : a.id > b.id ? 1 : 0; }

function renderDevices() {
  syncRows($('devices').tBodies[0], [...devices.values()].sort(byID), 'device', (d) => d.id, makeDeviceRow, updateDeviceRow);
}

// applyDevice shows what an event says of one box: its row alone is
// updated, in place; a new box is put in its place.
function applyDevice(d) {
  const known = devices.has(d.id);
  devices.set(d.id, d);
  const tr = known && $('devices').tBodies[0].querySelector(`tr[data-device="${CSS.escape(d.id)}"]`);
  if (tr) updateDeviceRow(tr, d); else renderDevices();
}

async function record(id, verb) {
  // The row's start and stop are off at once, not at the next refresh, so a
  // second click does not send the command twice.
  busy.add(id);
  const tr = $('devices').tBodies[0].querySelector(`tr[data-device="${CSS.escape(id)}"]`);
  if (tr) for (const b of tr.querySelectorAll('button[data-action="start"], button[data-action="stop"]')) b.disabled = true;
  const msg = $('device-msg');
  text(msg, verb === 'start' ?
    'Asking ' + id + ' to start recording (the teacher sees it and may decline)…' :
    'Asking ' + id + ' to stop recording…');
  refreshDevices();
  const body = verb === 'start' ? { visibility: $('visibility').value } : {};
  const r = await call('POST', '/api/v1/devices/' + encodeURIComponent(id) + '/record/' + verb, body);
  busy.delete(id);
  if (r.ok) {
    const res = r.data.result || {};
    if (verb === 'start') text(msg, id + ' is recording lesson ' + res.lesson + '.', 'ok');
    else text(msg, id + ' stopped lesson ' + res.lesson + ' (' + (res.seconds || 0).toFixed(0) + ' s, ' + res.segments + ' segments).', 'ok');
  } else {
    const who = r.data.from_box ? id + ' answered: ' : 'Not done: ';
    text(msg, who + (r.data.error || ('HTTP ' + r.status)), 'error');
  }
  refresh();
}

function tokenRefused() {
  signOut();
  text($('signin-error'), 'Signed out: the hub no longer accepts the token.', 'error');
}

// updated says when the page last heard from the hub, and how it hears.
function updated() {
  const how = streamOpen ? 'live' : 'every ' + POLL_MS / 1000 + ' s';
  text($('refreshed'), 'Updated ' + new Date().toLocaleTimeString() + ' (' + how + ')', 'help');
}

async function refreshDevices() {
  const app = $('app');
  app.dataset.deviceFetches = (+app.dataset.deviceFetches || 0) + 1;
  const r = await call('GET', '/api/v1/devices?state=1');
  if (r.status === 401) { tokenRefused(); return false; }
  if (!r.ok) { text($('refreshed'), 'Cannot refresh: ' + (r.data.error || r.status), 'error'); return true; }
  const ds = r.data.devices || [];
  devices.clear();
  for (const d of ds) devices.set(d.id, d);
  renderDevices();
  if (!ds.length) text($('device-msg'), 'No boxes are registered yet (classcap-hub device add).');
  updated();
  return true;
}

// --- lessons ---

function makeLessonRow(l) {
  const tr = document.createElement('tr');
  cell(tr, l.device);
  const th = document.createElement('th');
  th.scope = 'row';
  th.textContent = l.id;
  tr.appendChild(th);
  for (const k of ['started', 'length', 'visibility', 'started-by', 'upload', 'watch']) cell(tr, '').dataset.field = k;
  return tr;
}

function updateLessonRow(tr, l) {
  field(tr, 'started', l.started_at ? new Date(l.started_at).toLocaleString() : '-');
  field(tr, 'length', l.recording ? 'recording' : (l.seconds ? l.seconds.toFixed(0) + ' s' : '-'));
  field(tr, 'visibility', l.visibility || '-');
  field(tr, 'started-by', l.started_by || '-');
  field(tr, 'upload', l.upload ? l.upload.state + ' (' + l.upload.files + ' files)' : 'not yet');
  const watch = tr.querySelector('[data-field="watch"]');
  const shown = l.visibility === 'coaching' || l.visibility === 'library';
  if (l.upload && l.upload.state === 'complete' && shown) {
    if (!watch.querySelector('button')) watch.replaceChildren(button('Play', 'play', l.id, () => play(l.id)));
  } else {
    text(watch, l.visibility === 'private' ? 'private' : '-');
  }
}

function renderLessons() {
  const ls = [...lessons.values()];
  ls.sort((a, b) => (b.started_at || b.updated_at || '').localeCompare(a.started_at || a.updated_at || ''));
  syncRows($('lessons').tBodies[0], ls, 'lesson', (l) => l.id, makeLessonRow, updateLessonRow);
  text($('lessons-msg'), ls.length ? '' : 'No lessons yet.');
}

// applyLesson shows what an event says of one lesson: its row alone is
// updated while its place in the list (by its start) stays; otherwise the
// list is put in order again.
function applyLesson(l) {
  const was = lessons.get(l.id);
  lessons.set(l.id, l);
  const tr = was && l.started_at && was.started_at === l.started_at &&
    $('lessons').tBodies[0].querySelector(`tr[data-lesson="${CSS.escape(l.id)}"]`);
  if (tr) updateLessonRow(tr, l); else renderLessons();
}

async function refreshLessons() {
  const r = await call('GET', '/api/v1/lessons');
  if (!r.ok) { text($('lessons-msg'), 'Cannot list lessons: ' + (r.data.error || r.status), 'error'); return; }
  lessons.clear();
  for (const l of r.data.lessons || []) lessons.set(l.id, l);
  renderLessons();
}

// --- playback ---
// A <video> cannot send the token: the API mints a media URL for the
// lesson (one MP4 with a signed ticket, valid an hour); when it runs out
// mid-play, a new one is asked for and playback resumes where it was.

let playing = null; // { id, retried }

async function mediaURL(id) {
  const r = await call('POST', '/api/v1/lessons/' + encodeURIComponent(id) + '/media');
  if (!r.ok) throw new Error(r.data.error || ('HTTP ' + r.status));
  return r.data.url;
}

async function play(id, at) {
  const v = $('player');
  $('player-section').hidden = false;
  text($('player-msg'), 'Loading lesson ' + id + '…');
  let url;
  try { url = await mediaURL(id); } catch (e) { text($('player-msg'), 'Cannot play ' + id + ': ' + e.message, 'error'); return; }
  playing = { id, retried: at !== undefined };
  v.dataset.lesson = id;
  v.src = url;
  if (at) v.currentTime = at;
  try {
    await v.play();
    text($('player-msg'), 'Playing lesson ' + id + '.');
  } catch (e) {
    if (e.name === 'NotAllowedError') text($('player-msg'), 'Lesson ' + id + ' is ready: press play.');
  }
}

$('player').addEventListener('playing', () => { if (playing) playing.retried = false; });
$('player').addEventListener('error', () => {
  const v = $('player');
  if (!playing || !v.getAttribute('src')) return;
  const err = v.error ? 'media error ' + v.error.code + (v.error.message ? ': ' + v.error.message : '') : 'media error';
  if (!playing.retried) { play(playing.id, v.currentTime); return; } // the URL may have run out
  text($('player-msg'), 'Cannot play lesson ' + playing.id + ' (' + err + ').', 'error');
});

// --- live view ---
// The view ends when the viewer closes it, when the connection fails, or
// when the box ends it (the teacher held the button, consent withdrawn):
// the box's state lists its viewers, so a view the state listed and no
// longer lists has ended, seconds before ICE would notice.

function followLive(st) {
  const session = live.session.id();
  if (!session || !st.live) return;
  const listed = (st.live.viewers || []).some((v) => v.session === session);
  if (listed) { live.listed = true; return; }
  if (!live.listed) return; // the state may predate the view
  const s = live.session;
  const why = st.live.vetoed ? 'the teacher held the button' : 'the box ended it';
  s.ended(why);
  s.close();
}

function endLive() {
  if (!live) return;
  const s = live.session;
  live = null;
  s.close();
  $('live-video').srcObject = null;
}

// liveICE asks the hub for the STUN and TURN servers of its [live]
// configuration, as an RTCPeerConnection configuration; none when the hub
// does not answer (the view may still connect on the district network).
async function liveICE() {
  const r = await call('GET', '/api/v1/live/ice');
  if (!r.ok || !Array.isArray(r.data.ice_servers)) return {};
  const cfg = {
    iceServers: r.data.ice_servers.map((s) => {
      const o = { urls: s.urls };
      if (s.username) o.username = s.username;
      if (s.credential) o.credential = s.credential;
      return o;
    }),
  };
  if (r.data.ice_transport_policy === 'relay') cfg.iceTransportPolicy = 'relay';
  return cfg;
}

async function startLive(id) {
  endLive();
  const v = $('live-video');
  $('live').hidden = false;
  text($('live-title'), 'Live: ' + id);
  text($('live-msg'), 'Connecting to ' + id + '…');
  v.dataset.device = id;
  v.dataset.state = 'connecting';
  const ice = await liveICE();
  const session = new WHEPSession('/live/' + encodeURIComponent(id) + '/whep', token, (state, why) => {
    if (!live || live.session !== session) return;
    v.dataset.state = state;
    if (state === 'connected') text($('live-msg'), 'Watching ' + id + ' live. The box shows the teacher that you watch.', 'ok');
    else if (state === 'disconnected') text($('live-msg'), 'The live view of ' + id + ' is interrupted…', 'warn');
    else if (state === 'ended') {
      text($('live-msg'), 'The live view of ' + id + ' ended (' + why + ').', 'warn');
      live = null;
      refreshDevices();
    }
  }, ice);
  live = { device: id, session };
  refreshDevices();
  try {
    await session.start();
    v.srcObject = session.stream;
    v.play().catch(() => {});
  } catch (e) {
    if (live && live.session === session) live = null;
    v.dataset.state = 'refused';
    text($('live-msg'), 'No live view of ' + id + ': ' + e.message, 'error');
    refreshDevices();
  }
}

$('live-close').addEventListener('click', () => {
  if (!live) return;
  const id = live.device;
  endLive();
  $('live-video').dataset.state = 'ended';
  text($('live-msg'), 'You ended the live view of ' + id + '.');
  refreshDevices();
});
$('live-unmute').addEventListener('click', () => {
  const v = $('live-video');
  v.muted = !v.muted;
  $('live-unmute').textContent = v.muted ? 'Sound on' : 'Sound off';
});
window.addEventListener('pagehide', endLive);

// --- updates ---
// The hub's event stream (GET /api/v1/events, opened with a short-lived
// ticket: an EventSource cannot send the token) tells each change of a box
// or a lesson this token may see; the page applies it to its lists. When
// the stream opens, and when the hub says it dropped changes (resync), the
// lists are fetched whole. A stream that breaks is opened again after a
// wait that doubles (RETRY_MS; back to the shortest once a stream lasted
// a while); while it cannot be opened, the lists are polled every POLL_MS.
// #app's data-events says which: open (the lists fetched since it
// opened), polling, reconnecting.

let events = null; // the EventSource
let streamOpen = false;
let retryMS = 0;
let retryTimer = null;
let openedAt = 0;
let polling = 0; // the running poll loop's generation; 0: none

// refresh fetches both lists once.
async function refresh() {
  if (!token) return;
  if (await refreshDevices()) await refreshLessons();
}

function startPolling() {
  if (polling) return;
  const gen = polling = Date.now();
  (async () => {
    while (polling === gen && token && !streamOpen) {
      await refresh();
      await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    }
    if (polling === gen) polling = 0;
  })();
}

function stopPolling() { polling = 0; }

function closeEvents() {
  clearTimeout(retryTimer);
  if (events) events.close();
  events = null;
  streamOpen = false;
}

function streamState(s) { $('app').dataset.events = s; }

async function openEvents() {
  closeEvents();
  const r = await call('POST', '/api/v1/events/ticket');
  if (!token || events) return;
  if (r.status === 401) { tokenRefused(); return; }
  if (!r.ok || !r.data.url) { streamFailed(false); return; }
  const es = new EventSource(r.data.url);
  events = es;
  let opened = false;
  const on = (name, f) => es.addEventListener(name, (ev) => { if (events === es) f(ev); });
  on('open', () => {
    opened = true;
    streamOpen = true;
    openedAt = Date.now();
    stopPolling();
    $('app').dataset.streamOpens = (+$('app').dataset.streamOpens || 0) + 1;
    // What changed before the stream opened.
    refresh().then(() => { if (events === es) streamState('open'); });
  });
  on('device', (ev) => {
    applyDevice(JSON.parse(ev.data));
    $('app').dataset.deviceEvents = (+$('app').dataset.deviceEvents || 0) + 1;
    updated();
  });
  on('lesson', (ev) => { applyLesson(JSON.parse(ev.data)); updated(); });
  on('lesson-removed', (ev) => { lessons.delete(JSON.parse(ev.data).id); renderLessons(); });
  on('resync', () => refresh());
  on('error', () => {
    // The browser would retry on its own with the same URL, whose ticket
    // has run out: the page asks for a new one instead.
    es.close();
    events = null;
    streamOpen = false;
    streamFailed(opened);
  });
}

// streamFailed opens the stream again after a wait; the lists are polled
// meanwhile unless the stream was open until now.
function streamFailed(wasOpen) {
  if (!token) return;
  if (wasOpen && Date.now() - openedAt > RETRY_MS[1]) retryMS = 0;
  retryMS = Math.min(retryMS ? retryMS * 2 : RETRY_MS[0], RETRY_MS[1]);
  if (wasOpen) {
    streamState('reconnecting');
  } else {
    streamState('polling');
    startPolling();
  }
  clearTimeout(retryTimer);
  retryTimer = setTimeout(openEvents, retryMS * (0.75 + Math.random() / 2));
}

if (token) {
  signIn(token).then((err) => { if (err) text($('signin-error'), 'Not signed in: ' + err, 'error'); });
} else {
  $('token').focus();
}
