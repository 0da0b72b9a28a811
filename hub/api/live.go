package api

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"mime"
	"net/http"
	"time"

	"github.com/classcap/classcap/hub/registry"
	"github.com/classcap/classcap/uplink/wire"
)

// Live view: the hub is a WHEP endpoint (RFC 9725) for each box. The offer
// goes to the box as live.offer over MQTT; the box answers with every ICE
// candidate gathered, so trickle ICE (PATCH) is not supported.
//
//	POST   /live/{id}/whep            application/sdp offer -> 201, answer, Location
//	DELETE /live/{id}/whep/{session}  ends the view -> 200
//	PATCH  /live/{id}/whep/{session}  405 (no trickle ICE)
//	GET    /api/v1/devices/{id}/views the view log: who watched, when, how long

// LiveWait bounds how long the hub waits for a box's answer or stop.
const LiveWait = 20 * time.Second

// LivePath is the WHEP endpoint of device id.
func LivePath(id string) string { return "/live/" + id + "/whep" }

func (a *API) routeLive() {
	a.route("POST /live/{id}/whep", registry.RoleCoach, a.whepOffer)
	a.route("DELETE /live/{id}/whep/{session}", registry.RoleCoach, a.whepStop)
	a.mux.HandleFunc("OPTIONS /live/{id}/whep", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Allow", "OPTIONS, POST")
		w.Header().Set("Accept-Post", "application/sdp")
		w.WriteHeader(http.StatusNoContent)
	})
	a.mux.HandleFunc("PATCH /live/{id}/whep/{session}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Allow", "DELETE")
		writeError(w, http.StatusMethodNotAllowed, "no_trickle",
			"trickle ICE is not supported: the answer carries every candidate of the box")
	})
	a.mux.HandleFunc("/live/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "not_found", fmt.Sprintf("no live route %s %s", r.Method, r.URL.Path))
	})
	a.route("GET /api/v1/devices/{id}/views", registry.RoleCoach, a.listViews)
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
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/sdp" {
		writeError(w, http.StatusUnsupportedMediaType, "bad_content_type", "send the SDP offer with Content-Type: application/sdp")
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, wire.MaxSDP+1))
	if err != nil {
		writeError(w, http.StatusBadRequest, "bad_sdp", "read body: "+err.Error())
		return
	}
	if len(body) > wire.MaxSDP {
		writeError(w, http.StatusRequestEntityTooLarge, "bad_sdp", fmt.Sprintf("the offer is larger than %d bytes", wire.MaxSDP))
		return
	}
	offer := string(body)
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
		a.viewers = map[string]string{}
	}
	a.viewers[d.ID+"/"+session] = c.by()
	a.viewsMu.Unlock()
	a.log.Info("live view", "device", d.ID, "session", session, "viewer", c.by())
	w.Header().Set("Content-Type", "application/sdp")
	w.Header().Set("Location", LivePath(d.ID)+"/"+session)
	w.WriteHeader(http.StatusCreated)
	_, _ = io.WriteString(w, res.SDP)
}

func (a *API) whepStop(w http.ResponseWriter, r *http.Request, c caller) {
	session := r.PathValue("session")
	if len(session) == 0 || len(session) > wire.MaxSessionLen {
		writeError(w, http.StatusNotFound, "unknown_session", "no such live view")
		return
	}
	if owner := a.viewer(r.PathValue("id"), session); c.Role != registry.RoleAdmin && owner != "" && owner != c.by() {
		writeError(w, http.StatusForbidden, "not_your_view", "this live view was opened by "+owner+"; only they or an admin may end it")
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

// viewer returns who opened live view session of device: as this hub
// answered it, or else as the box reported it (the view log outlives a
// restart of the hub); "" when unknown.
func (a *API) viewer(device, session string) string {
	a.viewsMu.Lock()
	v := a.viewers[device+"/"+session]
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
