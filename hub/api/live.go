package api

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
	"time"

	"github.com/classcap/classcap/hub/registry"
	"github.com/classcap/classcap/uplink/wire"
)

// Live view: the hub is a WHEP endpoint (RFC 9725) for each box. The offer
// goes to the box as live.offer over MQTT; the box answers with every ICE
// candidate of its own gathered. A viewer may trickle its candidates after
// the offer (PATCH, RFC 8840 fragments): they go to the box as
// live.candidates. An ICE restart (a fragment with another ufrag than the
// offer's) is refused with 422 ice_restart: post a new offer instead.
//
//	POST   /live/{id}/whep            application/sdp offer -> 201, answer, Location,
//	                                  a Link rel="ice-server" per STUN/TURN URL (ice.go)
//	PATCH  /live/{id}/whep/{session}  application/trickle-ice-sdpfrag -> 204;
//	                                  415 other types, 413 over 16 KiB, 400 a bad
//	                                  fragment, 403 another coach's view, 404 no
//	                                  such view, 422 ICE restart
//	DELETE /live/{id}/whep/{session}  ends the view -> 200
//	GET    /api/v1/devices/{id}/views the view log: who watched, when, how long

// LiveWait bounds how long the hub waits for a box's answer or stop.
const LiveWait = 20 * time.Second

// LivePath is the WHEP endpoint of device id.
func LivePath(id string) string { return "/live/" + id + "/whep" }

func (a *API) routeLive() {
	a.route("POST /live/{id}/whep", registry.RoleCoach, a.whepOffer)
	a.route("PATCH /live/{id}/whep/{session}", registry.RoleCoach, a.whepTrickle)
	a.route("DELETE /live/{id}/whep/{session}", registry.RoleCoach, a.whepStop)
	a.mux.HandleFunc("OPTIONS /live/{id}/whep", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Allow", "OPTIONS, POST")
		w.Header().Set("Accept-Post", "application/sdp")
		w.WriteHeader(http.StatusNoContent)
	})
	a.mux.HandleFunc("OPTIONS /live/{id}/whep/{session}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Allow", "OPTIONS, PATCH, DELETE")
		w.Header().Set("Accept-Patch", wire.SDPFragType)
		w.WriteHeader(http.StatusNoContent)
	})
	a.mux.HandleFunc("/live/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "not_found", fmt.Sprintf("no live route %s %s", r.Method, r.URL.Path))
	})
	a.route("GET /api/v1/devices/{id}/views", registry.RoleCoach, a.listViews)
	a.route("GET /api/v1/live/ice", registry.RoleCoach, a.getLiveICE)
}

// liveSession is a live view as this hub answered it.
type liveSession struct {
	viewer string // who opened it
	ufrag  string // the ICE ufrag of the viewer's offer; "" when it had none
}

// offerUfrag returns the first a=ice-ufrag of an SDP offer.
func offerUfrag(sdp string) string {
	for line := range strings.Lines(sdp) {
		if v, ok := strings.CutPrefix(strings.TrimRight(line, "\r\n"), "a=ice-ufrag:"); ok {
			return v
		}
	}
	return ""
}

// newSession returns a live session id: 32 hex digits.
func newSession() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// liveStatus maps a box's refusal of a live command to an HTTP status.
func liveStatus(code string) int {
	switch code {
	case wire.CodeLiveOff, wire.CodeDeclined:
		return http.StatusForbidden // the teacher's consent says no
	case wire.CodeBusy:
		return http.StatusServiceUnavailable // too many viewers
	case wire.CodeBadArgs, wire.CodeMalformed:
		return http.StatusBadRequest // the offer is unusable
	case wire.CodeUnknownSession:
		return http.StatusNotFound
	case wire.CodeUnknownType, wire.CodeVersion:
		return http.StatusNotImplemented // a box without live view
	}
	return boxStatus(code)
}

func (a *API) whepOffer(w http.ResponseWriter, r *http.Request, c caller) {
	offer, ok := liveBody(w, r, "application/sdp", wire.MaxSDP, "bad_sdp", "SDP offer")
	if !ok {
		return
	}
	if err := wire.ValidateSDP("offer", offer); err != nil {
		writeError(w, http.StatusBadRequest, "bad_sdp", err.Error())
		return
	}
	session := newSession()
	d, rep, _, ok := a.send(w, r, wire.TypeLiveOffer, wire.LiveOfferArgs{Session: session, SDP: offer, Viewer: c.by()}, LiveWait)
	if !ok {
		return
	}
	if !rep.OK {
		writeJSON(w, liveStatus(rep.Code), CommandError{Error: rep.Error, Code: rep.Code, Device: d.ID, Command: rep.ID, FromBox: true})
		return
	}
	var res wire.LiveOfferResult
	if err := rep.DecodeResult(&res); err != nil || wire.ValidateSDP("sdp", res.SDP) != nil {
		writeJSON(w, http.StatusBadGateway, CommandError{Error: "the box's answer is unreadable", Code: "bad_result",
			Device: d.ID, Command: rep.ID, FromBox: true})
		return
	}
	a.viewsMu.Lock()
	if a.viewers == nil {
		a.viewers = map[string]liveSession{}
	}
	a.viewers[d.ID+"/"+session] = liveSession{viewer: c.by(), ufrag: offerUfrag(offer)}
	a.viewsMu.Unlock()
	a.log.Info("live view", "device", d.ID, "session", session, "viewer", c.by())
	w.Header().Set("Content-Type", "application/sdp")
	w.Header().Set("Location", LivePath(d.ID)+"/"+session)
	for _, l := range ICELinks(a.liveICE(c).Servers) {
		w.Header().Add("Link", l)
	}
	w.WriteHeader(http.StatusCreated)
	_, _ = io.WriteString(w, res.SDP)
}

// whepTrickle relays the candidates of a trickle ICE fragment to the box,
// at most wire.MaxLiveCandidates per live.candidates command.
func (a *API) whepTrickle(w http.ResponseWriter, r *http.Request, c caller) {
	w.Header().Set("Accept-Patch", wire.SDPFragType)
	body, ok := liveBody(w, r, wire.SDPFragType, wire.MaxSDPFrag, "bad_sdpfrag", "candidates")
	if !ok {
		return
	}
	id, session, ok := a.liveSession(w, r, c, "add to it")
	if !ok {
		return
	}
	frag, err := wire.ParseSDPFrag(body)
	if err != nil {
		writeError(w, http.StatusBadRequest, "bad_sdpfrag", err.Error())
		return
	}
	a.viewsMu.Lock()
	ufrag := a.viewers[id+"/"+session].ufrag
	a.viewsMu.Unlock()
	if frag.Ufrag != "" && ufrag != "" && frag.Ufrag != ufrag {
		writeError(w, http.StatusUnprocessableEntity, "ice_restart",
			fmt.Sprintf("ICE restart (ufrag %q, the offer had %q) is not supported: post a new offer", frag.Ufrag, ufrag))
		return
	}
	if len(frag.Candidates) == 0 && !frag.End {
		w.WriteHeader(http.StatusNoContent) // nothing to hand over
		return
	}
	for rest := frag.Candidates; ; {
		n := min(len(rest), wire.MaxLiveCandidates)
		args := wire.LiveCandidatesArgs{Session: session, Candidates: rest[:n], End: frag.End && n == len(rest)}
		rest = rest[n:]
		if len(args.Candidates) > 0 || args.End {
			d, rep, _, ok := a.send(w, r, wire.TypeLiveCandidates, args, LiveWait)
			if !ok {
				return
			}
			if !rep.OK {
				writeJSON(w, liveStatus(rep.Code), CommandError{Error: rep.Error, Code: rep.Code, Device: d.ID, Command: rep.ID, FromBox: true})
				return
			}
		}
		if len(rest) == 0 {
			break
		}
	}
	w.WriteHeader(http.StatusNoContent)
}

func (a *API) whepStop(w http.ResponseWriter, r *http.Request, c caller) {
	_, session, ok := a.liveSession(w, r, c, "end it")
	if !ok {
		return
	}
	d, rep, _, ok := a.send(w, r, wire.TypeLiveStop, wire.LiveStopArgs{Session: session, By: c.by()}, LiveWait)
	if !ok {
		return
	}
	if !rep.OK {
		writeJSON(w, liveStatus(rep.Code), CommandError{Error: rep.Error, Code: rep.Code, Device: d.ID, Command: rep.ID, FromBox: true})
		return
	}
	a.viewsMu.Lock()
	delete(a.viewers, d.ID+"/"+session)
	a.viewsMu.Unlock()
	var res wire.LiveStopResult
	_ = rep.DecodeResult(&res)
	writeJSON(w, http.StatusOK, res)
}

// liveBody checks that the request carries mediaType and reads its body,
// at most limit bytes; otherwise it answers the request (415, 400 or 413
// with code) and returns false. what names the body in the messages.
func liveBody(w http.ResponseWriter, r *http.Request, mediaType string, limit int, code, what string) (string, bool) {
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != mediaType {
		writeError(w, http.StatusUnsupportedMediaType, "bad_content_type", "send the "+what+" with Content-Type: "+mediaType)
		return "", false
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, int64(limit)+1))
	if err != nil {
		writeError(w, http.StatusBadRequest, code, "read body: "+err.Error())
		return "", false
	}
	if len(body) > limit {
		writeError(w, http.StatusRequestEntityTooLarge, code, fmt.Sprintf("the %s: more than %d bytes", what, limit))
		return "", false
	}
	return string(body), true
}

// liveSession returns the device and the live session a request names,
// when the caller may act on it (who opened it, or an admin; doing says
// what, for the refusal); otherwise it answers the request (404 or 403).
func (a *API) liveSession(w http.ResponseWriter, r *http.Request, c caller, doing string) (id, session string, ok bool) {
	id, session = r.PathValue("id"), r.PathValue("session")
	if len(session) == 0 || len(session) > wire.MaxSessionLen {
		writeError(w, http.StatusNotFound, "unknown_session", "no such live view")
		return "", "", false
	}
	if owner := a.viewer(id, session); c.Role != registry.RoleAdmin && owner != "" && owner != c.by() {
		writeError(w, http.StatusForbidden, "not_your_view", "this live view was opened by "+owner+"; only they or an admin may "+doing)
		return "", "", false
	}
	return id, session, true
}

// viewer returns who opened live view session of device: as this hub
// answered it, or else as the box reported it (the view log outlives a
// restart of the hub); "" when unknown.
func (a *API) viewer(device, session string) string {
	a.viewsMu.Lock()
	v := a.viewers[device+"/"+session].viewer
	a.viewsMu.Unlock()
	if v != "" {
		return v
	}
	vs, err := a.reg.Views(device)
	if err != nil {
		return ""
	}
	for _, x := range vs {
		if x.Session == session {
			return x.Viewer
		}
	}
	return ""
}

func (a *API) listViews(w http.ResponseWriter, r *http.Request, _ caller) {
	d, ok := a.device(w, r)
	if !ok {
		return
	}
	vs, err := a.reg.Views(d.ID)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "internal", "list views: "+err.Error())
		return
	}
	if vs == nil {
		vs = []registry.View{}
	}
	writeJSON(w, http.StatusOK, struct {
		Views []registry.View `json:"views"`
	}{vs})
}
