// A WHEP client (the IETF WebRTC-HTTP egress protocol): it works with any
// WHEP server. One offer with recvonly video and audio, posted as soon as
// it is created, with the candidates it already has; the candidates
// gathered later, and the end of candidates, follow as trickle ICE
// fragments (RFC 8840, RFC 9725 section 4.3): PATCH on the session's
// Location, one at a time, in order. A server that refuses a PATCH (405,
// 501, 422, ...) is sent no more: the view goes on with what the offer
// had. The answer is set from the 201; DELETE on the Location ends the
// view.
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
    // Trickle ICE: trickle.state is 'gathering' until the offer goes out,
    // then 'offered' (gathering was complete: nothing to trickle),
    // 'trickling', 'done' (the end of candidates was accepted) or
    // 'stopped' (a PATCH failed; trickle.error says why). trickle.sent
    // lists the candidates the server accepted, in order.
    this.trickle = { state: 'gathering', sent: [], error: '', offerCandidates: 0 };
    this.pending = []; // candidates (null: the end) not yet sent
    this.sending = false;
    this.frag = null; // the offer's credentials and media sections
  }

  headers(extra) {
    const h = Object.assign({}, extra);
    if (this.token) h['Authorization'] = 'Bearer ' + this.token;
    return h;
  }

  // start negotiates the view; it resolves once the answer is set and
  // rejects with an Error whose message is the server's reason.
  async start() {
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
    // Candidates surfaced before the offer is read are in it; the later
    // ones, and the end (a null candidate), wait for the answer's Location.
    let offered = false;
    let ended = false;
    const queue = (c) => {
      if (!offered || this.trickle.state !== 'trickling' || ended) return;
      if (c === null) ended = true;
      this.pending.push(c);
      this.flush();
    };
    pc.onicecandidate = (ev) => {
      if (!ev.candidate) queue(null);
      else if (ev.candidate.candidate) queue(ev.candidate);
    };
    pc.addEventListener('icegatheringstatechange', () => {
      if (pc.iceGatheringState === 'complete') queue(null);
    });
    await pc.setLocalDescription(await pc.createOffer());
    const offer = pc.localDescription.sdp;
    offered = true;
    this.frag = WHEPSession.fragmentParts(offer);
    this.trickle.offerCandidates = (offer.match(/^a=candidate:/gm) || []).length;
    this.trickle.state = pc.iceGatheringState === 'complete' ? 'offered' : 'trickling';
    let resp;
    try {
      resp = await fetch(this.endpoint, {
        method: 'POST',
        headers: this.headers({ 'Content-Type': 'application/sdp', 'Accept': 'application/sdp' }),
        body: offer,
      });
    } catch (e) {
      this.stopTrickle('the offer failed');
      pc.close();
      throw new Error('cannot reach the live endpoint: ' + e.message);
    }
    const body = await resp.text();
    if (resp.status !== 201) {
      this.stopTrickle('the offer was refused');
      pc.close();
      throw new Error(WHEPSession.reason(resp, body));
    }
    const loc = resp.headers.get('Location');
    if (loc) this.location = new URL(loc, this.endpoint).href;
    else this.stopTrickle('the answer has no Location to send candidates to');
    await pc.setRemoteDescription({ type: 'answer', sdp: body });
    this.flush();
  }

  // fragmentParts reads an SDP's ICE credentials (its first a=ice-ufrag and
  // a=ice-pwd) and its media sections (each m= line with its a=mid).
  static fragmentParts(sdp) {
    const out = { ufrag: '', pwd: '', sections: [] };
    for (const raw of sdp.split('\n')) {
      const line = raw.replace(/\r$/, '');
      if (line.startsWith('a=ice-ufrag:') && !out.ufrag) out.ufrag = line;
      else if (line.startsWith('a=ice-pwd:') && !out.pwd) out.pwd = line;
      else if (line.startsWith('m=')) out.sections.push({ m: line, mid: '' });
      else if (line.startsWith('a=mid:') && out.sections.length) {
        out.sections[out.sections.length - 1].mid = line.slice('a=mid:'.length);
      }
    }
    return out;
  }

  // fragment writes a trickle ICE fragment (RFC 8840) of candidates, and
  // a=end-of-candidates when end: the offer's ufrag and pwd, then its media
  // sections up to the last one a candidate belongs to (by mid, else by
  // m-line index; with max-bundle all go in the first), each with its mid
  // and its candidates.
  static fragment(parts, candidates, end) {
    const sections = parts.sections.length ? parts.sections : [{ m: 'm=video 9 UDP/TLS/RTP/SAVPF 0', mid: '0' }];
    const lines = sections.map(() => []);
    let last = 0;
    for (const c of candidates) {
      let i = sections.findIndex((s) => c.sdpMid != null && s.mid === c.sdpMid);
      if (i < 0) i = c.sdpMLineIndex != null && c.sdpMLineIndex < sections.length ? c.sdpMLineIndex : 0;
      lines[i].push('a=' + c.candidate);
      last = Math.max(last, i);
    }
    let out = '';
    if (parts.ufrag) out += parts.ufrag + '\r\n';
    if (parts.pwd) out += parts.pwd + '\r\n';
    for (let i = 0; i <= last; i++) {
      out += sections[i].m + '\r\n';
      if (sections[i].mid) out += 'a=mid:' + sections[i].mid + '\r\n';
      for (const l of lines[i]) out += l + '\r\n';
    }
    if (end) out += 'a=end-of-candidates\r\n';
    return out;
  }

  // flush sends the pending candidates, a PATCH at a time, until none are
  // left, the server refuses one or the view ends.
  async flush() {
    if (this.sending || !this.location || this.trickle.state !== 'trickling') return;
    this.sending = true;
    try {
      while (this.pending.length && this.trickle.state === 'trickling' && this.location && !this.closed) {
        // At most 16 candidates a fragment: well within a server's limit.
        const n = Math.min(this.pending.length, 16);
        let batch = this.pending.slice(0, n);
        const end = batch.includes(null);
        batch = batch.slice(0, end ? batch.indexOf(null) : n);
        const taken = batch.length + (end ? 1 : 0);
        let resp;
        try {
          resp = await fetch(this.location, {
            method: 'PATCH',
            headers: this.headers({ 'Content-Type': 'application/trickle-ice-sdpfrag' }),
            body: WHEPSession.fragment(this.frag, batch, end),
          });
        } catch (e) {
          this.stopTrickle('PATCH failed: ' + e.message);
          return;
        }
        if (!resp.ok) {
          const body = await resp.text().catch(() => '');
          this.stopTrickle('PATCH refused: HTTP ' + resp.status + ' ' + WHEPSession.reason(resp, body));
          return;
        }
        this.pending.splice(0, taken);
        for (const c of batch) this.trickle.sent.push(c.candidate);
        if (end) this.trickle.state = 'done';
      }
    } finally {
      this.sending = false;
    }
  }

  // stopTrickle sends no more candidates; the view goes on with those the
  // server has.
  stopTrickle(why) {
    this.pending = [];
    if (this.trickle.state !== 'trickling') return;
    this.trickle.state = 'stopped';
    this.trickle.error = why;
    console.warn('WHEP: no more ICE candidates trickled to ' + (this.location || this.endpoint) + ': ' + why);
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
    this.pending = [];
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
