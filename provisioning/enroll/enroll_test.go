package enroll

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"log"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/classcap/classcap/provisioning/ca"
	"github.com/classcap/classcap/provisioning/claim"
	"github.com/classcap/classcap/provisioning/enrollapi"
	"github.com/classcap/classcap/provisioning/registrar"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// hub is a real registrar behind a TLS server on loopback.
type hub struct {
	ca     *ca.CA
	claims *claim.Store
	reg    *registrar.Registrar
	srv    *httptest.Server
	url    string // https://localhost:port
}

func newHub(t *testing.T, validity time.Duration) *hub {
	t.Helper()
	dir := t.TempDir()
	authority, err := ca.LoadOrCreate(filepath.Join(dir, "ca"), "test hub")
	if err != nil {
		t.Fatal(err)
	}
	db := &registrar.File{Path: filepath.Join(dir, "enroll.db")}
	claims, err := claim.NewStore(db)
	if err != nil {
		t.Fatal(err)
	}
	reg, err := registrar.New(registrar.Config{BrokerURL: "ssl://localhost:8883", Validity: validity}, authority, claims, db, quiet)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := authority.ServerCertificate(filepath.Join(dir, "ca"), []string{"localhost"})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(reg.Handler())
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.StartTLS()
	t.Cleanup(srv.Close)
	u := strings.Replace(srv.URL, "127.0.0.1", "localhost", 1)
	return &hub{ca: authority, claims: claims, reg: reg, srv: srv, url: u}
}

// claimFile writes a claim for group into a box's boot partition.
func (h *hub) claimFile(t *testing.T, dir string, uses int, ttl time.Duration) string {
	t.Helper()
	token, _, err := h.claims.Create("school-12", uses, ttl)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "classcap-claim")
	c := Claim{Hub: h.url, Token: token, CASHA256: h.ca.Fingerprint()}
	if err := os.WriteFile(p, c.Format("test claim"), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

type box struct {
	e       *Enroller
	dir     string
	mu      sync.Mutex
	changes []Status
}

func newBox(t *testing.T, claimPath string) *box {
	t.Helper()
	b := &box{dir: filepath.Join(t.TempDir(), "identity")}
	e, err := New(Config{Dir: b.dir, ClaimPath: claimPath, Hostname: "raspberrypi",
		OnChange: func(s Status) { b.mu.Lock(); b.changes = append(b.changes, s); b.mu.Unlock() }}, quiet)
	if err != nil {
		t.Fatal(err)
	}
	b.e = e
	return b
}

func TestEnrollRenewAndReload(t *testing.T) {
	h := newHub(t, 30*24*time.Hour)
	b := newBox(t, h.claimFile(t, t.TempDir(), 2, time.Hour))
	ctx := context.Background()

	id, err := b.e.Enroll(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(id.DeviceID, "school-12-") || id.Group != "school-12" || id.BrokerURL != "ssl://localhost:8883" {
		t.Errorf("identity %+v", id)
	}
	if st := b.e.Status(); st.State != Enrolled || st.DeviceID != id.DeviceID {
		t.Errorf("status %+v", st)
	}
	// The key is the box's own, 0600, and the certificate carries it.
	st, err := os.Stat(filepath.Join(b.dir, KeyFile))
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("key mode %v, want 0600", st.Mode().Perm())
	}
	key, _ := b.e.Keys().Signer()
	if !key.Public().(*ecdsa.PublicKey).Equal(id.Certificate().PublicKey) {
		t.Error("certificate does not carry the box's key")
	}
	// The hub lists the device with the certificate's serial and expiry.
	d, ok, err := h.reg.Device(id.DeviceID)
	if err != nil || !ok {
		t.Fatalf("hub does not list %s: %v", id.DeviceID, err)
	}
	if d.Serial != id.Serial || !d.NotAfter.Equal(id.Certificate().NotAfter) {
		t.Errorf("hub lists serial %s until %v; box has %s until %v", d.Serial, d.NotAfter, id.Serial, id.NotAfter)
	}
	if got, err := h.reg.Authorize(id.Certificate()); err != nil || got != id.DeviceID {
		t.Errorf("Authorize = %q, %v", got, err)
	}

	// A second attempt with the same key and the claim is refused: the
	// claim is no longer accepted from an enrolled box.
	csr, _ := MakeCSR(key, "x")
	tok := mustReadClaim(t, b.e.cfg.ClaimPath).Token
	_, err = h.reg.Enroll(enrollapi.Request{V: 1, Claim: tok, CSR: string(csr)})
	if err == nil || !strings.Contains(err.Error(), string(enrollapi.AlreadyEnrolled)) {
		t.Errorf("re-enroll with the same key: %v, want %s", err, enrollapi.AlreadyEnrolled)
	}

	// Renewal: a new serial for the same device and key.
	id2, err := b.e.Renew(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if id2.DeviceID != id.DeviceID || id2.Serial == id.Serial {
		t.Errorf("renewed: %s serial %s (was %s)", id2.DeviceID, id2.Serial, id.Serial)
	}
	if d, _, _ := h.reg.Device(id.DeviceID); d.Serial != id2.Serial {
		t.Errorf("hub lists serial %s after renewal, want %s", d.Serial, id2.Serial)
	}

	// A restart finds the identity and does not enroll again.
	e2, err := New(Config{Dir: b.dir, ClaimPath: "/nonexistent"}, quiet)
	if err != nil {
		t.Fatal(err)
	}
	if got := e2.Identity(); got == nil || got.Serial != id2.Serial {
		t.Fatalf("reloaded identity %+v", got)
	}
	if _, err := e2.Enroll(ctx); err != nil {
		t.Errorf("Enroll on an enrolled box: %v", err)
	}

	// Revoked: renewal refused with the reason, and the broker's check
	// refuses the certificate.
	if err := h.reg.Revoke(id.DeviceID); err != nil {
		t.Fatal(err)
	}
	if _, err := h.reg.Authorize(id2.Certificate()); !errors.Is(err, registrar.ErrRevoked) {
		t.Errorf("Authorize after revoke: %v", err)
	}
	_, err = b.e.Renew(ctx)
	var rf *Refusal
	if !errors.As(err, &rf) || rf.Reason != enrollapi.DeviceRevoked {
		t.Errorf("renew after revoke: %v", err)
	}
	if s := b.e.Status(); s.State != Refused || s.Reason != enrollapi.DeviceRevoked {
		t.Errorf("status after refused renewal: %+v", s)
	}
}

func mustReadClaim(t *testing.T, p string) Claim {
	t.Helper()
	c, err := ReadClaim(p)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestRenewAt(t *testing.T) {
	h := newHub(t, 30*24*time.Hour)
	b := newBox(t, h.claimFile(t, t.TempDir(), 1, time.Hour))
	id, err := b.e.Enroll(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	at, ok := b.e.RenewAt()
	if !ok {
		t.Fatal("no renewal time")
	}
	// With a third of the validity left.
	c := id.Certificate()
	left := c.NotAfter.Sub(at)
	if want := c.NotAfter.Sub(c.NotBefore) / 3; left < want-time.Second || left > want+time.Second {
		t.Errorf("renews %v before expiry, want %v", left, want)
	}
}

// TestRunRenewsBeforeExpiry runs the Enroller: it enrolls from the claim,
// and renews on its own once its clock passes the renewal time.
func TestRunRenewsBeforeExpiry(t *testing.T) {
	h := newHub(t, 9*time.Minute) // backdated 5 min: renewal due after 1 min
	b := newBox(t, h.claimFile(t, t.TempDir(), 1, time.Hour))
	now := time.Now()
	var mu sync.Mutex
	b.e.SetClock(func() time.Time { mu.Lock(); defer mu.Unlock(); return now })
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- b.e.Run(ctx) }()
	defer func() { cancel(); <-done }()

	first := waitFor(t, b, func(s Status) bool { return s.State == Enrolled })
	// Not due yet: a poke changes nothing.
	b.e.Poke()
	mu.Lock()
	// Past the renewal time: 9 min of validity plus 5 backdated, renewed
	// with a third (4m40s) left, so 4m20s from now.
	now = now.Add(5 * time.Minute)
	mu.Unlock()
	b.e.Poke()
	second := waitFor(t, b, func(s Status) bool { return s.State == Enrolled && s.Serial != first.Serial })
	if second.DeviceID != first.DeviceID {
		t.Errorf("renewed as %s, was %s", second.DeviceID, first.DeviceID)
	}
}

func waitFor(t *testing.T, b *box, ok func(Status) bool) Status {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if s := b.e.Status(); ok(s) {
			return s
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("status never matched; last %+v", b.e.Status())
	return Status{}
}

func TestClaimRefusals(t *testing.T) {
	h := newHub(t, 24*time.Hour)
	ctx := context.Background()
	boot := t.TempDir()

	// Exhausted: one use, two boxes.
	p := h.claimFile(t, boot, 1, time.Hour)
	if _, err := newBox(t, p).e.Enroll(ctx); err != nil {
		t.Fatal(err)
	}
	second := newBox(t, p)
	_, err := second.e.Enroll(ctx)
	checkRefusal(t, "exhausted", err, second, enrollapi.ClaimExhausted)

	// Expired.
	p = h.claimFile(t, t.TempDir(), 5, time.Hour)
	h.claims.SetClock(func() time.Time { return time.Now().Add(2 * time.Hour) })
	b := newBox(t, p)
	_, err = b.e.Enroll(ctx)
	checkRefusal(t, "expired", err, b, enrollapi.ClaimExpired)
	h.claims.SetClock(time.Now)

	// Revoked.
	p = h.claimFile(t, t.TempDir(), 5, time.Hour)
	list, _ := h.claims.List()
	if err := h.claims.Revoke(list[len(list)-1].ID); err != nil {
		t.Fatal(err)
	}
	b = newBox(t, p)
	_, err = b.e.Enroll(ctx)
	checkRefusal(t, "revoked", err, b, enrollapi.ClaimRevoked)

	// Unknown: a token this hub never made.
	c := mustReadClaim(t, p)
	c.Token = claim.TokenPrefix + "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	p = filepath.Join(t.TempDir(), "claim")
	if err := os.WriteFile(p, c.Format(""), 0o644); err != nil {
		t.Fatal(err)
	}
	b = newBox(t, p)
	_, err = b.e.Enroll(ctx)
	checkRefusal(t, "unknown", err, b, enrollapi.ClaimUnknown)

	// No claim file: not a refusal, the box waits.
	b = newBox(t, filepath.Join(t.TempDir(), "missing"))
	if _, err := b.e.Enroll(ctx); !errors.Is(err, ErrNoClaim) {
		t.Errorf("no claim file: %v", err)
	}
	if s := b.e.Status(); s.State != Unenrolled {
		t.Errorf("no claim file: status %+v", s)
	}
}

func checkRefusal(t *testing.T, name string, err error, b *box, want enrollapi.Reason) {
	t.Helper()
	var rf *Refusal
	if !errors.As(err, &rf) || rf.Reason != want {
		t.Errorf("%s: err %v, want a refusal %q", name, err, want)
		return
	}
	if !strings.Contains(rf.Error(), string(want)) {
		t.Errorf("%s: %q does not say %q", name, rf.Error(), want)
	}
	s := b.e.Status()
	if s.State != Refused || s.Reason != want || s.Error == "" {
		t.Errorf("%s: status %+v", name, s)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.changes) == 0 || b.changes[len(b.changes)-1].Reason != want {
		t.Errorf("%s: OnChange saw %+v", name, b.changes)
	}
	if b.e.Identity() != nil {
		t.Errorf("%s: refused box has an identity", name)
	}
}

// TestBoxRefusesWrongHub: the box trusts only the hub its claim pins.
func TestBoxRefusesWrongHub(t *testing.T) {
	h := newHub(t, 24*time.Hour)
	other := newHub(t, 24*time.Hour)
	ctx := context.Background()

	for _, tc := range []struct {
		name string
		edit func(c *Claim)
		want string
	}{
		{"unknown CA", func(c *Claim) { c.CASHA256 = other.ca.Fingerprint() }, "does not hold the CA"},
		{"wrong server name", func(c *Claim) { c.Hub = strings.Replace(c.Hub, "localhost", "127.0.0.1", 1) }, "hub certificate"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := mustReadClaim(t, h.claimFile(t, t.TempDir(), 1, time.Hour))
			tc.edit(&c)
			p := filepath.Join(t.TempDir(), "claim")
			if err := os.WriteFile(p, c.Format(""), 0o644); err != nil {
				t.Fatal(err)
			}
			b := newBox(t, p)
			_, err := b.e.Enroll(ctx)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err %v, want %q", err, tc.want)
			}
			if b.e.Identity() != nil {
				t.Error("box took an identity from the wrong hub")
			}
		})
	}
	// The claim was not used up by the refused attempts.
	list, _ := h.claims.List()
	for _, c := range list {
		if c.UsesLeft != c.Uses {
			t.Errorf("claim %s: %d of %d uses left after refused TLS", c.ID, c.UsesLeft, c.Uses)
		}
	}
}

// TestBoxRefusesExpiredServerCertificate: a hub presenting an expired
// certificate is refused, both at enrollment (pinned) and at renewal.
func TestBoxRefusesExpiredServerCertificate(t *testing.T) {
	h := newHub(t, 24*time.Hour)
	b := newBox(t, h.claimFile(t, t.TempDir(), 1, time.Hour))
	if _, err := b.e.Enroll(context.Background()); err != nil {
		t.Fatal(err)
	}
	// The same CA, a server certificate that expired an hour ago.
	h.ca.SetClock(func() time.Time { return time.Now().Add(-48 * time.Hour) })
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	leaf, err := h.ca.SignServer(key.Public(), []string{"localhost"}, 47*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	h.ca.SetClock(time.Now)
	h.srv.TLS.Certificates = []tls.Certificate{{Certificate: [][]byte{leaf.Raw, h.ca.Certificate().Raw}, PrivateKey: key}}
	h.srv.CloseClientConnections()

	_, err = b.e.Renew(context.Background())
	var ce x509.CertificateInvalidError
	if !errors.As(err, &ce) || ce.Reason != x509.Expired {
		t.Errorf("renew against an expired server certificate: %v", err)
	}
	b2 := newBox(t, h.claimFile(t, t.TempDir(), 1, time.Hour))
	_, err = b2.e.Enroll(context.Background())
	if !errors.As(err, &ce) || ce.Reason != x509.Expired {
		t.Errorf("enroll against an expired server certificate: %v", err)
	}
}

func TestKeyStoreRefusesOpenKey(t *testing.T) {
	dir := t.TempDir()
	ks := &FileKeyStore{Path: filepath.Join(dir, "key.pem")}
	k1, err := ks.Signer()
	if err != nil {
		t.Fatal(err)
	}
	k2, err := (&FileKeyStore{Path: ks.Path}).Signer()
	if err != nil {
		t.Fatal(err)
	}
	if !k1.Public().(*ecdsa.PublicKey).Equal(k2.Public()) {
		t.Error("a second load made another key")
	}
	if err := os.Chmod(ks.Path, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := (&FileKeyStore{Path: ks.Path}).Signer(); err == nil || !strings.Contains(err.Error(), "0644") {
		t.Errorf("world-readable key: %v", err)
	}
}

func TestParseClaim(t *testing.T) {
	good := `hub = "https://hub.example:8443"
token = "ccclaim_abc"
ca_sha256 = "` + strings.Repeat("ab", 32) + `"
`
	if _, err := ParseClaim([]byte(good)); err != nil {
		t.Fatalf("good claim: %v", err)
	}
	for _, tc := range []struct{ name, in, want string }{
		{"no hub", strings.Replace(good, `hub = "https://hub.example:8443"`, "", 1), "hub: is required"},
		{"http hub", strings.Replace(good, "https://", "http://", 1), "hub: "},
		{"no token", strings.Replace(good, `token = "ccclaim_abc"`, "", 1), "token: is required"},
		{"short pin", strings.Replace(good, strings.Repeat("ab", 32), "abcd", 1), "ca_sha256"},
		{"unknown key", good + "colour = \"red\"\n", "unknown key colour"},
		{"not toml", "hub = ", "parse"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseClaim([]byte(tc.in))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err %v, want %q", err, tc.want)
			}
		})
	}
}

func FuzzParseClaim(f *testing.F) {
	f.Add([]byte("hub = \"https://h:1\"\ntoken = \"ccclaim_x\"\nca_sha256 = \"" + strings.Repeat("0", 64) + "\"\n"))
	f.Add([]byte("hub = 1"))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := ParseClaim(b)
		if err != nil {
			return
		}
		// What parses, formats and parses back the same.
		c2, err := ParseClaim(c.Format("x"))
		if err != nil || c2 != c {
			t.Fatalf("round trip: %+v -> %+v, %v", c, c2, err)
		}
	})
}

var _ = http.StatusOK
