package enroll

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/classcap/classcap/provisioning/enrollapi"
)

// Refusal is the hub's refusal of an enrollment or a renewal.
type Refusal struct {
	Reason enrollapi.Reason
	Detail string
}

func (r *Refusal) Error() string { return "hub refused: " + string(r.Reason) + ": " + r.Detail }

// pinnedTLS trusts a server whose chain holds the CA with SHA-256
// fingerprint pin and whose leaf that CA signed for the URL's host. The
// box knows no CA before it enrolls: the claim file's pin is its anchor.
func pinnedTLS(hubURL, pin string) (*tls.Config, error) {
	u, err := url.Parse(hubURL)
	if err != nil {
		return nil, err
	}
	host := u.Hostname()
	pin = strings.ToLower(pin)
	return &tls.Config{
		MinVersion:         tls.VersionTLS12,
		InsecureSkipVerify: true, // replaced by the pinned check below
		VerifyConnection: func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return errors.New("hub sent no certificate")
			}
			var root *x509.Certificate
			for _, c := range cs.PeerCertificates {
				sum := sha256.Sum256(c.Raw)
				if hex.EncodeToString(sum[:]) == pin && c.IsCA {
					root = c
				}
			}
			if root == nil {
				return fmt.Errorf("hub's certificate chain does not hold the CA %s... the claim pins", pin[:min(16, len(pin))])
			}
			pool := x509.NewCertPool()
			pool.AddCert(root)
			_, err := cs.PeerCertificates[0].Verify(x509.VerifyOptions{
				Roots: pool, DNSName: host, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
			})
			if err != nil {
				return fmt.Errorf("hub certificate: %w", err)
			}
			return nil
		},
	}, nil
}

// caTLS trusts only root, for renewals.
func caTLS(hubURL string, root *x509.Certificate) (*tls.Config, error) {
	u, err := url.Parse(hubURL)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	pool.AddCert(root)
	return &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: pool, ServerName: u.Hostname()}, nil
}

// post sends req to hubURL+path over tlsCfg and decodes the answer.
func post(ctx context.Context, tlsCfg *tls.Config, hubURL, path string, req enrollapi.Request) (enrollapi.Response, error) {
	body, err := json.Marshal(req)
	if err != nil {
		return enrollapi.Response{}, err
	}
	client := &http.Client{
		Transport: &http.Transport{TLSClientConfig: tlsCfg, TLSHandshakeTimeout: 15 * time.Second, Proxy: nil},
		Timeout:   60 * time.Second,
	}
	defer client.CloseIdleConnections()
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(hubURL, "/")+path, bytes.NewReader(body))
	if err != nil {
		return enrollapi.Response{}, err
	}
	hr.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(hr)
	if err != nil {
		return enrollapi.Response{}, fmt.Errorf("post %s: %w", path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, enrollapi.MaxBody))
	if err != nil {
		return enrollapi.Response{}, fmt.Errorf("post %s: read answer: %w", path, err)
	}
	if resp.StatusCode != http.StatusOK {
		var rf enrollapi.Refusal
		if json.Unmarshal(b, &rf) == nil && rf.Reason != "" {
			return enrollapi.Response{}, &Refusal{Reason: rf.Reason, Detail: rf.Error}
		}
		return enrollapi.Response{}, fmt.Errorf("post %s: hub answered %s", path, resp.Status)
	}
	var out enrollapi.Response
	if err := json.Unmarshal(b, &out); err != nil {
		return enrollapi.Response{}, fmt.Errorf("post %s: answer: %w", path, err)
	}
	return out, nil
}
