package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/classcap/classcap/hub/broker"
	"github.com/classcap/classcap/provisioning/ca"
	"github.com/classcap/classcap/provisioning/claim"
	"github.com/classcap/classcap/provisioning/enroll"
	"github.com/classcap/classcap/provisioning/registrar"
	"github.com/classcap/classcap/uplink/wire"
)

// TestEnrollmentFromClaimFile: a fresh box with only a claim file enrolls
// while it runs and takes the device id of its certificate at the next
// start; a second box with the used-up claim says why in its log and shows
// the refusal on its LED.
func TestEnrollmentFromClaimFile(t *testing.T) {
	hubDir := t.TempDir()
	authority, err := ca.LoadOrCreate(filepath.Join(hubDir, "ca"), "test hub")
	if err != nil {
		t.Fatal(err)
	}
	db := &registrar.File{Path: filepath.Join(hubDir, "enroll.db")}
	claims, err := claim.NewStore(db)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := authority.ServerCertificate(filepath.Join(hubDir, "ca"), []string{"localhost"})
	if err != nil {
		t.Fatal(err)
	}
	// The hub's broker: its mutual-TLS listener for enrolled boxes.
	auth := &lateAuthorizer{}
	mb, err := broker.New("127.0.0.1:0", noPasswords{}, "hub-secret", slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if err := mb.ListenTLS("127.0.0.1:0", cert, authority.Pool(), auth); err != nil {
		t.Fatal(err)
	}
	bctx, stopBroker := context.WithCancel(context.Background())
	brokerDone := make(chan error, 1)
	go func() { brokerDone <- mb.Run(bctx) }()
	defer func() { stopBroker(); <-brokerDone }()
	_, tlsPort, _ := strings.Cut(mb.TLSAddr(), ":")
	reg, err := registrar.New(registrar.Config{BrokerURL: "ssl://localhost:" + tlsPort, Validity: 24 * time.Hour},
		authority, claims, db, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	auth.set(reg)
	srv := httptest.NewUnstartedServer(reg.Handler())
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.StartTLS()
	defer srv.Close()

	token, _, err := claims.Create("school-12", 1, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	claimPath := filepath.Join(t.TempDir(), "classcap-claim")
	c := enroll.Claim{Hub: strings.Replace(srv.URL, "127.0.0.1", "localhost", 1), Token: token, CASHA256: authority.Fingerprint()}
	if err := os.WriteFile(claimPath, c.Format(""), 0o644); err != nil {
		t.Fatal(err)
	}
	extra := fmt.Sprintf("[enroll]\nclaim_file = %q\n", claimPath)

	a := newBox(t, extra)
	a.start()
	idDir := filepath.Join(a.dir, "data", "identity")
	var id *enroll.Identity
	a.waitFor("enrollment", 30*time.Second, func() bool {
		id, err = enroll.LoadIdentity(idDir)
		return err == nil
	})
	if st, err := os.Stat(filepath.Join(idDir, enroll.KeyFile)); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("box key: %v %v", st, err)
	}
	if s := a.status(); s.Device != "room-101" {
		t.Errorf("device %q before restart, want the configured room-101", s.Device)
	}
	a.signal(syscall.SIGTERM)
	// The hub watches the box's state topic.
	states := make(chan []byte, 16)
	hub := paho.NewClient(paho.NewClientOptions().AddBroker("tcp://" + mb.Addr()).SetClientID("classcap-hub").
		SetUsername("classcap-hub").SetPassword("hub-secret").SetProtocolVersion(4))
	if tok := hub.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("hub client: %v", tok.Error())
	}
	defer hub.Disconnect(0)
	if tok := hub.Subscribe(wire.StateTopic(id.DeviceID), 1, func(_ paho.Client, m paho.Message) {
		states <- m.Payload()
	}); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe: %v", tok.Error())
	}
	a.start()
	if s := a.status(); s.Device != id.DeviceID {
		t.Errorf("device %q after restart, want the enrolled %q", s.Device, id.DeviceID)
	}
	// Enrolled, it connects with its certificate (no password configured).
	deadline := time.After(30 * time.Second)
	for online := false; !online; {
		select {
		case p := <-states:
			st, err := wire.DecodeState(p)
			online = err == nil && st.Online
		case <-deadline:
			t.Fatal("the enrolled box never published an online state over mutual TLS")
		}
	}
	a.waitFor("the log to say the uplink uses the certificate", 10*time.Second, func() bool {
		return strings.Contains(a.logText(), "uplink with the enrolled certificate")
	})

	b := newBox(t, extra)
	b.start()
	b.waitFor("the refusal on the LED", 30*time.Second, func() bool {
		return b.status().LED.Pattern == "enroll-refused"
	})
	// The log reaches the test through a pipe, so it may trail the status.
	b.waitFor("the log to say why", 10*time.Second, func() bool {
		return strings.Contains(b.logText(), `msg="hub refused" component=enroll reason=exhausted`)
	})
}

// lateAuthorizer lets the broker start before the registrar that knows the
// broker's address.
type lateAuthorizer struct {
	mu  sync.Mutex
	reg *registrar.Registrar
}

func (l *lateAuthorizer) set(r *registrar.Registrar) { l.mu.Lock(); l.reg = r; l.mu.Unlock() }

func (l *lateAuthorizer) Authorize(c *x509.Certificate) (string, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.reg.Authorize(c)
}

type noPasswords struct{}

func (noPasswords) CheckPassword(string, string) bool { return false }
