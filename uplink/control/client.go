package control

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"syscall"

	"github.com/classcap/classcap/capture/catalog"
	"github.com/classcap/classcap/capture/lesson"
)

func bytesReader(b []byte) io.Reader { return bytes.NewReader(b) }

// Client talks to classcapd over its socket.
type Client struct {
	path string
	http *http.Client
}

// NewClient returns a client for the daemon listening on socket path.
func NewClient(path string) *Client {
	return &Client{path: path, http: &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", path)
		},
	}}}
}

// APIError is an error the daemon answered with.
type APIError struct {
	Code    int
	Message string
}

func (e *APIError) Error() string { return e.Message }

func (c *Client) do(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://classcapd"+path, rd)
	if err != nil {
		return err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return c.connError(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		var eb errorBody
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
		if json.Unmarshal(b, &eb) != nil || eb.Error == "" {
			eb.Error = fmt.Sprintf("classcapd answered %s", resp.Status)
		}
		return &APIError{Code: resp.StatusCode, Message: eb.Error}
	}
	if out == nil {
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("read classcapd's answer: %w", err)
	}
	return nil
}

func (c *Client) connError(err error) error {
	if errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ECONNREFUSED) {
		return fmt.Errorf("classcapd is not running (nothing answers on %s)", c.path)
	}
	if errors.Is(err, syscall.EACCES) {
		return fmt.Errorf("no permission to use %s (run as root or join the classcap group)", c.path)
	}
	return fmt.Errorf("talk to classcapd on %s: %w", c.path, err)
}

// Status returns the daemon's status.
func (c *Client) Status(ctx context.Context) (Status, error) {
	var s Status
	err := c.do(ctx, http.MethodGet, "/v1/status", nil, &s)
	return s, err
}

// Start starts a recording; it returns once the first picture is taken.
func (c *Client) Start(ctx context.Context, b StartBody) (StartReply, error) {
	var r StartReply
	err := c.do(ctx, http.MethodPost, "/v1/record/start", b, &r)
	return r, err
}

// Stop ends the recording.
func (c *Client) Stop(ctx context.Context, b StopBody) (lesson.Meta, error) {
	var m lesson.Meta
	err := c.do(ctx, http.MethodPost, "/v1/record/stop", b, &m)
	return m, err
}

// Lessons lists the lessons on the box.
func (c *Client) Lessons(ctx context.Context) ([]catalog.Lesson, error) {
	var ls []catalog.Lesson
	err := c.do(ctx, http.MethodGet, "/v1/lessons", nil, &ls)
	return ls, err
}

// Lesson returns one lesson's record.
func (c *Client) Lesson(ctx context.Context, id string) (lesson.Meta, error) {
	var m lesson.Meta
	err := c.do(ctx, http.MethodGet, "/v1/lessons/"+id, nil, &m)
	return m, err
}

// Press presses the simulated button; it returns once released.
func (c *Client) Press(ctx context.Context, holdSeconds float64) error {
	return c.do(ctx, http.MethodPost, "/v1/sim/press", PressBody{HoldSeconds: holdSeconds}, nil)
}

// Export streams the lesson as one MP4 file into w.
func (c *Client) Export(ctx context.Context, id string, w io.Writer) error {
	if _, err := c.Lesson(ctx, id); err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://classcapd/v1/lessons/"+id+"/export", nil)
	if err != nil {
		return err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return c.connError(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return &APIError{Code: resp.StatusCode, Message: fmt.Sprintf("export %s: classcapd answered %s", id, resp.Status)}
	}
	if _, err := io.Copy(w, resp.Body); err != nil {
		return fmt.Errorf("export %s: %w", id, err)
	}
	return nil
}
