// Package acltest checks that a running MQTT broker enforces the hub's
// access rules (package acl) on real clients: the embedded broker's tests
// and the mosquitto tests run the same scenario.
package acltest

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/classcap/classcap/hub/acl"
	"github.com/classcap/classcap/uplink/wire"
)

// Login is a user name and password.
type Login struct{ User, Password string }

// Inbox records the messages a client received, in order.
type Inbox struct {
	mu   sync.Mutex
	msgs []string // "topic payload"
	ch   chan struct{}
}

func newInbox() *Inbox { return &Inbox{ch: make(chan struct{})} }

func (in *Inbox) add(_ paho.Client, m paho.Message) {
	in.mu.Lock()
	in.msgs = append(in.msgs, m.Topic()+" "+string(m.Payload()))
	close(in.ch)
	in.ch = make(chan struct{})
	in.mu.Unlock()
}

// WaitFor waits until a message "topic payload" arrived and returns every
// message received before it.
func (in *Inbox) WaitFor(t *testing.T, topic, payload string) []string {
	t.Helper()
	want := topic + " " + payload
	deadline := time.After(20 * time.Second)
	for {
		in.mu.Lock()
		for i, m := range in.msgs {
			if m == want {
				before := append([]string(nil), in.msgs[:i]...)
				in.mu.Unlock()
				return before
			}
		}
		ch := in.ch
		in.mu.Unlock()
		select {
		case <-ch:
		case <-deadline:
			in.mu.Lock()
			defer in.mu.Unlock()
			t.Fatalf("never received %q; got %q", want, in.msgs)
		}
	}
}

// Connect connects a paho client (MQTT 3.1.1, clean session) as login
// with client id clientID, or returns the connect error.
func Connect(url, clientID string, login Login, in *Inbox) (paho.Client, error) {
	opts := paho.NewClientOptions().AddBroker(url).SetClientID(clientID).
		SetUsername(login.User).SetPassword(login.Password).SetProtocolVersion(4).
		SetCleanSession(true).SetAutoReconnect(false).SetConnectTimeout(10 * time.Second)
	if in != nil {
		opts.SetDefaultPublishHandler(in.add)
	}
	c := paho.NewClient(opts)
	tok := c.Connect()
	if !tok.WaitTimeout(15 * time.Second) {
		return nil, fmt.Errorf("connect %s as %s: no answer", url, login.User)
	}
	if err := tok.Error(); err != nil {
		return nil, err
	}
	return c, nil
}

func mustConnect(t *testing.T, url, clientID string, login Login, in *Inbox) paho.Client {
	t.Helper()
	c, err := Connect(url, clientID, login, in)
	if err != nil {
		t.Fatalf("connect as %s: %v", login.User, err)
	}
	t.Cleanup(func() { c.Disconnect(100) })
	return c
}

func publish(t *testing.T, c paho.Client, topic, payload string, qos byte) {
	t.Helper()
	tok := c.Publish(topic, qos, false, payload)
	if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("publish %s: %v", topic, tok.Error())
	}
}

// subscribe subscribes and reports whether the broker granted it.
func subscribe(t *testing.T, c paho.Client, filter string, in *Inbox) bool {
	t.Helper()
	tok := c.Subscribe(filter, 1, in.add)
	if !tok.WaitTimeout(10 * time.Second) {
		t.Fatalf("subscribe %s: no SUBACK", filter)
	}
	if tok.Error() != nil {
		return false
	}
	code, ok := tok.(*paho.SubscribeToken).Result()[filter]
	return ok && code <= 2
}

func noneOf(t *testing.T, what string, got []string, forbidden ...string) {
	t.Helper()
	for _, g := range got {
		for _, f := range forbidden {
			if strings.Contains(g, f) {
				t.Errorf("%s: received %q", what, g)
			}
		}
	}
}

// CheckIsolation runs the scenario against the broker at url: hub is the
// hub's login, a and b two registered devices. It checks that a device
// reaches its own topics, and neither publishes nor receives anything
// under the other's prefix, nor publishes commands, nor logs in with a
// wrong password or the other's client id.
func CheckIsolation(t *testing.T, url string, hub, a, b Login) {
	t.Helper()
	hubIn, aIn, bIn := newInbox(), newInbox(), newInbox()
	hubC := mustConnect(t, url, acl.HubUser, hub, hubIn)
	if !subscribe(t, hubC, wire.Root+"/#", hubIn) {
		t.Fatal("the hub may not subscribe to every classcap topic")
	}
	aC := mustConnect(t, url, a.User, a, aIn)
	bC := mustConnect(t, url, b.User, b, bIn)
	if !subscribe(t, bC, wire.CmdTopic(b.User), bIn) {
		t.Fatalf("%s may not subscribe to its own cmd topic", b.User)
	}
	if !subscribe(t, aC, wire.CmdTopic(a.User), aIn) {
		t.Fatalf("%s may not subscribe to its own cmd topic", a.User)
	}

	t.Run("wrong password refused", func(t *testing.T) {
		if c, err := Connect(url, a.User, Login{a.User, a.Password + "x"}, nil); err == nil {
			c.Disconnect(0)
			t.Fatal("connected with a wrong password")
		}
		if c, err := Connect(url, a.User, Login{a.User, b.Password}, nil); err == nil {
			c.Disconnect(0)
			t.Fatal("connected with the other device's password")
		}
		if c, err := Connect(url, "anon", Login{}, nil); err == nil {
			c.Disconnect(0)
			t.Fatal("connected without credentials")
		}
	})

	t.Run("publish under the other prefix refused", func(t *testing.T) {
		// QoS 0: a refused QoS 1 publish may cost the connection, which
		// would end the scenario rather than show the refusal.
		publish(t, aC, wire.StateTopic(b.User), "forged-state", 0)
		publish(t, aC, wire.EventTopic(b.User), "forged-event", 0)
		publish(t, aC, wire.CmdTopic(b.User), "forged-cmd-b", 0)
		publish(t, aC, wire.CmdTopic(a.User), "forged-cmd-a", 0)
		// The broker handles one connection's packets in order: once this
		// marker reached the hub, anything above was delivered or dropped.
		publish(t, aC, wire.StateTopic(a.User), "marker-1", 1)
		before := hubIn.WaitFor(t, wire.StateTopic(a.User), "marker-1")
		noneOf(t, "the hub", before, "forged")
		publish(t, hubC, wire.CmdTopic(b.User), "hub-cmd-b-1", 1)
		noneOf(t, b.User, bIn.WaitFor(t, wire.CmdTopic(b.User), "hub-cmd-b-1"), "forged")
		publish(t, hubC, wire.CmdTopic(a.User), "hub-cmd-a-1", 1)
		noneOf(t, a.User, aIn.WaitFor(t, wire.CmdTopic(a.User), "hub-cmd-a-1"), "forged")
	})

	t.Run("subscribe under the other prefix refused", func(t *testing.T) {
		for _, f := range []string{wire.CmdTopic(b.User), wire.StateTopic(b.User), wire.KindFilter(wire.KindCmd),
			wire.Root + "/#", "#", wire.DeviceFilter(b.User)} {
			if subscribe(t, aC, f, aIn) {
				t.Logf("%s: SUBACK granted %s (then no message may arrive)", a.User, f)
			}
		}
		publish(t, hubC, wire.CmdTopic(b.User), "secret-cmd-b", 1)
		publish(t, bC, wire.StateTopic(b.User), "secret-state-b", 1)
		hubIn.WaitFor(t, wire.StateTopic(b.User), "secret-state-b")
		bIn.WaitFor(t, wire.CmdTopic(b.User), "secret-cmd-b")
		publish(t, hubC, wire.CmdTopic(a.User), "hub-cmd-a-2", 1)
		noneOf(t, a.User, aIn.WaitFor(t, wire.CmdTopic(a.User), "hub-cmd-a-2"), "secret")
	})
}
