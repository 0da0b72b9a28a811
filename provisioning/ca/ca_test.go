package ca

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func csrFor(t *testing.T, key any) []byte {
	t.Helper()
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})
}

func TestLoadOrCreateKeepsTheRoot(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "ca")
	a, err := LoadOrCreate(dir, "hub")
	if err != nil {
		t.Fatal(err)
	}
	b, err := LoadOrCreate(dir, "hub")
	if err != nil {
		t.Fatal(err)
	}
	if a.Fingerprint() != b.Fingerprint() {
		t.Error("a second start made a new root")
	}
	st, err := os.Stat(filepath.Join(dir, KeyFile))
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("root key mode %v, want 0600", st.Mode().Perm())
	}
	// Half a CA is never replaced by a new one.
	if err := os.Remove(filepath.Join(dir, KeyFile)); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadOrCreate(dir, "hub"); err == nil || !strings.Contains(err.Error(), "only one of") {
		t.Errorf("half a CA: %v", err)
	}
}

func TestDeviceCertificates(t *testing.T) {
	a, err := LoadOrCreate(t.TempDir(), "hub")
	if err != nil {
		t.Fatal(err)
	}
	other, err := LoadOrCreate(t.TempDir(), "other hub")
	if err != nil {
		t.Fatal(err)
	}
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	csr, err := ParseCSR(csrFor(t, key))
	if err != nil {
		t.Fatal(err)
	}
	cert, err := a.SignDevice(csr, "school-12-0a1b2c3d", 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if id, err := a.Verify(cert); err != nil || id != "school-12-0a1b2c3d" {
		t.Errorf("Verify = %q, %v", id, err)
	}
	if SerialHex(cert) == "" || cert.SerialNumber.BitLen() < 120 {
		t.Errorf("serial %s is not a random 128-bit number", SerialHex(cert))
	}
	if got := cert.NotAfter.Sub(time.Now()); got > 24*time.Hour || got < 23*time.Hour {
		t.Errorf("validity %v, want 24h", got)
	}
	// A device certificate from another CA is refused.
	foreign, err := other.SignDevice(csr, "school-12-0a1b2c3d", 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	var ua x509.UnknownAuthorityError
	if _, err := a.Verify(foreign); !errors.As(err, &ua) {
		t.Errorf("foreign certificate: %v", err)
	}
	// Expired.
	a.SetClock(func() time.Time { return time.Now().Add(48 * time.Hour) })
	var ci x509.CertificateInvalidError
	if _, err := a.Verify(cert); !errors.As(err, &ci) || ci.Reason != x509.Expired {
		t.Errorf("expired certificate: %v", err)
	}
	a.SetClock(time.Now)
	// A server certificate is not a device certificate.
	srv, err := a.SignServer(key.Public(), []string{"hub.example"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Verify(srv); err == nil {
		t.Error("a server certificate passed as a device")
	}
}

func TestParseCSR(t *testing.T) {
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	_, ed, _ := ed25519.GenerateKey(rand.Reader)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	for _, tc := range []struct {
		name string
		pem  []byte
		want string // "" for accepted
	}{
		{"p256", csrFor(t, ec), ""},
		{"ed25519", csrFor(t, ed), ""},
		{"p384", csrFor(t, p384), "want P-256"},
		{"rsa", csrFor(t, rsaKey), "want ECDSA P-256 or Ed25519"},
		{"not pem", []byte("hello"), "no CERTIFICATE REQUEST"},
		{"bad signature", func() []byte {
			b, _ := pem.Decode(csrFor(t, ec))
			b.Bytes[len(b.Bytes)-3] ^= 0xff
			return pem.EncodeToMemory(b)
		}(), "csr"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseCSR(tc.pem)
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("refused: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("err %v, want %q", err, tc.want)
			}
		})
	}
}

func TestServerCertificateReissue(t *testing.T) {
	dir := t.TempDir()
	a, err := LoadOrCreate(dir, "hub")
	if err != nil {
		t.Fatal(err)
	}
	c1, err := a.ServerCertificate(dir, []string{"hub.example", "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	if len(c1.Certificate) != 2 {
		t.Fatalf("chain of %d, want leaf and root", len(c1.Certificate))
	}
	c2, _ := a.ServerCertificate(dir, []string{"127.0.0.1", "hub.example"})
	if string(c2.Certificate[0]) != string(c1.Certificate[0]) {
		t.Error("same names: reissued")
	}
	c3, _ := a.ServerCertificate(dir, []string{"hub.example"})
	if string(c3.Certificate[0]) == string(c1.Certificate[0]) {
		t.Error("other names: not reissued")
	}
	a.SetClock(func() time.Time { return time.Now().Add(300 * 24 * time.Hour) })
	c4, _ := a.ServerCertificate(dir, []string{"hub.example"})
	if string(c4.Certificate[0]) == string(c3.Certificate[0]) {
		t.Error("past two thirds of its validity: not reissued")
	}
}
