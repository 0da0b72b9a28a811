package broker

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/classcap/classcap/hub/acl"
	"github.com/classcap/classcap/hub/acl/acltest"
	"github.com/classcap/classcap/hub/registry"
)

// startBroker runs an embedded broker on a free loopback port with two
// registered devices and returns its URL and the logins.
func startBroker(t *testing.T) (url string, hub, a, b acltest.Login) {
	t.Helper()
	reg, err := registry.Open(filepath.Join(t.TempDir(), "registry.db"), registry.Options{BcryptCost: bcrypt.MinCost})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { reg.Close() })
	pwA, err := reg.AddDevice("room-101")
	if err != nil {
		t.Fatal(err)
	}
	pwB, err := reg.AddDevice("room-102")
	if err != nil {
		t.Fatal(err)
	}
	hubPw := registry.NewSecret(16)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	br, err := New("127.0.0.1:0", reg, hubPw, log)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- br.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("broker Run: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("broker did not stop")
		}
	})
	return "tcp://" + br.Addr(), acltest.Login{User: acl.HubUser, Password: hubPw},
		acltest.Login{User: "room-101", Password: pwA}, acltest.Login{User: "room-102", Password: pwB}
}

func TestEmbeddedBrokerIsolatesDevices(t *testing.T) {
	url, hub, a, b := startBroker(t)
	acltest.CheckIsolation(t, url, hub, a, b)
}

func TestEmbeddedBrokerRefusesAnotherDevicesClientID(t *testing.T) {
	url, hub, a, b := startBroker(t)
	// With its own password but the other's client id, a device could
	// take over the other's session.
	if c, err := acltest.Connect(url, b.User, a, nil); err == nil {
		c.Disconnect(0)
		t.Fatalf("%s connected with client id %s", a.User, b.User)
	}
	if c, err := acltest.Connect(url, acl.HubUser, a, nil); err == nil {
		c.Disconnect(0)
		t.Fatalf("%s connected with the hub's client id", a.User)
	}
	// Its own id, and its id with a suffix, are fine.
	for _, id := range []string{a.User, a.User + "-probe"} {
		c, err := acltest.Connect(url, id, a, nil)
		if err != nil {
			t.Fatalf("client id %s: %v", id, err)
		}
		c.Disconnect(0)
	}
	// The hub's password is not a device's.
	if c, err := acltest.Connect(url, a.User, acltest.Login{User: a.User, Password: hub.Password}, nil); err == nil {
		c.Disconnect(0)
		t.Fatal("a device logged in with the hub's password")
	}
}

func TestLocalURL(t *testing.T) {
	for _, listen := range []string{"0.0.0.0:0", "[::]:0", "127.0.0.1:0"} {
		b, err := New(listen, nil, "x", slog.New(slog.NewTextHandler(io.Discard, nil)))
		if err != nil {
			t.Fatal(err)
		}
		u := b.LocalURL()
		b.ln.Close()
		if !strings.HasPrefix(u, "tcp://127.0.0.1:") || strings.HasSuffix(u, ":0") {
			t.Errorf("listen %s: LocalURL %s", listen, u)
		}
	}
}
