package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/classcap/classcap/hub/fleet"
	"github.com/classcap/classcap/hub/registry"
	"github.com/classcap/classcap/uplink/wire"
)

// RecordStartRequest is the body of POST .../record/start (optional).
type RecordStartRequest struct {
	// Visibility of the lesson: private, coaching or library; empty for the
	// box's default.
	Visibility string `json:"visibility,omitempty"`
	// WaitS is how long to wait for the box's answer (default 30, at most
	// 120); the command expires then.
	WaitS float64 `json:"wait_s,omitempty"`
}

// RecordStopRequest is the body of POST .../record/stop (optional).
type RecordStopRequest struct {
	WaitS float64 `json:"wait_s,omitempty"`
}

// CommandResponse is a box's successful answer.
type CommandResponse struct {
	Device  string `json:"device"`
	Command string `json:"command"` // the command's id
	OK      bool   `json:"ok"`
	// Result is the box's result: wire.RecordStartResult or
	// wire.RecordStopResult.
	Result any `json:"result,omitempty"`
	// ElapsedMS is from the API call to the box's reply.
	ElapsedMS float64 `json:"elapsed_ms"`
}

// CommandError is a box's refusal or a failed delivery.
type CommandError struct {
	Error   string `json:"error"`
	Code    string `json:"code"`
	Device  string `json:"device"`
	Command string `json:"command,omitempty"`
	// FromBox is true when the box answered with this error.
	FromBox bool `json:"from_box"`
}

func waitOf(s float64) (time.Duration, error) {
	if s == 0 {
		return DefaultWait, nil
	}
	if s < 0.1 || s > MaxWait.Seconds() {
		return 0, fmt.Errorf("wait_s %g is outside 0.1..%g", s, MaxWait.Seconds())
	}
	return time.Duration(s * float64(time.Second)), nil
}

func (a *API) recordStart(w http.ResponseWriter, r *http.Request, c caller) {
	var req RecordStartRequest
	if !decodeBody(w, r, &req) {
		return
	}
	switch req.Visibility {
	case "", wire.VisibilityPrivate, wire.VisibilityCoaching, wire.VisibilityLibrary:
	default:
		writeError(w, http.StatusUnprocessableEntity, "bad_visibility",
			fmt.Sprintf("visibility %q: want private, coaching or library", req.Visibility))
		return
	}
	wait, err := waitOf(req.WaitS)
	if err != nil {
		writeError(w, http.StatusUnprocessableEntity, "bad_wait", err.Error())
		return
	}
	a.command(w, r, wire.TypeRecordStart, wire.RecordStartArgs{Visibility: req.Visibility, By: c.by()}, wait, &wire.RecordStartResult{})
}

func (a *API) recordStop(w http.ResponseWriter, r *http.Request, c caller) {
	var req RecordStopRequest
	if !decodeBody(w, r, &req) {
		return
	}
	wait, err := waitOf(req.WaitS)
	if err != nil {
		writeError(w, http.StatusUnprocessableEntity, "bad_wait", err.Error())
		return
	}
	a.command(w, r, wire.TypeRecordStop, wire.RecordStopArgs{By: c.by()}, wait, &wire.RecordStopResult{})
}

// boxStatus maps a box's reply code to the HTTP status the API answers.
func boxStatus(code string) int {
	switch code {
	case wire.CodeMalformed, wire.CodeVersion, wire.CodeUnknownType, wire.CodeBadArgs:
		return http.StatusUnprocessableEntity // the request, as the box read it, was wrong
	case wire.CodeExpired:
		return http.StatusGatewayTimeout
	case wire.CodeFailed:
		return http.StatusBadGateway
	}
	// declined, busy, not_recording, disk_low, no_video, clock_unsynced:
	// the box's state does not allow it now.
	return http.StatusConflict
}

func (a *API) command(w http.ResponseWriter, r *http.Request, typ string, args any, wait time.Duration, result any) {
	d, rep, elapsed, ok := a.send(w, r, typ, args, wait)
	if !ok {
		return
	}
	if !rep.OK {
		writeJSON(w, boxStatus(rep.Code), CommandError{Error: rep.Error, Code: rep.Code, Device: d.ID, Command: rep.ID, FromBox: true})
		return
	}
	resp := CommandResponse{Device: d.ID, Command: rep.ID, OK: true, ElapsedMS: float64(elapsed.Microseconds()) / 1000}
	if len(rep.Result) > 0 {
		if err := rep.DecodeResult(result); err != nil {
			writeJSON(w, http.StatusBadGateway, CommandError{Error: "the box's result is unreadable: " + err.Error(),
				Code: "bad_result", Device: d.ID, Command: rep.ID, FromBox: true})
			return
		}
		resp.Result = result
	}
	writeJSON(w, http.StatusOK, resp)
}

// send sends a command to the device named in the path and returns the
// box's reply, ok or not; on a failed delivery it writes the error
// response and returns ok false.
func (a *API) send(w http.ResponseWriter, r *http.Request, typ string, args any, wait time.Duration) (registry.Device, wire.Reply, time.Duration, bool) {
	d, ok := a.device(w, r)
	if !ok {
		return d, wire.Reply{}, 0, false
	}
	start := time.Now()
	rep, err := a.cmd.Command(r.Context(), d.ID, typ, args, wait)
	elapsed := time.Since(start)
	switch {
	case errors.Is(err, fleet.ErrTimeout):
		writeJSON(w, http.StatusGatewayTimeout, CommandError{Error: err.Error() +
			fmt.Sprintf(" (is the box online? last seen %s)", lastSeen(d)), Code: "timeout", Device: d.ID})
		return d, rep, elapsed, false
	case errors.Is(err, fleet.ErrNotConnected):
		writeJSON(w, http.StatusServiceUnavailable, CommandError{Error: err.Error(), Code: "broker_unavailable", Device: d.ID})
		return d, rep, elapsed, false
	case errors.Is(err, registry.ErrUnknownDevice):
		writeError(w, http.StatusNotFound, "unknown_device", err.Error())
		return d, rep, elapsed, false
	case errors.Is(err, context.Canceled):
		return d, rep, elapsed, false // the caller went away
	case err != nil:
		writeJSON(w, http.StatusInternalServerError, CommandError{Error: err.Error(), Code: "internal", Device: d.ID})
		return d, rep, elapsed, false
	}
	return d, rep, elapsed, true
}

func lastSeen(d registry.Device) string {
	if d.LastSeen.IsZero() {
		return "never"
	}
	s := d.LastSeen.UTC().Format(time.RFC3339)
	if !d.Online {
		s += ", offline"
	}
	return s
}
