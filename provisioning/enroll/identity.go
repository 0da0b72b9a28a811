package enroll

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"github.com/classcap/classcap/capture/durable"
)

// File names inside the identity directory (<data_dir>/identity).
const (
	KeyFile      = "key.pem"       // the box's private key (FileKeyStore), mode 0600
	IdentityFile = "identity.json" // everything enrollment returned, written in one atomic step
)

// ErrNotEnrolled is returned by LoadIdentity when the box has no identity.
var ErrNotEnrolled = errors.New("not enrolled")

// Identity is what enrollment gave the box.
type Identity struct {
	DeviceID  string    `json:"device_id"`
	Group     string    `json:"group"`
	Hub       string    `json:"hub"`        // https URL of the registrar (renewals)
	BrokerURL string    `json:"broker_url"` // MQTT over TLS, client certificate required
	CertPEM   string    `json:"certificate"`
	CAPEM     string    `json:"ca"`
	Serial    string    `json:"serial"`
	NotAfter  time.Time `json:"not_after"`

	cert *x509.Certificate
	ca   *x509.Certificate
}

// Certificate returns the device certificate.
func (id *Identity) Certificate() *x509.Certificate { return id.cert }

// CA returns the hub's root certificate.
func (id *Identity) CA() *x509.Certificate { return id.ca }

// parse fills the parsed certificates and checks they belong together.
func (id *Identity) parse() error {
	cert, err := parseCertPEM(id.CertPEM)
	if err != nil {
		return fmt.Errorf("certificate: %w", err)
	}
	root, err := parseCertPEM(id.CAPEM)
	if err != nil {
		return fmt.Errorf("ca: %w", err)
	}
	if err := cert.CheckSignatureFrom(root); err != nil {
		return fmt.Errorf("certificate not issued by the hub's CA: %w", err)
	}
	if id.DeviceID == "" || cert.Subject.CommonName != id.DeviceID {
		return fmt.Errorf("certificate names %q, identity says %q", cert.Subject.CommonName, id.DeviceID)
	}
	id.cert, id.ca = cert, root
	id.NotAfter = cert.NotAfter.UTC()
	id.Serial = fmt.Sprintf("%x", cert.SerialNumber)
	return nil
}

func parseCertPEM(s string) (*x509.Certificate, error) {
	b, _ := pem.Decode([]byte(s))
	if b == nil || b.Type != "CERTIFICATE" {
		return nil, errors.New("no CERTIFICATE PEM block")
	}
	return x509.ParseCertificate(b.Bytes)
}

// LoadIdentity reads the identity in dir; ErrNotEnrolled when there is none.
func LoadIdentity(dir string) (*Identity, error) {
	b, err := os.ReadFile(filepath.Join(dir, IdentityFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, ErrNotEnrolled
	}
	if err != nil {
		return nil, fmt.Errorf("read identity: %w", err)
	}
	var id Identity
	if err := json.Unmarshal(b, &id); err != nil {
		return nil, fmt.Errorf("identity %s: %w", filepath.Join(dir, IdentityFile), err)
	}
	if err := id.parse(); err != nil {
		return nil, fmt.Errorf("identity %s: %w", filepath.Join(dir, IdentityFile), err)
	}
	return &id, nil
}

// save writes the identity crash-safely: a reader finds the old or the new
// one, never a mix of a new certificate and an old CA.
func (id *Identity) save(dir string) error {
	b, err := json.MarshalIndent(id, "", "  ")
	if err != nil {
		return err
	}
	if err := durable.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("identity dir: %w", err)
	}
	if err := durable.WriteFile(filepath.Join(dir, IdentityFile), append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("write identity: %w", err)
	}
	return nil
}

// TLSConfig returns the client TLS configuration for the hub's broker: the
// device certificate with the key from keys, and only the hub's root as a
// trusted CA. The server name is taken from BrokerURL.
func (id *Identity) TLSConfig(keys KeyStore) (*tls.Config, error) {
	key, err := keys.Signer()
	if err != nil {
		return nil, err
	}
	u, err := url.Parse(id.BrokerURL)
	if err != nil {
		return nil, fmt.Errorf("broker url %q: %w", id.BrokerURL, err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(id.ca)
	return &tls.Config{
		Certificates: []tls.Certificate{{Certificate: [][]byte{id.cert.Raw}, PrivateKey: key, Leaf: id.cert}},
		RootCAs:      pool,
		ServerName:   u.Hostname(),
		MinVersion:   tls.VersionTLS12,
	}, nil
}

func fingerprint(c *x509.Certificate) string {
	sum := sha256.Sum256(c.Raw)
	return hex.EncodeToString(sum[:])
}
