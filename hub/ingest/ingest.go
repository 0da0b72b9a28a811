// Package ingest is the hub's side of uploads: tusd embedded (filestore)
// behind two checks. Before an upload is created, its bearer token must be
// a valid, unexpired grant (HMAC-signed: device, lesson, file, size,
// SHA-256) matching the upload's length and metadata; a file the hub
// already holds verified is answered with the Classcap-Stored header and
// nothing is created. Before an upload is finished, the stored bytes are
// read again and must have the granted size and SHA-256; a mismatch
// discards the upload (the box sends the file again). Verified files are
// moved crash-safely into the hub's lesson store under their names on the
// box; storing the same file twice is impossible.
package ingest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/tus/tusd/v2/pkg/filestore"
	"github.com/tus/tusd/v2/pkg/handler"
	expslog "golang.org/x/exp/slog"

	"github.com/classcap/classcap/capture/lesson"
	"github.com/classcap/classcap/uplink/tus"
)

// Metadata keys of an upload (Upload-Metadata).
const (
	MetaFilename = "filename"
	MetaLesson   = "lesson"
	MetaSegment  = "segment" // segment number, 0 for the other files
	MetaSHA256   = "sha256"
)

// Config configures an Ingest.
type Config struct {
	UploadDir string // tusd's filestore (partial uploads)
	Store     *Store // where verified files go
	BasePath  string // URL path the handler is mounted at, e.g. "/tus/"
	Key       []byte // HMAC key of upload tokens
	MaxSize   int64  // largest file accepted; 0: 1 GiB
	Log       *slog.Logger
	Now       func() time.Time // default time.Now
	// Verified is called after a file was stored (or found stored) and
	// verified; it may be nil.
	Verified func(device, lessonID string, f File)
}

// Ingest is the tus endpoint of the hub.
type Ingest struct {
	cfg   Config
	fs    filestore.FileStore
	h     *handler.Handler
	log   *slog.Logger
	now   func() time.Time
	ready chan struct{}
}

// New makes the tus handler and finishes the uploads a crash left with
// every byte but not verified.
func New(cfg Config) (*Ingest, error) {
	if cfg.Store == nil || cfg.UploadDir == "" || len(cfg.Key) < 16 {
		return nil, errors.New("ingest: need an upload dir, a store and a key of at least 16 bytes")
	}
	if cfg.BasePath == "" {
		cfg.BasePath = "/tus/"
	}
	if !strings.HasSuffix(cfg.BasePath, "/") {
		cfg.BasePath += "/"
	}
	if cfg.MaxSize <= 0 {
		cfg.MaxSize = 1 << 30
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if err := os.MkdirAll(cfg.UploadDir, 0o755); err != nil {
		return nil, fmt.Errorf("ingest: %w", err)
	}
	in := &Ingest{cfg: cfg, fs: filestore.New(cfg.UploadDir), log: cfg.Log, now: cfg.Now}
	composer := handler.NewStoreComposer()
	in.fs.UseIn(composer)
	newLocker().UseIn(composer)
	// tusd logs every request at info: keep its warnings only.
	tusLog := expslog.New(tusLogHandler{cfg.Log.Handler()})
	h, err := handler.NewHandler(handler.Config{
		BasePath:                  cfg.BasePath,
		StoreComposer:             composer,
		MaxSize:                   cfg.MaxSize,
		DisableDownload:           true,
		DisableConcatenation:      true,
		PreUploadCreateCallback:   in.preCreate,
		PreFinishResponseCallback: in.preFinish,
		Logger:                    tusLog,
		NetworkTimeout:            15 * time.Second,
		AcquireLockTimeout:        20 * time.Second,
	})
	if err != nil {
		return nil, fmt.Errorf("ingest: tus handler: %w", err)
	}
	in.h = h
	in.recover()
	return in, nil
}

// Handler serves tus; mount it at the base path (mux.Handle(BasePath, h)).
func (in *Ingest) Handler() http.Handler { return http.StripPrefix(in.cfg.BasePath, in.h) }

// Grant returns a token for one file, valid for ttl.
func (in *Ingest) Grant(g Grant, ttl time.Duration) string {
	g.Expires = in.now().Add(ttl).UTC().Truncate(time.Second)
	return Sign(in.cfg.Key, g)
}

// Store is the lesson store files go to.
func (in *Ingest) Store() *Store { return in.cfg.Store }

func reject(code string, status int, format string, args ...any) handler.Error {
	return handler.NewError(code, fmt.Sprintf(format, args...), status)
}

func bearer(h http.Header) string {
	a := h.Get("Authorization")
	if t, ok := strings.CutPrefix(a, "Bearer "); ok {
		return strings.TrimSpace(t)
	}
	return ""
}

// preCreate checks the token against the upload, and answers "stored" for
// a file already verified.
func (in *Ingest) preCreate(ev handler.HookEvent) (handler.HTTPResponse, handler.FileInfoChanges, error) {
	none := handler.FileInfoChanges{}
	tok := bearer(http.Header(ev.HTTPRequest.Header))
	if tok == "" {
		return handler.HTTPResponse{}, none, reject("ERR_NO_TOKEN", http.StatusUnauthorized, "no upload token")
	}
	g, err := ParseToken(in.cfg.Key, tok, in.now())
	if err != nil {
		return handler.HTTPResponse{}, none, reject("ERR_BAD_TOKEN", http.StatusForbidden, "%v", err)
	}
	md := ev.Upload.MetaData
	switch {
	case ev.Upload.SizeIsDeferred || ev.Upload.Size != g.Size:
		return handler.HTTPResponse{}, none, reject("ERR_GRANT_MISMATCH", http.StatusForbidden, "Upload-Length %d, grant is for %d bytes", ev.Upload.Size, g.Size)
	case md[MetaLesson] != g.Lesson || md[MetaFilename] != g.File || md[MetaSHA256] != g.SHA256:
		return handler.HTTPResponse{}, none, reject("ERR_GRANT_MISMATCH", http.StatusForbidden,
			"metadata (lesson %q, file %q, sha256 %q) is not what the grant is for", md[MetaLesson], md[MetaFilename], md[MetaSHA256])
	case !lesson.ValidID(g.Lesson) || !ValidName(g.File) || !ValidSHA256(g.SHA256):
		return handler.HTTPResponse{}, none, reject("ERR_BAD_METADATA", http.StatusBadRequest, "bad lesson id, file name or sha256")
	}
	f, ok, err := in.cfg.Store.Lookup(g.Lesson, g.File)
	if err != nil {
		return handler.HTTPResponse{}, none, err
	}
	if ok {
		if f.SHA256 == g.SHA256 {
			if in.cfg.Verified != nil {
				in.cfg.Verified(g.Device, g.Lesson, f)
			}
			e := reject("ERR_ALREADY_STORED", http.StatusOK, "%s/%s is stored and verified", g.Lesson, g.File)
			e.HTTPResponse.Header[tus.StoredHeader] = f.SHA256
			return handler.HTTPResponse{}, none, e
		}
		if !mutable(g.File) {
			return handler.HTTPResponse{}, none, reject("ERR_CONFLICT", http.StatusConflict, "%s/%s is stored with sha256 %s", g.Lesson, g.File, f.SHA256)
		}
	}
	// Keep the device with the upload for the finish step.
	meta := map[string]string{}
	for k, v := range md {
		meta[k] = v
	}
	meta["device"] = g.Device
	return handler.HTTPResponse{}, handler.FileInfoChanges{MetaData: meta}, nil
}

// preFinish re-reads the stored bytes and checks them; a verified file goes
// to the lesson store, a bad one is discarded.
func (in *Ingest) preFinish(ev handler.HookEvent) (handler.HTTPResponse, error) {
	if err := in.finish(ev.Upload); err != nil {
		return handler.HTTPResponse{}, err
	}
	return handler.HTTPResponse{}, nil
}

func (in *Ingest) finish(info handler.FileInfo) error {
	md := info.MetaData
	path := info.Storage[filestore.StorageKeyPath]
	lessonID, name, want := md[MetaLesson], md[MetaFilename], md[MetaSHA256]
	log := in.log.With("lesson", lessonID, "file", name, "upload", info.ID)
	sum, size, err := hashFile(path)
	if err != nil {
		return fmt.Errorf("ingest: verify %s/%s: %w", lessonID, name, err)
	}
	if sum != want || size != info.Size {
		log.Warn("upload rejected: bytes do not match", "sha256", sum, "want_sha256", want, "bytes", size, "want_bytes", info.Size)
		in.discard(info)
		return reject("ERR_CHECKSUM_MISMATCH", tus.StatusChecksumMismatch,
			"%s/%s: received %d bytes with sha256 %s, want %d bytes with %s", lessonID, name, size, sum, info.Size, want)
	}
	f := File{Name: name, Size: size, SHA256: sum}
	dup, err := in.cfg.Store.Put(lessonID, f, path)
	if err != nil {
		if errors.Is(err, ErrConflict) {
			in.discard(info)
			return reject("ERR_CONFLICT", http.StatusConflict, "%v", err)
		}
		return fmt.Errorf("ingest: %w", err)
	}
	// The bytes are in the lesson store: the upload is done with. A client
	// that missed this answer finds it gone and is told "stored" on
	// creation.
	in.discard(info)
	log.Info("file verified", "bytes", size, "duplicate", dup)
	if in.cfg.Verified != nil {
		in.cfg.Verified(md["device"], lessonID, f)
	}
	return nil
}

// discard removes an upload from tusd's store: its bytes (unless already
// moved to the lesson store), then its info file.
func (in *Ingest) discard(info handler.FileInfo) {
	for _, p := range []string{info.Storage[filestore.StorageKeyPath], info.Storage[filestore.StorageKeyInfoPath]} {
		if p == "" {
			continue
		}
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			in.log.Warn("discard upload", "upload", info.ID, "err", err)
		}
	}
}

// recover finishes uploads that hold every byte but were not verified (the
// hub stopped between the last byte and the check).
func (in *Ingest) recover() {
	infos, _ := filepath.Glob(filepath.Join(in.cfg.UploadDir, "*.info"))
	for _, p := range infos {
		id := strings.TrimSuffix(filepath.Base(p), ".info")
		up, err := in.fs.GetUpload(context.Background(), id)
		if err != nil {
			continue
		}
		info, err := up.GetInfo(context.Background())
		if err != nil || info.SizeIsDeferred || info.Offset != info.Size {
			continue
		}
		if err := in.finish(info); err != nil {
			in.log.Warn("finishing an upload left complete", "upload", id, "err", err)
		}
	}
}

// ParseSegment returns the segment number in an upload's metadata (0 when
// absent).
func ParseSegment(md map[string]string) int {
	n, _ := strconv.Atoi(md[MetaSegment])
	return n
}

// tusLogHandler hands tusd's warnings and errors (it logs every request at
// info) to our logger; tusd logs through golang.org/x/exp/slog.
type tusLogHandler struct{ h slog.Handler }

func (t tusLogHandler) Enabled(ctx context.Context, l expslog.Level) bool {
	return l >= expslog.LevelWarn && t.h.Enabled(ctx, slog.Level(l))
}

func (t tusLogHandler) Handle(ctx context.Context, r expslog.Record) error {
	rec := slog.NewRecord(r.Time, slog.Level(r.Level), "tusd: "+r.Message, r.PC)
	r.Attrs(func(a expslog.Attr) bool {
		rec.AddAttrs(slog.Any(a.Key, a.Value.Any()))
		return true
	})
	return t.h.Handle(ctx, rec)
}

func (t tusLogHandler) WithAttrs(as []expslog.Attr) expslog.Handler {
	out := make([]slog.Attr, 0, len(as))
	for _, a := range as {
		out = append(out, slog.Any(a.Key, a.Value.Any()))
	}
	return tusLogHandler{t.h.WithAttrs(out)}
}

func (t tusLogHandler) WithGroup(n string) expslog.Handler { return tusLogHandler{t.h.WithGroup(n)} }
