// Package control is classcapd's local API: HTTP with JSON bodies over a
// unix socket (<data_dir>/classcapd.sock, mode 0660), served to classcapctl
// and to local tools. The Client here is what classcapctl uses.
package control

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/classcap/classcap/capture/catalog"
	"github.com/classcap/classcap/capture/lesson"
	"github.com/classcap/classcap/capture/live"
	"github.com/classcap/classcap/capture/recorder"
	"github.com/classcap/classcap/uplink/wire"
)

// Level is one microphone channel's level over the last 100 ms.
type Level struct {
	PeakDBFS float64 `json:"peak_dbfs"`
	RMSDBFS  float64 `json:"rms_dbfs"`
}

// Array is the microphone-array processing's state and 100 ms meters.
type Array struct {
	Running     bool    `json:"running"`
	Reason      string  `json:"reason,omitempty"` // why it does not run
	SpeechDBFS  float64 `json:"speech_dbfs"`      // speech level at the beam, before the AGC
	NoiseDBFS   float64 `json:"noise_dbfs"`       // stationary noise floor at the beam
	AzimuthDeg  float64 `json:"azimuth_deg"`      // talker direction
	Speech      bool    `json:"speech"`           // speech in the last 100 ms
	GainDB      float64 `json:"gain_db"`          // the AGC's gain
	OutPeakDBFS float64 `json:"out_peak_dbfs"`
	OutRMSDBFS  float64 `json:"out_rms_dbfs"`
}

// Status is everything `classcapctl status` shows.
type Status struct {
	Device   string          `json:"device"`
	Version  string          `json:"version"`
	Profile  string          `json:"profile"`
	Uptime   float64         `json:"uptime_seconds"`
	Recorder recorder.Status `json:"recorder"`
	Camera   struct {
		Encoder string `json:"encoder"`
		Frames  uint64 `json:"frames"`
		Fault   string `json:"fault,omitempty"`
	} `json:"camera"`
	Microphone struct {
		Packets uint64  `json:"packets"`
		Levels  []Level `json:"levels"`
		Dead    []int   `json:"dead_channels,omitempty"` // silent for a minute while others carry sound
		Fault   string  `json:"fault,omitempty"`
		Array   *Array  `json:"array,omitempty"` // the microphone-array processing, when configured
	} `json:"microphone"`
	Disk struct {
		FreeMB  uint64 `json:"free_mb"`
		TotalMB uint64 `json:"total_mb"`
	} `json:"disk"`
	Clock struct {
		Synced bool   `json:"synced"`
		Source string `json:"source"`
	} `json:"clock"`
	LED struct {
		Pattern string `json:"pattern"`
		Color   string `json:"color"`
	} `json:"led"`
	// Uplink is the MQTT link to the hub; nil when the box runs offline
	// (no uplink.broker).
	Uplink *Uplink `json:"uplink,omitempty"`
	Upload *Upload `json:"upload,omitempty"`
	// Live lists the live views.
	Live *live.Status `json:"live,omitempty"`
	// Config is the hub's configuration: the version applied, one waiting
	// for the lesson to end, the last one refused and why.
	Config *wire.ConfigStatus `json:"config,omitempty"`
}

// Uplink is the MQTT link's state.
type Uplink struct {
	Broker    string  `json:"broker"`
	Connected bool    `json:"connected"`
	Outbox    int     `json:"outbox"` // events and replies waiting for the broker's acknowledgement
	LastError string  `json:"last_error,omitempty"`
	Since     float64 `json:"since_seconds"` // in the current connected or disconnected state
}

// Upload is what waits to go to the hub.
type Upload struct {
	BacklogSegments int   `json:"backlog_segments"` // media segments the hub has not verified
	BacklogFiles    int   `json:"backlog_files"`    // every file the hub has not verified
	BacklogBytes    int64 `json:"backlog_bytes"`
	// Damaged counts segments found damaged on the box's storage since the
	// daemon started (their bytes changed after they were written);
	// Problem describes the latest.
	Damaged int    `json:"damaged,omitempty"`
	Problem string `json:"problem,omitempty"`
	// Window: "open", "closed" (outside uplink.upload_windows) or "clock
	// not synced" (the windows cannot be judged; uploads run); empty
	// without windows.
	Window string `json:"window,omitempty"`
}

// Daemon is what the API serves.
type Daemon interface {
	Status() Status
	Start(ctx context.Context, req recorder.StartRequest) (recorder.StartResult, error)
	Stop(ctx context.Context, req recorder.StopRequest) (lesson.Meta, error)
	Lessons() ([]catalog.Lesson, error)
	Lesson(id string) (lesson.Meta, error)
	Export(id string, w io.Writer) error
	// Press presses the simulated button for the given time (sim only).
	Press(ctx context.Context, hold time.Duration) error
}

// ErrNoSimButton is returned by Press on a box with a real button.
var ErrNoSimButton = errors.New("this box has no simulated button (hardware.profile is not sim)")

// StartBody is the body of POST /v1/record/start.
type StartBody struct {
	By         string `json:"by"`
	Visibility string `json:"visibility"`
}

// StartReply answers a start.
type StartReply struct {
	Lesson       string  `json:"lesson"`
	FirstFrameMS float64 `json:"first_frame_ms"`
}

// StopBody is the body of POST /v1/record/stop.
type StopBody struct {
	By string `json:"by"`
}

// PressBody is the body of POST /v1/sim/press.
type PressBody struct {
	HoldSeconds float64 `json:"hold_seconds"`
}

type errorBody struct {
	Error string `json:"error"`
}

// Server serves the API on a unix socket.
type Server struct {
	path string
	d    Daemon
	log  *slog.Logger
}

// NewServer returns a server for daemon d on socket path.
func NewServer(path string, d Daemon, log *slog.Logger) *Server {
	return &Server{path: path, d: d, log: log}
}

// ErrAlreadyRunning is returned when another daemon answers on the socket.
var ErrAlreadyRunning = errors.New("another classcapd is already running on this data directory")

// Listen opens the socket (mode 0660), replacing a stale one left by a
// crash but never one a live daemon answers on.
func (s *Server) Listen() (net.Listener, error) {
	if c, err := net.DialTimeout("unix", s.path, time.Second); err == nil {
		c.Close()
		return nil, fmt.Errorf("listen %s: %w", s.path, ErrAlreadyRunning)
	}
	if err := os.Remove(s.path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("remove stale socket: %w", err)
	}
	ln, err := net.Listen("unix", s.path)
	if err != nil {
		return nil, fmt.Errorf("listen %s: %w", s.path, err)
	}
	if err := os.Chmod(s.path, 0o660); err != nil {
		ln.Close()
		return nil, fmt.Errorf("chmod %s: %w", s.path, err)
	}
	return ln, nil
}

// Serve answers requests on ln until ctx ends.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	}()
	err := srv.Serve(ln)
	os.Remove(s.path)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// Handler returns the API's routes.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/status", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, s.d.Status())
	})
	mux.HandleFunc("POST /v1/record/start", func(w http.ResponseWriter, r *http.Request) {
		var b StartBody
		if !readJSON(w, r, &b) {
			return
		}
		if b.By == "" {
			b.By = "cli"
		}
		res, err := s.d.Start(r.Context(), recorder.StartRequest{By: b.By, Visibility: b.Visibility})
		if err != nil {
			writeError(w, err)
			return
		}
		writeJSON(w, http.StatusOK, StartReply{Lesson: res.LessonID, FirstFrameMS: float64(res.FirstFrameLatency.Microseconds()) / 1000})
	})
	mux.HandleFunc("POST /v1/record/stop", func(w http.ResponseWriter, r *http.Request) {
		var b StopBody
		if !readJSON(w, r, &b) {
			return
		}
		if b.By == "" {
			b.By = "cli"
		}
		m, err := s.d.Stop(r.Context(), recorder.StopRequest{By: b.By, Reason: "stop requested"})
		if err != nil {
			writeError(w, err)
			return
		}
		writeJSON(w, http.StatusOK, m)
	})
	mux.HandleFunc("GET /v1/lessons", func(w http.ResponseWriter, r *http.Request) {
		ls, err := s.d.Lessons()
		if err != nil {
			writeError(w, err)
			return
		}
		if ls == nil {
			ls = []catalog.Lesson{}
		}
		writeJSON(w, http.StatusOK, ls)
	})
	mux.HandleFunc("GET /v1/lessons/{id}", func(w http.ResponseWriter, r *http.Request) {
		m, err := s.d.Lesson(r.PathValue("id"))
		if err != nil {
			writeError(w, err)
			return
		}
		writeJSON(w, http.StatusOK, m)
	})
	mux.HandleFunc("GET /v1/lessons/{id}/export", func(w http.ResponseWriter, r *http.Request) {
		id := r.PathValue("id")
		if _, err := s.d.Lesson(id); err != nil {
			writeError(w, err)
			return
		}
		w.Header().Set("Content-Type", "video/mp4")
		if err := s.d.Export(id, w); err != nil {
			// Headers are gone; cut the body so the client sees a short read.
			s.log.Error("export failed", "lesson", id, "err", err)
			panic(http.ErrAbortHandler)
		}
	})
	mux.HandleFunc("POST /v1/sim/press", func(w http.ResponseWriter, r *http.Request) {
		var b PressBody
		if !readJSON(w, r, &b) {
			return
		}
		if b.HoldSeconds < 0 || b.HoldSeconds > 60 {
			writeJSON(w, http.StatusBadRequest, errorBody{fmt.Sprintf("hold_seconds %g is outside 0..60", b.HoldSeconds)})
			return
		}
		hold := time.Duration(b.HoldSeconds * float64(time.Second))
		if err := s.d.Press(r.Context(), hold); err != nil {
			writeError(w, err)
			return
		}
		writeJSON(w, http.StatusOK, struct{}{})
	})
	return mux
}

func readJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<16))
	if err != nil {
		writeJSON(w, http.StatusBadRequest, errorBody{"read body: " + err.Error()})
		return false
	}
	if len(body) == 0 {
		return true
	}
	dec := json.NewDecoder(bytesReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		writeJSON(w, http.StatusBadRequest, errorBody{"bad request body: " + err.Error()})
		return false
	}
	return true
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

func writeError(w http.ResponseWriter, err error) {
	code := http.StatusInternalServerError
	switch {
	case errors.Is(err, lesson.ErrNotFound):
		code = http.StatusNotFound
	case errors.Is(err, recorder.ErrRecording), errors.Is(err, recorder.ErrNotRecording):
		code = http.StatusConflict
	case errors.Is(err, recorder.ErrDiskLow):
		code = http.StatusInsufficientStorage
	case errors.Is(err, recorder.ErrBadRequest):
		code = http.StatusBadRequest
	case errors.Is(err, recorder.ErrNoVideo):
		code = http.StatusServiceUnavailable
	case errors.Is(err, ErrNoSimButton):
		code = http.StatusNotImplemented
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		code = http.StatusServiceUnavailable
	}
	writeJSON(w, code, errorBody{err.Error()})
}
