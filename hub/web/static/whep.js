// A WHEP client (the IETF WebRTC-HTTP egress protocol): it works with any
// WHEP server. One offer with recvonly video and audio, sent once ICE
// gathering is complete (no trickle), the answer set from the 201; DELETE
// on the session's Location ends the view.
'use strict';

class WHEPSession {
  // endpoint: the WHEP URL; token: sent as a bearer token (may be empty);
  // onState(state): the peer connection's state, and 'ended' once;
  // ice: { iceServers, iceTransportPolicy } for the RTCPeerConnection (the
  // STUN and TURN servers to gather through; may be omitted).
  constructor(endpoint, token, onState, ice) {
    this.endpoint = new URL(endpoint, document.baseURI).href;
    this.token = token;
    this.onState = onState || (() => {});
    this.ice = ice || {};
    this.pc = null;
    this.location = null;
    this.stream = new MediaStream();
    this.closed = false;
  }

  headers(extra) {
    const h = Object.assign({}, extra);
    if (this.token) h['Authorization'] = 'Bearer ' + this.token;
    return h;
  }

  // start negotiates the view; it resolves once the answer is set and
  // rejects with an Error whose message is the server's reason.
  async start(gatherTimeoutMs = 5000) {
    const pc = new RTCPeerConnection(Object.assign({ bundlePolicy: 'max-bundle' }, this.ice));
    this.pc = pc;
    pc.addTransceiver('video', { direction: 'recvonly' });
    pc.addTransceiver('audio', { direction: 'recvonly' });
    pc.ontrack = (ev) => this.stream.addTrack(ev.track);
    pc.onconnectionstatechange = () => {
      const s = pc.connectionState;
      this.onState(s);
      if (s === 'failed' || s === 'closed') this.ended('connection ' + s);
    };
    await pc.setLocalDescription(await pc.createOffer());
    await new Promise((resolve) => {
      if (pc.iceGatheringState === 'complete') return resolve();
      const t = setTimeout(resolve, gatherTimeoutMs); // send what was gathered
      pc.addEventListener('icegatheringstatechange', () => {
        if (pc.iceGatheringState === 'complete') { clearTimeout(t); resolve(); }
      });
    });
    let resp;
    try {
      resp = await fetch(this.endpoint, {
        method: 'POST',
        headers: this.headers({ 'Content-Type': 'application/sdp', 'Accept': 'application/sdp' }),
        body: pc.localDescription.sdp,
      });
    } catch (e) {
      pc.close();
      throw new Error('cannot reach the live endpoint: ' + e.message);
    }
    const body = await resp.text();
    if (resp.status !== 201) {
      pc.close();
      throw new Error(WHEPSession.reason(resp, body));
    }
    const loc = resp.headers.get('Location');
    if (loc) this.location = new URL(loc, this.endpoint).href;
    await pc.setRemoteDescription({ type: 'answer', sdp: body });
  }

  // reason turns an error answer into a sentence: the "error" of a JSON
  // body, or the plain text.
  static reason(resp, body) {
    try {
      const j = JSON.parse(body);
      if (j && j.error) return j.error;
    } catch (_) { /* not JSON */ }
    return body.trim() || ('HTTP ' + resp.status);
  }

  // id is the session's name on the server: the last segment of its
  // Location ('' before the answer).
  id() {
    if (!this.location) return '';
    const path = new URL(this.location).pathname;
    return decodeURIComponent(path.slice(path.lastIndexOf('/') + 1));
  }

  ended(why) {
    if (this.closed) return;
    this.closed = true;
    this.onState('ended', why);
  }

  // close ends the view: DELETE on the session first (so the server logs
  // who ended it), then the peer connection, at the latest after
  // deleteTimeoutMs. keepalive lets the DELETE go out while the page closes.
  async close(deleteTimeoutMs = 3000) {
    const loc = this.location;
    this.location = null;
    this.ended('closed by the viewer');
    if (loc) {
      const del = fetch(loc, { method: 'DELETE', headers: this.headers({}), keepalive: true })
        .catch(() => { /* the server ends it on its own when ICE times out */ });
      await Promise.race([del, new Promise((r) => setTimeout(r, deleteTimeoutMs))]);
    }
    if (this.pc) this.pc.close();
  }
}

window.WHEPSession = WHEPSession;
