package uploader

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/classcap/classcap/uplink/wire"
)

// ErrVerified is returned by Hub.Grant when the hub already holds the file
// verified: nothing needs to be sent.
var ErrVerified = errors.New("the hub holds the file verified")

// ErrRefused is an answer "refused" from the hub.
var ErrRefused = errors.New("refused by the hub")

// Publisher sends a message to the broker (QoS 1, not retained); the MQTT
// link provides it.
type Publisher interface {
	Publish(ctx context.Context, topic string, payload []byte) error
}

// Coordinator is the Hub over MQTT: it publishes request and complete on
// the box's upload topic and waits for the answer on its grant topic, which
// the link hands to HandleGrant. A message without an answer is published
// again every Resend, so a lost message or a restarted hub only delays.
type Coordinator struct {
	Device string
	Pub    Publisher
	Resend time.Duration // default 10 s

	mu      sync.Mutex
	waiters map[string][]chan wire.GrantMsg // by lesson/file/sha256
}

var _ Hub = (*Coordinator)(nil)

func waitKey(r wire.FileRef) string { return r.Lesson + "/" + r.File + "/" + r.SHA256 }

// HandleGrant takes a message from the grant topic.
func (c *Coordinator) HandleGrant(payload []byte) error {
	m, err := wire.DecodeGrant(payload)
	if err != nil {
		return err
	}
	c.mu.Lock()
	ws := c.waiters[waitKey(m.FileRef)]
	delete(c.waiters, waitKey(m.FileRef))
	c.mu.Unlock()
	for _, w := range ws {
		w <- m
	}
	return nil
}

func (c *Coordinator) ask(ctx context.Context, typ string, f File) (wire.GrantMsg, error) {
	ref := wire.FileRef{Lesson: f.Lesson, File: f.Name, Segment: f.Segment, Bytes: f.Bytes, SHA256: f.SHA256}
	payload, err := json.Marshal(wire.UploadMsg{V: wire.Version, Type: typ, FileRef: ref})
	if err != nil {
		return wire.GrantMsg{}, err
	}
	resend := c.Resend
	if resend <= 0 {
		resend = 10 * time.Second
	}
	ch := make(chan wire.GrantMsg, 1)
	for {
		c.mu.Lock()
		if c.waiters == nil {
			c.waiters = map[string][]chan wire.GrantMsg{}
		}
		c.waiters[waitKey(ref)] = append(c.waiters[waitKey(ref)], ch)
		c.mu.Unlock()
		if err := c.Pub.Publish(ctx, wire.UploadTopic(c.Device), payload); err != nil {
			c.forget(ref, ch)
			return wire.GrantMsg{}, fmt.Errorf("publish upload %s: %w", typ, err)
		}
		t := time.NewTimer(resend)
		select {
		case m := <-ch:
			t.Stop()
			return m, nil
		case <-ctx.Done():
			t.Stop()
			c.forget(ref, ch)
			return wire.GrantMsg{}, ctx.Err()
		case <-t.C:
			c.forget(ref, ch)
		}
	}
}

func (c *Coordinator) forget(ref wire.FileRef, ch chan wire.GrantMsg) {
	c.mu.Lock()
	defer c.mu.Unlock()
	ws := c.waiters[waitKey(ref)]
	for i, w := range ws {
		if w == ch {
			ws = append(ws[:i], ws[i+1:]...)
			break
		}
	}
	if len(ws) == 0 {
		delete(c.waiters, waitKey(ref))
	} else {
		c.waiters[waitKey(ref)] = ws
	}
	// An answer that raced in is dropped with the channel.
}

// Grant asks the hub for a grant for f.
func (c *Coordinator) Grant(ctx context.Context, f File) (Grant, error) {
	m, err := c.ask(ctx, wire.UploadRequest, f)
	if err != nil {
		return Grant{}, err
	}
	switch m.Type {
	case wire.GrantGranted:
		return Grant{Endpoint: m.URL, Token: m.Token}, nil
	case wire.GrantVerified:
		return Grant{}, ErrVerified
	default:
		return Grant{}, fmt.Errorf("%w: %s", ErrRefused, m.Error)
	}
}

// Complete reports f sent and waits for the verified ack.
func (c *Coordinator) Complete(ctx context.Context, f File) error {
	m, err := c.ask(ctx, wire.UploadComplete, f)
	if err != nil {
		return err
	}
	if m.Type == wire.GrantVerified {
		return nil
	}
	return fmt.Errorf("%w: %s", ErrRefused, m.Error)
}
