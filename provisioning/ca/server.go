package ca

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/classcap/classcap/capture/durable"
)

// Server certificate files inside the CA directory.
const (
	ServerKeyFile  = "server.key"
	ServerCertFile = "server.crt"
)

// ServerValidity is how long the hub's TLS server certificate is valid; it
// is issued again at start when less than a third is left.
const ServerValidity = 365 * 24 * time.Hour

// ServerCertificate returns the hub's TLS server certificate for names (the
// host names and addresses boxes use to reach the hub), with the root in
// its chain so that a box pinning the root's fingerprint finds it. It is
// kept in dir beside the root and issued again when missing, for other
// names, or past two thirds of its validity.
func (c *CA) ServerCertificate(dir string, names []string) (tls.Certificate, error) {
	keyPath, certPath := filepath.Join(dir, ServerKeyFile), filepath.Join(dir, ServerCertFile)
	if cert, err := tls.LoadX509KeyPair(certPath, keyPath); err == nil && c.serverCertFresh(cert, names) {
		cert.Certificate = append(cert.Certificate, c.cert.Raw)
		return cert, nil
	} else if err != nil && !errors.Is(err, os.ErrNotExist) {
		return tls.Certificate{}, fmt.Errorf("ca: load server certificate: %w", err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("ca: server key: %w", err)
	}
	leaf, err := c.SignServer(key.Public(), names, ServerValidity)
	if err != nil {
		return tls.Certificate{}, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return tls.Certificate{}, err
	}
	if err := durable.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		return tls.Certificate{}, fmt.Errorf("ca: write server key: %w", err)
	}
	if err := durable.WriteFile(certPath, EncodeCert(leaf), 0o644); err != nil {
		return tls.Certificate{}, fmt.Errorf("ca: write server certificate: %w", err)
	}
	return tls.Certificate{Certificate: [][]byte{leaf.Raw, c.cert.Raw}, PrivateKey: key, Leaf: leaf}, nil
}

func (c *CA) serverCertFresh(cert tls.Certificate, names []string) bool {
	leaf, err := x509.ParseCertificate(cert.Certificate[0])
	if err != nil || leaf.CheckSignatureFrom(c.cert) != nil {
		return false
	}
	var have []string
	have = append(have, leaf.DNSNames...)
	for _, ip := range leaf.IPAddresses {
		have = append(have, ip.String())
	}
	want := slices.Clone(names)
	slices.Sort(have)
	slices.Sort(want)
	if !slices.Equal(have, want) {
		return false
	}
	life := leaf.NotAfter.Sub(leaf.NotBefore)
	return c.now().Before(leaf.NotAfter.Add(-life / 3))
}
