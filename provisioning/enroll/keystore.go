package enroll

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"github.com/classcap/classcap/capture/durable"
)

// KeyStore holds the box's private key. The key is made on the box and
// never leaves it: callers get a crypto.Signer, never the key's bytes, so a
// TPM or a secure element can stand behind the same interface.
type KeyStore interface {
	// Signer returns the box's key, creating it on first use.
	Signer() (crypto.Signer, error)
}

// FileKeyStore keeps an ECDSA P-256 key in a PKCS#8 PEM file of mode 0600,
// written crash-safely (tmp, fsync, rename, fsync dir).
type FileKeyStore struct {
	Path string

	mu  sync.Mutex
	key crypto.Signer
}

var _ KeyStore = (*FileKeyStore)(nil)

// Signer loads the key, or generates and stores it when the file does not
// exist. A key file readable by anyone but its owner is refused.
func (s *FileKeyStore) Signer() (crypto.Signer, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.key != nil {
		return s.key, nil
	}
	b, err := os.ReadFile(s.Path)
	switch {
	case err == nil:
		st, err := os.Stat(s.Path)
		if err != nil {
			return nil, fmt.Errorf("key %s: %w", s.Path, err)
		}
		if st.Mode().Perm()&0o077 != 0 {
			return nil, fmt.Errorf("key %s: mode %04o lets others read it; want 0600", s.Path, st.Mode().Perm())
		}
		k, err := parseKey(b)
		if err != nil {
			return nil, fmt.Errorf("key %s: %w", s.Path, err)
		}
		s.key = k
		return k, nil
	case errors.Is(err, os.ErrNotExist):
	default:
		return nil, fmt.Errorf("key %s: %w", s.Path, err)
	}
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate key: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return nil, fmt.Errorf("marshal key: %w", err)
	}
	if err := durable.MkdirAll(filepath.Dir(s.Path), 0o700); err != nil {
		return nil, fmt.Errorf("key dir: %w", err)
	}
	if err := durable.WriteFile(s.Path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		return nil, fmt.Errorf("write key: %w", err)
	}
	s.key = k
	return k, nil
}

func parseKey(b []byte) (crypto.Signer, error) {
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "PRIVATE KEY" {
		return nil, errors.New("no PRIVATE KEY PEM block")
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		return nil, err
	}
	s, ok := k.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("key of type %T cannot sign", k)
	}
	return s, nil
}

// MakeCSR returns a PEM certificate request signed by key. The hub names
// the device; the subject here is only a hint for logs.
func MakeCSR(key crypto.Signer, hostname string) ([]byte, error) {
	tmpl := &x509.CertificateRequest{}
	tmpl.Subject.CommonName = hostname
	der, err := x509.CreateCertificateRequest(rand.Reader, tmpl, key)
	if err != nil {
		return nil, fmt.Errorf("create csr: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}), nil
}
