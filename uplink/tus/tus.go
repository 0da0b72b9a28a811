// Package tus is the box's client of the tus 1.0 resumable upload protocol
// (core and creation): POST creates an upload with its length and metadata,
// HEAD learns how many bytes the server holds, PATCH sends the rest from
// there in chunks. A cut connection costs at most the chunk in flight: the
// client asks for the offset again and carries on. Transient failures are
// retried with jittered exponential backoff.
package tus

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Version is the protocol version sent in Tus-Resumable.
const Version = "1.0.0"

// StoredHeader is set by the classcap hub on a creation request for a file
// it already holds, verified, with the SHA-256 the value names: nothing is
// created and nothing needs to be sent.
const StoredHeader = "Classcap-Stored"

// StatusChecksumMismatch is what the hub answers to the PATCH that completes
// an upload whose bytes do not have the announced SHA-256 (as in the tus
// checksum extension). The upload is discarded; the file must be sent again.
const StatusChecksumMismatch = 460

// Errors a caller can act on.
var (
	// ErrGone: the server no longer has the upload (404/410); create a new one.
	ErrGone = errors.New("upload gone")
	// ErrOffsetMismatch: the PATCH offset was not the server's (409).
	ErrOffsetMismatch = errors.New("offset mismatch")
	// ErrChecksumMismatch: the server rejected the finished bytes.
	ErrChecksumMismatch = errors.New("checksum mismatch")
	// ErrRejected: the server refused the request for good (bad or expired
	// token, bad metadata, too large); retrying the same request is useless.
	ErrRejected = errors.New("rejected")
)

// StatusError is an unexpected HTTP answer.
type StatusError struct {
	Op     string
	Status int
	Body   string
}

func (e *StatusError) Error() string {
	if e.Body != "" {
		return fmt.Sprintf("%s: HTTP %d: %s", e.Op, e.Status, e.Body)
	}
	return fmt.Sprintf("%s: HTTP %d", e.Op, e.Status)
}

// Limiter paces the bytes sent (a bandwidth cap). WaitN blocks until n more
// bytes may go.
type Limiter interface {
	WaitN(ctx context.Context, n int) error
}

// Client talks tus to one kind of server. Its zero value is not usable:
// use New.
type Client struct {
	HTTP      *http.Client
	ChunkSize int64         // bytes per PATCH; default 1 MiB
	MinDelay  time.Duration // first retry delay; default 250 ms
	MaxDelay  time.Duration // retry delay cap; default 30 s
	// MaxFailures ends Send after that many failures in a row without
	// progress (0: retry until the context ends).
	MaxFailures int
	Limiter     Limiter // nil: no cap
	Log         *slog.Logger
}

// New returns a client with the defaults.
func New(log *slog.Logger) *Client {
	return &Client{
		HTTP:      &http.Client{Timeout: 2 * time.Minute},
		ChunkSize: 1 << 20,
		MinDelay:  250 * time.Millisecond,
		MaxDelay:  30 * time.Second,
		Log:       log,
	}
}

// EncodeMetadata returns an Upload-Metadata value (keys sorted).
func EncodeMetadata(m map[string]string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, k+" "+base64.StdEncoding.EncodeToString([]byte(m[k])))
	}
	return strings.Join(parts, ",")
}

// DecodeMetadata parses an Upload-Metadata value.
func DecodeMetadata(h string) (map[string]string, error) {
	m := map[string]string{}
	if strings.TrimSpace(h) == "" {
		return m, nil
	}
	for _, part := range strings.Split(h, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(part), " ")
		if k == "" || strings.ContainsAny(k, " \t") {
			return nil, fmt.Errorf("upload metadata: bad key in %q", part)
		}
		if _, dup := m[k]; dup {
			return nil, fmt.Errorf("upload metadata: key %q twice", k)
		}
		b, err := base64.StdEncoding.DecodeString(v)
		if err != nil {
			return nil, fmt.Errorf("upload metadata: value of %q: %w", k, err)
		}
		m[k] = string(b)
	}
	return m, nil
}

func (c *Client) do(ctx context.Context, op, method, target, token string, hdr map[string]string, body io.Reader, n int64) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, target, body)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	req.Header.Set("Tus-Resumable", Version)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	if body != nil {
		req.ContentLength = n
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	return resp, nil
}

// drain reads a little of the body (for the error text) and closes it so
// the connection can be reused.
func drain(resp *http.Response) string {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	return strings.TrimSpace(string(b))
}

func statusErr(op string, resp *http.Response, body string) error {
	se := &StatusError{Op: op, Status: resp.StatusCode, Body: body}
	switch resp.StatusCode {
	case http.StatusNotFound, http.StatusGone:
		return fmt.Errorf("%w: %w", ErrGone, se)
	case http.StatusConflict:
		return fmt.Errorf("%w: %w", ErrOffsetMismatch, se)
	case StatusChecksumMismatch:
		return fmt.Errorf("%w: %w", ErrChecksumMismatch, se)
	case http.StatusBadRequest, http.StatusUnauthorized, http.StatusForbidden,
		http.StatusRequestEntityTooLarge, http.StatusPreconditionFailed, http.StatusUnprocessableEntity:
		return fmt.Errorf("%w: %w", ErrRejected, se)
	}
	return se
}

// Create makes a new upload of length bytes at endpoint and returns its URL.
// When the server already holds the file verified (StoredHeader), stored is
// true and no upload is made.
func (c *Client) Create(ctx context.Context, endpoint, token string, length int64, meta map[string]string) (uploadURL string, stored string, err error) {
	op := "tus create " + endpoint
	resp, err := c.do(ctx, op, http.MethodPost, endpoint, token, map[string]string{
		"Upload-Length":   strconv.FormatInt(length, 10),
		"Upload-Metadata": EncodeMetadata(meta),
	}, nil, 0)
	if err != nil {
		return "", "", err
	}
	body := drain(resp)
	if s := resp.Header.Get(StoredHeader); s != "" && resp.StatusCode < 300 {
		return "", s, nil
	}
	if resp.StatusCode == http.StatusConflict {
		// A conflict at creation (other bytes stored under this name) will
		// not go away by retrying.
		return "", "", fmt.Errorf("%w: %w", ErrRejected, &StatusError{Op: op, Status: resp.StatusCode, Body: body})
	}
	if resp.StatusCode != http.StatusCreated {
		return "", "", statusErr(op, resp, body)
	}
	loc := resp.Header.Get("Location")
	if loc == "" {
		return "", "", fmt.Errorf("%s: no Location in the answer", op)
	}
	base, err := url.Parse(endpoint)
	if err != nil {
		return "", "", fmt.Errorf("%s: %w", op, err)
	}
	u, err := base.Parse(loc)
	if err != nil {
		return "", "", fmt.Errorf("%s: bad Location %q: %w", op, loc, err)
	}
	return u.String(), "", nil
}

// Offset asks the server how many bytes of the upload it holds.
func (c *Client) Offset(ctx context.Context, uploadURL, token string) (int64, error) {
	op := "tus head " + uploadURL
	resp, err := c.do(ctx, op, http.MethodHead, uploadURL, token, nil, nil, 0)
	if err != nil {
		return 0, err
	}
	body := drain(resp)
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusNoContent {
		return 0, statusErr(op, resp, body)
	}
	off, err := strconv.ParseInt(resp.Header.Get("Upload-Offset"), 10, 64)
	if err != nil || off < 0 {
		return 0, fmt.Errorf("%s: bad Upload-Offset %q", op, resp.Header.Get("Upload-Offset"))
	}
	return off, nil
}

// Patch sends n bytes of body as the bytes from offset and returns the
// server's new offset.
func (c *Client) Patch(ctx context.Context, uploadURL, token string, offset int64, body io.Reader, n int64) (int64, error) {
	op := fmt.Sprintf("tus patch %s at %d", uploadURL, offset)
	if c.Limiter != nil {
		body = &limitedReader{ctx: ctx, r: body, l: c.Limiter}
	}
	resp, err := c.do(ctx, op, http.MethodPatch, uploadURL, token, map[string]string{
		"Upload-Offset": strconv.FormatInt(offset, 10),
		"Content-Type":  "application/offset+octet-stream",
	}, body, n)
	if err != nil {
		return 0, err
	}
	text := drain(resp)
	if resp.StatusCode != http.StatusNoContent && resp.StatusCode != http.StatusOK {
		return 0, statusErr(op, resp, text)
	}
	off, err := strconv.ParseInt(resp.Header.Get("Upload-Offset"), 10, 64)
	if err != nil || off < offset {
		return 0, fmt.Errorf("%s: bad Upload-Offset %q", op, resp.Header.Get("Upload-Offset"))
	}
	return off, nil
}

type limitedReader struct {
	ctx context.Context
	r   io.Reader
	l   Limiter
}

func (lr *limitedReader) Read(p []byte) (int, error) {
	if len(p) > 32<<10 {
		p = p[:32<<10]
	}
	if err := lr.l.WaitN(lr.ctx, len(p)); err != nil {
		return 0, err
	}
	return lr.r.Read(p)
}

// File is one file to send.
type File struct {
	Endpoint string            // creation URL
	Token    string            // sent as a bearer token on every request
	Length   int64             // bytes
	Metadata map[string]string // Upload-Metadata
	Body     io.ReaderAt       // the bytes; read again after every interruption
	// URL is the upload made for this file earlier (persisted by the
	// caller), or empty; Send sets it when it creates one.
	URL string
}

// Observer hears about a transfer's progress, so a caller can persist the
// upload URL and offset. Either field may be nil.
type Observer struct {
	Created  func(uploadURL string) error // a new upload exists (persist it before sending)
	Progress func(offset int64)           // the server holds offset bytes
}

// Result says how a Send went.
type Result struct {
	AlreadyStored bool  // the server had the file: nothing was sent
	Sent          int64 // body bytes written to the network, resent ones included
	Attempts      int   // requests that failed and were retried
	Created       int   // uploads created (more than one: gone or rejected on the way)
	Rejected      int   // times the server rejected the finished bytes (checksum)
}

// Send delivers f: it resumes f.URL when set, creates an upload otherwise,
// and PATCHes from the server's offset until the server holds every byte
// and accepted them. It retries transient failures with backoff until ctx
// ends or MaxFailures is reached; ErrRejected ends it at once.
func (c *Client) Send(ctx context.Context, f *File, obs Observer) (Result, error) {
	var res Result
	chunk := c.ChunkSize
	if chunk <= 0 {
		chunk = 1 << 20
	}
	failures := 0
	fail := func(err error) error {
		failures++
		res.Attempts++
		if c.MaxFailures > 0 && failures >= c.MaxFailures {
			return fmt.Errorf("tus send %s after %d failures: %w", f.Metadata["filename"], failures, err)
		}
		d := c.delay(failures)
		if c.Log != nil {
			c.Log.Debug("upload failed; retrying", "file", f.Metadata["filename"], "err", err, "in", d)
		}
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-ctx.Done():
			return fmt.Errorf("tus send %s: %w (last error: %w)", f.Metadata["filename"], ctx.Err(), err)
		case <-t.C:
			return nil
		}
	}
	offset := int64(-1)
	for {
		if err := ctx.Err(); err != nil {
			return res, fmt.Errorf("tus send %s: %w", f.Metadata["filename"], err)
		}
		if f.URL == "" {
			u, stored, err := c.Create(ctx, f.Endpoint, f.Token, f.Length, f.Metadata)
			if err == nil && stored != "" {
				if want := f.Metadata["sha256"]; want != "" && stored != want {
					return res, fmt.Errorf("tus send %s: the server holds other bytes under this name (sha256 %s)", f.Metadata["filename"], stored)
				}
				res.AlreadyStored = true
				return res, nil
			}
			if err == nil && obs.Created != nil {
				err = obs.Created(u)
			}
			if err != nil {
				if errors.Is(err, ErrRejected) {
					return res, err
				}
				if ferr := fail(err); ferr != nil {
					return res, ferr
				}
				continue
			}
			f.URL = u
			res.Created++
			offset = 0
		}
		if offset < 0 {
			off, err := c.Offset(ctx, f.URL, f.Token)
			if err != nil {
				if errors.Is(err, ErrGone) {
					// Finished and moved away (verified), discarded after a
					// checksum failure, or expired: ask the creation endpoint,
					// which knows whether the file is stored.
					f.URL = ""
					continue
				}
				if errors.Is(err, ErrRejected) {
					return res, err
				}
				if ferr := fail(err); ferr != nil {
					return res, ferr
				}
				continue
			}
			if off > f.Length {
				return res, fmt.Errorf("tus send %s: server holds %d bytes of %d", f.Metadata["filename"], off, f.Length)
			}
			offset = off
			if obs.Progress != nil {
				obs.Progress(offset)
			}
			if offset == f.Length {
				// Every byte is there, but the finishing PATCH's answer was
				// lost: the creation endpoint says whether it was accepted.
				f.URL = ""
				continue
			}
		}
		n := min(chunk, f.Length-offset)
		cr := &countingReader{r: io.NewSectionReader(f.Body, offset, n)}
		off, err := c.Patch(ctx, f.URL, f.Token, offset, cr, n)
		res.Sent += cr.n
		if err != nil {
			offset = -1 // ask again
			switch {
			case errors.Is(err, ErrChecksumMismatch):
				if c.Log != nil {
					c.Log.Warn("server rejected the bytes of an upload; sending it again", "file", f.Metadata["filename"], "err", err)
				}
				f.URL = ""
				res.Rejected++
				if ferr := fail(err); ferr != nil {
					return res, ferr
				}
			case errors.Is(err, ErrGone):
				f.URL = ""
			case errors.Is(err, ErrRejected):
				return res, err
			default:
				if ferr := fail(err); ferr != nil {
					return res, ferr
				}
			}
			continue
		}
		if off > offset {
			failures = 0
		}
		offset = off
		if obs.Progress != nil {
			obs.Progress(offset)
		}
		if offset == f.Length {
			return res, nil
		}
	}
}

// delay is the wait before retry number n (1-based): exponential from
// MinDelay, capped at MaxDelay, with full jitter in its upper half.
func (c *Client) delay(n int) time.Duration {
	lo, hi := c.MinDelay, c.MaxDelay
	if lo <= 0 {
		lo = 250 * time.Millisecond
	}
	if hi < lo {
		hi = lo
	}
	d := lo
	for i := 1; i < n && d < hi; i++ {
		d *= 2
	}
	d = min(d, hi)
	return d/2 + rand.N(d/2+1)
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}
