package main

import (
	"crypto/tls"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/classcap/classcap/provisioning/ca"
	"github.com/classcap/classcap/provisioning/claim"
	"github.com/classcap/classcap/provisioning/enroll"
	"github.com/classcap/classcap/provisioning/registrar"
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
	reg, err := registrar.New(registrar.Config{BrokerURL: "ssl://localhost:8883", Validity: 24 * time.Hour},
		authority, claims, db, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	cert, err := authority.ServerCertificate(filepath.Join(hubDir, "ca"), []string{"localhost"})
	if err != nil {
		t.Fatal(err)
	}
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
	a.start()
	if s := a.status(); s.Device != id.DeviceID {
		t.Errorf("device %q after restart, want the enrolled %q", s.Device, id.DeviceID)
	}

	b := newBox(t, extra)
	b.start()
	b.waitFor("the refusal on the LED", 30*time.Second, func() bool {
		return b.status().LED.Pattern == "enroll-refused"
	})
	if l := b.logText(); !strings.Contains(l, `msg="hub refused" component=enroll reason=exhausted`) {
		t.Errorf("log does not say why:\n%s", l)
	}
}
