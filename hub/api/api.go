// Package api is the hub's HTTP JSON API under /api/v1/: devices, their
// state and lessons, a stream of their changes (server-sent events), remote
// start and stop of recordings, and the administration of devices and
// tokens. Callers send a bearer token whose
// role (coach or admin) decides what they may do. The same handler is served
// on the hub's local unix socket, where the file's permissions stand in for
// the token and every caller is an administrator (the CLI verbs use it).
//
// Every error is JSON: {"error": "<what is wrong>", "code": "<machine code>"}.
package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/classcap/classcap/hub/events"
	"github.com/classcap/classcap/hub/ingest"
	"github.com/classcap/classcap/hub/registry"
	"github.com/classcap/classcap/uplink/wire"
)

// Registry is what the API reads and administers.
type Registry interface {
	Devices() ([]registry.Device, error)
	Device(id string) (registry.Device, error)
	AddDevice(id string) (string, error)
	Lessons(device string) ([]registry.Lesson, error)
	Lesson(device, id string) (registry.Lesson, bool, error)
	Views(device string) ([]registry.View, error)
	LookupToken(token string) (registry.Token, error)
	CreateToken(role, name string) (string, error)
}

// Commander sends a command to a box and waits for its reply (the fleet).
type Commander interface {
	Command(ctx context.Context, device, typ string, args any, wait time.Duration) (wire.Reply, error)
}

// Wait bounds for remote commands: DefaultWait unless the request asks for
// another (wait_s), at most MaxWait. The box's veto window (10 s by
// default) is inside the wait of a record.start.
const (
	DefaultWait = 30 * time.Second
	MaxWait     = 120 * time.Second
)

// API is the HTTP handler.
type API struct {
	reg Registry
	cmd Commander
	log *slog.Logger
	mux *http.ServeMux

	lessons  LessonStore // nil: no uploaded lessons served
	mediaKey []byte      // signs media tickets (made by ServeLessons)

	viewsMu sync.Mutex
	viewers map[string]liveSession // device/session -> the live view as this hub answered it

	iceMu sync.Mutex
	ice   LiveICE // told to viewers (SetLiveICE)

	events          *events.Broker // nil: no event stream (SetEvents)
	eventsQueue     int            // a stream's queue (0: events.DefaultQueue)
	eventsHeartbeat time.Duration
	ticketKey       []byte // signs events tickets
}

// New returns the API over reg and cmd.
func New(reg Registry, cmd Commander, log *slog.Logger) *API {
	a := &API{reg: reg, cmd: cmd, log: log, mux: http.NewServeMux(), eventsHeartbeat: EventsHeartbeat, ticketKey: newMediaKey()}
	a.route("GET /api/v1/devices", registry.RoleCoach, a.listDevices)
	a.route("POST /api/v1/devices", registry.RoleAdmin, a.addDevice)
	a.route("GET /api/v1/devices/{id}", registry.RoleCoach, a.getDevice)
	a.route("POST /api/v1/devices/{id}/record/start", registry.RoleCoach, a.recordStart)
	a.route("POST /api/v1/devices/{id}/record/stop", registry.RoleCoach, a.recordStop)
	a.route("GET /api/v1/lessons", registry.RoleCoach, a.listLessons)
	a.route("POST /api/v1/tokens", registry.RoleAdmin, a.createToken)
	a.route("GET /api/v1/whoami", registry.RoleCoach, a.whoami)
	a.routeLive()
	a.routeEvents()
	a.mux.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "not_found", fmt.Sprintf("no API route %s %s", r.Method, r.URL.Path))
	})
	return a
}

// ServeHTTP serves the API to callers with bearer tokens.
func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) { a.mux.ServeHTTP(w, r) }

// Local returns the handler for the local socket: every caller is an
// administrator named "local".
func (a *API) Local() http.Handler {
	local := http.NewServeMux()
	local.HandleFunc("GET "+LocalMosquittoUsersPath, func(w http.ResponseWriter, r *http.Request) {
		ds, err := a.reg.Devices()
		if err != nil {
			writeError(w, http.StatusInternalServerError, "internal", "list devices: "+err.Error())
			return
		}
		writeJSON(w, http.StatusOK, MosquittoUsers{Users: MosquittoUsersOf(ds)})
	})
	local.Handle("/", a.mux)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := context.WithValue(r.Context(), callerKey{}, caller{Name: "local", Role: registry.RoleAdmin})
		local.ServeHTTP(w, r.WithContext(ctx))
	})
}

type callerKey struct{}

// caller is who sent a request.
type caller struct {
	Name string `json:"name"`
	Role string `json:"role"`
}

func (c caller) by() string { return c.Role + ":" + c.Name }

// Error is the JSON body of every error response.
type Error struct {
	Error string `json:"error"`
	Code  string `json:"code"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, Error{Error: msg, Code: code})
}

// route registers h for pattern, callable by role and above.
func (a *API) route(pattern, role string, h func(http.ResponseWriter, *http.Request, caller)) {
	a.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		c, ok := r.Context().Value(callerKey{}).(caller)
		if !ok {
			var status int
			var code, msg string
			c, status, code, msg = a.authenticate(r)
			if status != 0 {
				if status == http.StatusUnauthorized {
					w.Header().Set("WWW-Authenticate", `Bearer realm="classcap-hub"`)
				}
				writeError(w, status, code, msg)
				return
			}
		}
		if role == registry.RoleAdmin && c.Role != registry.RoleAdmin {
			writeError(w, http.StatusForbidden, "wrong_role",
				fmt.Sprintf("%s %s needs an admin token; this token (%q) has role %s", r.Method, r.URL.Path, c.Name, c.Role))
			return
		}
		h(w, r, c)
	})
}

func (a *API) authenticate(r *http.Request) (caller, int, string, string) {
	h := r.Header.Get("Authorization")
	if h == "" {
		return caller{}, http.StatusUnauthorized, "missing_token", "missing token: send Authorization: Bearer <token> (classcap-hub token create)"
	}
	scheme, token, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(token) == "" {
		return caller{}, http.StatusUnauthorized, "bad_token", "the Authorization header is not \"Bearer <token>\""
	}
	t, err := a.reg.LookupToken(strings.TrimSpace(token))
	if errors.Is(err, registry.ErrUnknownToken) {
		return caller{}, http.StatusUnauthorized, "bad_token", "unknown token"
	}
	if err != nil {
		a.log.Error("look up token", "err", err)
		return caller{}, http.StatusInternalServerError, "internal", "cannot check the token: " + err.Error()
	}
	return caller{Name: t.Name, Role: t.Role}, 0, "", ""
}

// decodeBody reads a JSON object into v; an empty body leaves v as it is.
// It writes the error response and returns false on bad JSON.
func decodeBody(w http.ResponseWriter, r *http.Request, v any) bool {
	body, err := io.ReadAll(io.LimitReader(r.Body, 64<<10+1))
	if err != nil {
		writeError(w, http.StatusBadRequest, "bad_json", "read body: "+err.Error())
		return false
	}
	if len(body) > 64<<10 {
		writeError(w, http.StatusRequestEntityTooLarge, "bad_json", "the body is larger than 64 KiB")
		return false
	}
	if len(strings.TrimSpace(string(body))) == 0 {
		return true
	}
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		writeError(w, http.StatusBadRequest, "bad_json", "bad JSON body: "+err.Error())
		return false
	}
	if dec.More() {
		writeError(w, http.StatusBadRequest, "bad_json", "bad JSON body: data after the JSON object")
		return false
	}
	return true
}

// DeviceSummary is one device in GET /api/v1/devices.
type DeviceSummary struct {
	ID       string    `json:"id"`
	Online   bool      `json:"online"`
	LastSeen time.Time `json:"last_seen,omitzero"`
	AddedAt  time.Time `json:"added_at"`
	// Recorder is the recorder state of the last report ("" before one).
	Recorder string `json:"recorder,omitempty"`
	Lesson   string `json:"lesson,omitempty"`
	Version  string `json:"version,omitempty"`
	// Config is the box's report on the hub's configuration (applied,
	// pending and refused versions), from its last state; nil before one.
	Config *wire.ConfigStatus `json:"config,omitempty"`
}

// DeviceDetail is GET /api/v1/devices/{id}.
type DeviceDetail struct {
	DeviceSummary
	StateAt time.Time       `json:"state_at,omitzero"`
	State   json.RawMessage `json:"state,omitempty"` // the box's last state message, as sent
}

func summarize(d registry.Device) DeviceSummary {
	s := DeviceSummary{ID: d.ID, Online: d.Online, LastSeen: d.LastSeen, AddedAt: d.AddedAt}
	if len(d.State) > 0 {
		var st wire.State
		if json.Unmarshal(d.State, &st) == nil {
			if st.Recorder != nil {
				s.Recorder = st.Recorder.State
				s.Lesson = st.Recorder.Lesson
			}
			s.Version, s.Config = st.Version, st.Config
		}
	}
	return s
}

// listDevices answers GET /api/v1/devices: summaries, or with ?state=1
// each device's detail with its last state (one request for a page that
// shows every box's health).
func (a *API) listDevices(w http.ResponseWriter, r *http.Request, _ caller) {
	ds, err := a.reg.Devices()
	if err != nil {
		writeError(w, http.StatusInternalServerError, "internal", "list devices: "+err.Error())
		return
	}
	if r.URL.Query().Get("state") == "1" {
		out := make([]DeviceDetail, 0, len(ds))
		for _, d := range ds {
			out = append(out, DeviceDetail{DeviceSummary: summarize(d), StateAt: d.StateAt, State: d.State})
		}
		writeJSON(w, http.StatusOK, struct {
			Devices []DeviceDetail `json:"devices"`
		}{out})
		return
	}
	out := make([]DeviceSummary, 0, len(ds))
	for _, d := range ds {
		out = append(out, summarize(d))
	}
	writeJSON(w, http.StatusOK, struct {
		Devices []DeviceSummary `json:"devices"`
	}{out})
}

func (a *API) device(w http.ResponseWriter, r *http.Request) (registry.Device, bool) {
	id := r.PathValue("id")
	d, err := a.reg.Device(id)
	if errors.Is(err, registry.ErrUnknownDevice) {
		writeError(w, http.StatusNotFound, "unknown_device", fmt.Sprintf("unknown device %q (classcap-hub device add registers one)", id))
		return d, false
	}
	if err != nil {
		writeError(w, http.StatusInternalServerError, "internal", err.Error())
		return d, false
	}
	return d, true
}

func (a *API) getDevice(w http.ResponseWriter, r *http.Request, _ caller) {
	d, ok := a.device(w, r)
	if !ok {
		return
	}
	writeJSON(w, http.StatusOK, DeviceDetail{DeviceSummary: summarize(d), StateAt: d.StateAt, State: d.State})
}

// AddDeviceRequest is the body of POST /api/v1/devices.
type AddDeviceRequest struct {
	ID string `json:"id"`
}

// AddDeviceResponse carries the new device's MQTT password, shown once.
type AddDeviceResponse struct {
	ID       string `json:"id"`
	Username string `json:"username"`
	Password string `json:"password"`
}

func (a *API) addDevice(w http.ResponseWriter, r *http.Request, c caller) {
	var req AddDeviceRequest
	if !decodeBody(w, r, &req) {
		return
	}
	if err := registry.ValidateDeviceID(req.ID); err != nil {
		writeError(w, http.StatusUnprocessableEntity, "bad_device_id", err.Error())
		return
	}
	pw, err := a.reg.AddDevice(req.ID)
	if errors.Is(err, registry.ErrDeviceExists) {
		writeError(w, http.StatusConflict, "device_exists", fmt.Sprintf("device %q is already registered", req.ID))
		return
	}
	if err != nil {
		writeError(w, http.StatusInternalServerError, "internal", err.Error())
		return
	}
	a.log.Info("device added", "device", req.ID, "by", c.by())
	writeJSON(w, http.StatusCreated, AddDeviceResponse{ID: req.ID, Username: req.ID, Password: pw})
}

// TokenRequest is the body of POST /api/v1/tokens.
type TokenRequest struct {
	Role string `json:"role"`
	Name string `json:"name"`
}

// TokenResponse carries the new token, shown once.
type TokenResponse struct {
	Token string `json:"token"`
	Role  string `json:"role"`
	Name  string `json:"name"`
}

func (a *API) createToken(w http.ResponseWriter, r *http.Request, c caller) {
	var req TokenRequest
	if !decodeBody(w, r, &req) {
		return
	}
	if !registry.ValidRole(req.Role) {
		writeError(w, http.StatusUnprocessableEntity, "bad_role", fmt.Sprintf("role %q: want coach or admin", req.Role))
		return
	}
	if strings.TrimSpace(req.Name) == "" {
		writeError(w, http.StatusUnprocessableEntity, "bad_name", "name is empty: say who holds the token")
		return
	}
	tok, err := a.reg.CreateToken(req.Role, req.Name)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "internal", err.Error())
		return
	}
	a.log.Info("token created", "name", req.Name, "role", req.Role, "by", c.by())
	writeJSON(w, http.StatusCreated, TokenResponse{Token: tok, Role: req.Role, Name: req.Name})
}

func (a *API) whoami(w http.ResponseWriter, _ *http.Request, c caller) {
	writeJSON(w, http.StatusOK, c)
}

// listLessons answers GET /api/v1/lessons: the lessons the caller may see
// (shownLesson).
func (a *API) listLessons(w http.ResponseWriter, r *http.Request, c caller) {
	device := r.URL.Query().Get("device")
	if device != "" {
		r.SetPathValue("id", device)
		if _, ok := a.device(w, r); !ok {
			return
		}
	}
	ls, err := a.reg.Lessons(device)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "internal", "list lessons: "+err.Error())
		return
	}
	out := make([]LessonView, 0, len(ls))
	for _, l := range ls {
		if v, ok := a.shownLesson(c, l); ok {
			out = append(out, v)
		}
	}
	writeJSON(w, http.StatusOK, struct {
		Lessons []LessonView `json:"lessons"`
	}{out})
}

// LessonView is a lesson in the list: what the box reported, and what the
// hub holds of it (absent before the first file arrived).
type LessonView struct {
	registry.Lesson
	Upload *ingest.Status `json:"upload,omitempty"`
}

// LocalMosquittoUsersPath lists the devices' mosquitto hashes; it is served
// on the local socket only.
const LocalMosquittoUsersPath = "/local/v1/mosquitto-users"

// MosquittoUser is a device's user name and its "$7$" hash.
type MosquittoUser struct {
	Name string `json:"name"`
	Hash string `json:"hash"`
}

// MosquittoUsers is the answer of LocalMosquittoUsersPath.
type MosquittoUsers struct {
	Users []MosquittoUser `json:"users"`
}

// MosquittoUsersOf returns the mosquitto users of devices.
func MosquittoUsersOf(ds []registry.Device) []MosquittoUser {
	out := make([]MosquittoUser, 0, len(ds))
	for _, d := range ds {
		out = append(out, MosquittoUser{Name: d.ID, Hash: d.MosquittoHash})
	}
	return out
}
