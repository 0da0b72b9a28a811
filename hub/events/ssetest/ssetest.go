// Package ssetest reads a text/event-stream (server-sent events) for tests
// of the hub's event stream: events in order, comments counted.
package ssetest

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// Event is one server-sent event.
type Event struct {
	Name string    // "message" when the stream names none
	Data string    // data lines joined by "\n"
	At   time.Time // when it was read whole
}

// Stream reads events from a response body in the background.
type Stream struct {
	events   chan Event
	comments chan string
	err      chan error
}

// Open GETs the event stream at url, with a bearer token unless token is
// empty, fails t unless it is answered 200 with text/event-stream, and
// reads it until the test ends.
func Open(t testing.TB, url, token string) *Stream {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("GET %s: %d %q %s", url, resp.StatusCode, resp.Header.Get("Content-Type"), b)
	}
	return Read(resp.Body)
}

// Read starts reading r; close r to stop it.
func Read(r io.Reader) *Stream {
	s := &Stream{events: make(chan Event, 1024), comments: make(chan string, 1024), err: make(chan error, 1)}
	go func() {
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 64<<10), 4<<20)
		var e Event
		var data []string
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				if data != nil {
					e.Data, e.At = strings.Join(data, "\n"), time.Now()
					if e.Name == "" {
						e.Name = "message"
					}
					s.events <- e
				}
				e, data = Event{}, nil
			case strings.HasPrefix(line, ":"):
				select {
				case s.comments <- strings.TrimSpace(line[1:]):
				default:
				}
			default:
				field, value, _ := strings.Cut(line, ":")
				value = strings.TrimPrefix(value, " ")
				switch field {
				case "event":
					e.Name = value
				case "data":
					data = append(data, value)
				}
			}
		}
		err := sc.Err()
		if err == nil {
			err = io.EOF
		}
		s.err <- err
	}()
	return s
}

// Next returns the next event, waiting at most d.
func (s *Stream) Next(d time.Duration) (Event, error) {
	select {
	case e := <-s.events:
		return e, nil
	case err := <-s.err:
		s.err <- err
		return Event{}, fmt.Errorf("event stream ended: %w", err)
	case <-time.After(d):
		return Event{}, fmt.Errorf("no event within %v", d)
	}
}

// Until returns the events up to and including the first for which match
// is true, waiting at most d in all.
func (s *Stream) Until(d time.Duration, match func(Event) bool) ([]Event, error) {
	deadline := time.Now().Add(d)
	var seen []Event
	for {
		e, err := s.Next(time.Until(deadline))
		if err != nil {
			return seen, err
		}
		seen = append(seen, e)
		if match(e) {
			return seen, nil
		}
	}
}

// Comment returns the next comment line, waiting at most d.
func (s *Stream) Comment(d time.Duration) (string, error) {
	select {
	case c := <-s.comments:
		return c, nil
	case <-time.After(d):
		return "", fmt.Errorf("no comment within %v", d)
	}
}
