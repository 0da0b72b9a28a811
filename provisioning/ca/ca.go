// Package ca is the hub's enrollment certificate authority. It keeps its own
// root (an ECDSA P-256 key and a self-signed certificate) in a directory of
// the hub's data dir, signs device certificates from the boxes' CSRs (the
// device id in the subject CN and in a urn:classcap:device: URI SAN, a random
// 128-bit serial, a short validity) and the hub's own TLS server certificate,
// and tells which certificates it issued.
//
// The root key never leaves the hub; the boxes learn the root certificate at
// enrollment (pinned by its SHA-256 fingerprint from the claim file) and
// trust only it for the hub's HTTPS and MQTT endpoints.
package ca

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/classcap/classcap/capture/durable"
)

// File names inside the CA directory.
const (
	KeyFile  = "ca.key" // PKCS#8 PEM, mode 0600
	CertFile = "ca.crt" // PEM
)

// rootValidity is how long the root certificate is valid.
const rootValidity = 20 * 365 * 24 * time.Hour

// backdate is subtracted from NotBefore so that a box whose clock is a
// little behind accepts a fresh certificate.
const backdate = 5 * time.Minute

// DeviceURIPrefix starts the URI SAN of every device certificate; the
// device id follows.
const DeviceURIPrefix = "urn:classcap:device:"

// ErrNotDevice is returned by DeviceID for a certificate that names no device.
var ErrNotDevice = errors.New("certificate names no classcap device")

// CA is a loaded certificate authority. It is safe for concurrent use.
type CA struct {
	key  crypto.Signer
	cert *x509.Certificate
	pem  []byte // the root certificate, PEM
	now  func() time.Time
}

// LoadOrCreate loads the CA from dir, or creates a new root there (dir is
// created with mode 0700) when it holds none. name is the root's common name.
func LoadOrCreate(dir, name string) (*CA, error) {
	keyPath, certPath := filepath.Join(dir, KeyFile), filepath.Join(dir, CertFile)
	_, kerr := os.Stat(keyPath)
	_, cerr := os.Stat(certPath)
	switch {
	case kerr == nil && cerr == nil:
		return Load(dir)
	case errors.Is(kerr, os.ErrNotExist) && errors.Is(cerr, os.ErrNotExist):
	case kerr != nil && !errors.Is(kerr, os.ErrNotExist):
		return nil, fmt.Errorf("ca: stat %s: %w", keyPath, kerr)
	case cerr != nil && !errors.Is(cerr, os.ErrNotExist):
		return nil, fmt.Errorf("ca: stat %s: %w", certPath, cerr)
	default:
		// One of the two exists: never overwrite half a CA.
		return nil, fmt.Errorf("ca: %s holds only one of %s and %s; restore the other or remove both to start a new CA (every enrolled box must then enroll again)", dir, KeyFile, CertFile)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("ca: generate key: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          randomSerial(),
		Subject:               pkix.Name{CommonName: name, Organization: []string{"classcap"}},
		NotBefore:             now.Add(-backdate),
		NotAfter:              now.Add(rootValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("ca: self-sign root: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("ca: marshal key: %w", err)
	}
	if err := durable.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("ca: create %s: %w", dir, err)
	}
	if err := durable.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		return nil, fmt.Errorf("ca: write key: %w", err)
	}
	if err := durable.WriteFile(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		return nil, fmt.Errorf("ca: write certificate: %w", err)
	}
	return Load(dir)
}

// Load reads an existing CA from dir.
func Load(dir string) (*CA, error) {
	keyPEM, err := os.ReadFile(filepath.Join(dir, KeyFile))
	if err != nil {
		return nil, fmt.Errorf("ca: %w", err)
	}
	certPEM, err := os.ReadFile(filepath.Join(dir, CertFile))
	if err != nil {
		return nil, fmt.Errorf("ca: %w", err)
	}
	kb, _ := pem.Decode(keyPEM)
	if kb == nil || kb.Type != "PRIVATE KEY" {
		return nil, fmt.Errorf("ca: %s: no PRIVATE KEY PEM block", KeyFile)
	}
	k, err := x509.ParsePKCS8PrivateKey(kb.Bytes)
	if err != nil {
		return nil, fmt.Errorf("ca: parse %s: %w", KeyFile, err)
	}
	signer, ok := k.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("ca: %s: key of type %T cannot sign", KeyFile, k)
	}
	cb, _ := pem.Decode(certPEM)
	if cb == nil || cb.Type != "CERTIFICATE" {
		return nil, fmt.Errorf("ca: %s: no CERTIFICATE PEM block", CertFile)
	}
	cert, err := x509.ParseCertificate(cb.Bytes)
	if err != nil {
		return nil, fmt.Errorf("ca: parse %s: %w", CertFile, err)
	}
	if !cert.IsCA {
		return nil, fmt.Errorf("ca: %s is not a CA certificate", CertFile)
	}
	if !publicKeysEqual(cert.PublicKey, signer.Public()) {
		return nil, fmt.Errorf("ca: %s and %s do not belong together", KeyFile, CertFile)
	}
	return &CA{key: signer, cert: cert, pem: pem.EncodeToMemory(cb), now: time.Now}, nil
}

// SetClock replaces the clock used for validity periods (tests).
func (c *CA) SetClock(now func() time.Time) { c.now = now }

// Certificate returns the root certificate.
func (c *CA) Certificate() *x509.Certificate { return c.cert }

// CertPEM returns the root certificate in PEM.
func (c *CA) CertPEM() []byte { return bytes.Clone(c.pem) }

// Fingerprint returns the SHA-256 of the root certificate's DER, in
// lower-case hex: what a claim file pins.
func (c *CA) Fingerprint() string { return Fingerprint(c.cert) }

// Fingerprint returns the lower-case hex SHA-256 of cert's DER.
func Fingerprint(cert *x509.Certificate) string {
	sum := sha256.Sum256(cert.Raw)
	return hex.EncodeToString(sum[:])
}

// Pool returns a pool holding only the root certificate.
func (c *CA) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(c.cert)
	return p
}

// KeyID returns the lower-case hex SHA-256 of a public key's PKIX DER: the
// stable name of a box's key, whatever certificate carries it.
func KeyID(pub crypto.PublicKey) (string, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return "", fmt.Errorf("marshal public key: %w", err)
	}
	sum := sha256.Sum256(der)
	return hex.EncodeToString(sum[:]), nil
}

// ParseCSR decodes a PEM certificate request and checks its signature (the
// proof that the sender holds the key) and that its key is ECDSA P-256 or
// Ed25519.
func ParseCSR(csrPEM []byte) (*x509.CertificateRequest, error) {
	b, _ := pem.Decode(csrPEM)
	if b == nil || b.Type != "CERTIFICATE REQUEST" {
		return nil, errors.New("csr: no CERTIFICATE REQUEST PEM block")
	}
	csr, err := x509.ParseCertificateRequest(b.Bytes)
	if err != nil {
		return nil, fmt.Errorf("csr: %w", err)
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, fmt.Errorf("csr: signature: %w", err)
	}
	switch k := csr.PublicKey.(type) {
	case *ecdsa.PublicKey:
		if k.Curve != elliptic.P256() {
			return nil, fmt.Errorf("csr: ECDSA curve %s, want P-256", k.Curve.Params().Name)
		}
	case ed25519.PublicKey:
	default:
		return nil, fmt.Errorf("csr: key algorithm %s, want ECDSA P-256 or Ed25519", csr.PublicKeyAlgorithm)
	}
	return csr, nil
}

// SignDevice issues a client certificate for deviceID to the key of csr
// (checked with ParseCSR), valid for validity from now. The subject and SANs
// of the request are ignored: the CA names the device.
func (c *CA) SignDevice(csr *x509.CertificateRequest, deviceID string, validity time.Duration) (*x509.Certificate, error) {
	u, err := url.Parse(DeviceURIPrefix + deviceID)
	if err != nil {
		return nil, fmt.Errorf("ca: device id %q: %w", deviceID, err)
	}
	now := c.now()
	tmpl := &x509.Certificate{
		SerialNumber: randomSerial(),
		Subject:      pkix.Name{CommonName: deviceID, Organization: []string{"classcap device"}},
		URIs:         []*url.URL{u},
		NotBefore:    now.Add(-backdate),
		NotAfter:     now.Add(validity),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	return c.sign(tmpl, csr.PublicKey)
}

// SignServer issues the hub's TLS server certificate for names (DNS names
// or IP addresses) to pub, valid for validity from now.
func (c *CA) SignServer(pub crypto.PublicKey, names []string, validity time.Duration) (*x509.Certificate, error) {
	if len(names) == 0 {
		return nil, errors.New("ca: a server certificate needs at least one name")
	}
	now := c.now()
	tmpl := &x509.Certificate{
		SerialNumber: randomSerial(),
		Subject:      pkix.Name{CommonName: names[0], Organization: []string{"classcap hub"}},
		NotBefore:    now.Add(-backdate),
		NotAfter:     now.Add(validity),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, n := range names {
		if ip := net.ParseIP(n); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, n)
		}
	}
	return c.sign(tmpl, pub)
}

func (c *CA) sign(tmpl *x509.Certificate, pub crypto.PublicKey) (*x509.Certificate, error) {
	der, err := x509.CreateCertificate(rand.Reader, tmpl, c.cert, pub, c.key)
	if err != nil {
		return nil, fmt.Errorf("ca: sign: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("ca: parse issued certificate: %w", err)
	}
	return cert, nil
}

// Verify checks that cert was issued by this CA for client authentication
// and is valid now, and returns the device id it names.
func (c *CA) Verify(cert *x509.Certificate) (string, error) {
	_, err := cert.Verify(x509.VerifyOptions{
		Roots:       c.Pool(),
		CurrentTime: c.now(),
		KeyUsages:   []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	})
	if err != nil {
		return "", fmt.Errorf("ca: verify device certificate: %w", err)
	}
	return DeviceID(cert)
}

// DeviceID returns the device id a device certificate names: its URI SAN
// under DeviceURIPrefix, which must agree with the subject CN.
func DeviceID(cert *x509.Certificate) (string, error) {
	for _, u := range cert.URIs {
		if s := u.String(); strings.HasPrefix(s, DeviceURIPrefix) {
			id := strings.TrimPrefix(s, DeviceURIPrefix)
			if id == "" || id != cert.Subject.CommonName {
				return "", fmt.Errorf("%w: URI %q and CN %q disagree", ErrNotDevice, s, cert.Subject.CommonName)
			}
			return id, nil
		}
	}
	return "", ErrNotDevice
}

// SerialHex returns a certificate serial as lower-case hex, the form the
// registry and the CLI show.
func SerialHex(cert *x509.Certificate) string { return fmt.Sprintf("%x", cert.SerialNumber) }

// EncodeCert returns cert in PEM.
func EncodeCert(cert *x509.Certificate) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw})
}

func randomSerial() *big.Int {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	b[0] &= 0x7f // positive
	b[0] |= 0x40 // and always 16 bytes long
	return new(big.Int).SetBytes(b)
}

func publicKeysEqual(a, b crypto.PublicKey) bool {
	ea, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && ea.Equal(b)
}
