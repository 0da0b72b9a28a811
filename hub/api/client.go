package api

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/classcap/classcap/hub/registry"
	"github.com/classcap/classcap/uplink/wire"
)

// Client speaks the API for classcapctl's remote verbs.
type Client struct {
	base  string // http://host:port, no trailing slash
	token string
	http  *http.Client
}

// NewClient returns a client of the hub at base (e.g. http://hub:8080)
// sending token.
func NewClient(base, token string) (*Client, error) {
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("hub URL %q: want http://host:port or https://host", base)
	}
	if token == "" {
		return nil, fmt.Errorf("no token: pass -token (classcap-hub token create prints one)")
	}
	// A remote start waits for the box (its veto window included).
	return &Client{base: strings.TrimRight(base, "/"), token: token,
		http: &http.Client{Timeout: MaxWait + 15*time.Second}}, nil
}

// StatusError is an API error answer.
type StatusError struct {
	Status  int    // HTTP status
	Code    string // the body's code
	Message string // the body's error
	Device  string
	// FromBox is true when the box itself refused.
	FromBox bool
}

func (e *StatusError) Error() string {
	msg := e.Message
	if e.FromBox {
		msg = "the box " + e.Device + " refused: " + msg
	}
	if e.Code != "" {
		msg += " (" + e.Code + ")"
	}
	return msg
}

// JSONBody returns in encoded as a request body, or nil when in is nil.
func JSONBody(in any) (io.Reader, error) {
	if in == nil {
		return nil, nil
	}
	b, err := json.Marshal(in)
	if err != nil {
		return nil, err
	}
	return bytes.NewReader(b), nil
}

func (c *Client) do(ctx context.Context, method, path string, in, out any) error {
	body, err := JSONBody(in)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	if resp.StatusCode/100 != 2 {
		var ce CommandError
		if json.Unmarshal(data, &ce) == nil && ce.Error != "" {
			return &StatusError{Status: resp.StatusCode, Code: ce.Code, Message: ce.Error, Device: ce.Device, FromBox: ce.FromBox}
		}
		return fmt.Errorf("%s %s: the hub answered %s", method, path, resp.Status)
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("%s %s: bad answer: %w", method, path, err)
	}
	return nil
}

// Devices lists the devices.
func (c *Client) Devices(ctx context.Context) ([]DeviceSummary, error) {
	var r struct {
		Devices []DeviceSummary `json:"devices"`
	}
	err := c.do(ctx, http.MethodGet, "/api/v1/devices", nil, &r)
	return r.Devices, err
}

// Device returns one device with its last state.
func (c *Client) Device(ctx context.Context, id string) (DeviceDetail, error) {
	var d DeviceDetail
	err := c.do(ctx, http.MethodGet, "/api/v1/devices/"+url.PathEscape(id), nil, &d)
	return d, err
}

// StartResponse is a successful remote start.
type StartResponse struct {
	CommandResponse
	Result wire.RecordStartResult `json:"result"`
}

// StopResponse is a successful remote stop.
type StopResponse struct {
	CommandResponse
	Result wire.RecordStopResult `json:"result"`
}

// RecordStart asks device to start recording and waits for its answer.
func (c *Client) RecordStart(ctx context.Context, id string, req RecordStartRequest) (StartResponse, error) {
	var r StartResponse
	err := c.do(ctx, http.MethodPost, "/api/v1/devices/"+url.PathEscape(id)+"/record/start", req, &r)
	return r, err
}

// RecordStop asks device to stop recording and waits for its answer.
func (c *Client) RecordStop(ctx context.Context, id string, req RecordStopRequest) (StopResponse, error) {
	var r StopResponse
	err := c.do(ctx, http.MethodPost, "/api/v1/devices/"+url.PathEscape(id)+"/record/stop", req, &r)
	return r, err
}

// Lessons lists the lessons devices reported (of one device when device is
// not empty).
func (c *Client) Lessons(ctx context.Context, device string) ([]registry.Lesson, error) {
	var r struct {
		Lessons []registry.Lesson `json:"lessons"`
	}
	path := "/api/v1/lessons"
	if device != "" {
		path += "?device=" + url.QueryEscape(device)
	}
	err := c.do(ctx, http.MethodGet, path, nil, &r)
	return r.Lessons, err
}

// Views lists the live views of device (the view log).
func (c *Client) Views(ctx context.Context, device string) ([]registry.View, error) {
	var r struct {
		Views []registry.View `json:"views"`
	}
	err := c.do(ctx, http.MethodGet, "/api/v1/devices/"+url.PathEscape(device)+"/views", nil, &r)
	return r.Views, err
}
