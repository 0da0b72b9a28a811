// Package enroll is the box's side of enrollment. On first boot the box
// makes its own key (a KeyStore: a 0600 file today, a TPM later; the key
// never leaves the box), reads the claim file district IT put on the boot
// partition (DefaultClaimPath), sends a CSR with the claim's token to the
// hub it names, over HTTPS pinned to the hub CA's fingerprint, and stores
// the identity the hub returns (device id, certificate, the hub's CA, the
// broker URL) crash-safely. From then on it renews the certificate before
// it expires, with its key as the only proof, and never uses the claim again.
//
// A refusal (expired, exhausted, revoked or unknown claim; revoked device)
// is reported through Status and the OnChange hook, which the daemon turns
// into a log line and an LED pattern; the Enroller keeps retrying slowly, as
// IT may fix the claim file or the hub.
package enroll

import (
	"context"
	"crypto"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"time"

	"github.com/classcap/classcap/provisioning/enrollapi"
)

// State is where the box stands in enrollment.
type State string

// The states.
const (
	Unenrolled State = "unenrolled" // no identity and no usable claim file yet
	Enrolling  State = "enrolling"  // a claim is being tried
	Refused    State = "refused"    // the hub refused the claim or the renewal (Status.Reason says why)
	Enrolled   State = "enrolled"   // the box has a certificate
)

// Status is the enrollment state reported in the box's status and logs.
type Status struct {
	State    State            `json:"state"`
	DeviceID string           `json:"device_id,omitempty"`
	Group    string           `json:"group,omitempty"`
	Serial   string           `json:"serial,omitempty"`
	NotAfter time.Time        `json:"not_after,omitempty"`
	Reason   enrollapi.Reason `json:"reason,omitempty"` // with Refused
	Error    string           `json:"error,omitempty"`  // the last failure, if any
}

// Config says where the Enroller keeps its files.
type Config struct {
	Dir       string   // identity directory, e.g. <data_dir>/identity
	ClaimPath string   // claim file, e.g. /boot/firmware/classcap-claim
	Keys      KeyStore // nil: a FileKeyStore at Dir/key.pem
	Hostname  string   // sent for the operator's eyes
	// OnChange is called (from the Enroller's goroutine) with every new status.
	OnChange func(Status)
	// RenewFraction of the certificate's validity left at which it is
	// renewed; 0 means 1/3.
	RenewFraction float64
}

// Enroller enrolls the box and keeps its certificate fresh.
type Enroller struct {
	cfg Config
	log *slog.Logger
	now func() time.Time

	poke chan struct{}

	mu     sync.Mutex
	status Status
	id     *Identity
}

// Poke makes Run look again now (at its next wait) instead of at the time it
// planned: call it when the clock was set at sync, or when the broker
// refused the certificate.
func (e *Enroller) Poke() {
	select {
	case e.poke <- struct{}{}:
	default:
	}
}

// New returns an Enroller; it loads an existing identity if there is one.
func New(cfg Config, log *slog.Logger) (*Enroller, error) {
	if cfg.Keys == nil {
		cfg.Keys = &FileKeyStore{Path: filepath.Join(cfg.Dir, KeyFile)}
	}
	if cfg.RenewFraction <= 0 || cfg.RenewFraction >= 1 {
		cfg.RenewFraction = 1.0 / 3
	}
	e := &Enroller{cfg: cfg, log: log, now: time.Now, status: Status{State: Unenrolled}, poke: make(chan struct{}, 1)}
	id, err := LoadIdentity(cfg.Dir)
	switch {
	case err == nil:
		e.setIdentity(id)
	case errors.Is(err, ErrNotEnrolled):
	default:
		return nil, err
	}
	return e, nil
}

// SetClock replaces the clock used to decide renewals (tests).
func (e *Enroller) SetClock(now func() time.Time) { e.now = now }

// Keys returns the key store.
func (e *Enroller) Keys() KeyStore { return e.cfg.Keys }

// Identity returns the current identity, or nil before enrollment.
func (e *Enroller) Identity() *Identity {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.id
}

// Status returns the current status.
func (e *Enroller) Status() Status {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.status
}

func (e *Enroller) set(s Status) {
	e.mu.Lock()
	// A refusal is reported at every attempt, so the LED shows it again
	// after a lesson.
	changed := s != e.status || s.State == Refused
	e.status = s
	e.mu.Unlock()
	if changed && e.cfg.OnChange != nil {
		e.cfg.OnChange(s)
	}
}

func (e *Enroller) setIdentity(id *Identity) {
	e.mu.Lock()
	e.id = id
	e.mu.Unlock()
	e.set(Status{State: Enrolled, DeviceID: id.DeviceID, Group: id.Group, Serial: id.Serial, NotAfter: id.NotAfter})
}

// Enroll makes one enrollment attempt with the claim file. It returns the
// new identity, a *Refusal from the hub, or another error (no claim file,
// network). A box that is enrolled never sends its claim again.
func (e *Enroller) Enroll(ctx context.Context) (*Identity, error) {
	if id := e.Identity(); id != nil {
		return id, nil
	}
	c, err := ReadClaim(e.cfg.ClaimPath)
	if err != nil {
		e.set(Status{State: Unenrolled, Error: err.Error()})
		return nil, err
	}
	e.set(Status{State: Enrolling})
	key, err := e.cfg.Keys.Signer()
	if err != nil {
		e.set(Status{State: Unenrolled, Error: err.Error()})
		return nil, err
	}
	csr, err := MakeCSR(key, e.cfg.Hostname)
	if err != nil {
		return nil, err
	}
	tlsCfg, err := pinnedTLS(c.Hub, c.CASHA256)
	if err != nil {
		return nil, fmt.Errorf("claim hub %q: %w", c.Hub, err)
	}
	resp, err := post(ctx, tlsCfg, c.Hub, enrollapi.EnrollPath,
		enrollapi.Request{V: enrollapi.Version, Claim: c.Token, CSR: string(csr), Hostname: e.cfg.Hostname})
	if err != nil {
		e.fail(err)
		return nil, err
	}
	id := &Identity{DeviceID: resp.DeviceID, Group: resp.Group, Hub: c.Hub, BrokerURL: resp.BrokerURL,
		CertPEM: resp.Certificate, CAPEM: resp.CA}
	if err := e.accept(id, key.Public(), c.CASHA256); err != nil {
		e.fail(err)
		return nil, err
	}
	e.log.Info("enrolled", "device", id.DeviceID, "group", id.Group, "serial", id.Serial,
		"not_after", id.NotAfter, "broker", id.BrokerURL)
	return id, nil
}

// accept checks a new identity (the certificate carries our key, the CA is
// the pinned one if pin is set) and stores it.
func (e *Enroller) accept(id *Identity, pub crypto.PublicKey, pin string) error {
	if err := id.parse(); err != nil {
		return fmt.Errorf("hub's answer: %w", err)
	}
	if k, ok := id.cert.PublicKey.(interface{ Equal(crypto.PublicKey) bool }); !ok || !k.Equal(pub) {
		return errors.New("hub's answer: the certificate is not for this box's key")
	}
	if pin != "" && fingerprint(id.ca) != pin {
		return errors.New("hub's answer: its CA is not the one the claim pins")
	}
	if err := id.save(e.cfg.Dir); err != nil {
		return err
	}
	e.setIdentity(id)
	return nil
}

func (e *Enroller) fail(err error) {
	var rf *Refusal
	st := Status{State: Unenrolled, Error: err.Error()}
	if id := e.Identity(); id != nil {
		st = Status{State: Enrolled, DeviceID: id.DeviceID, Group: id.Group, Serial: id.Serial, NotAfter: id.NotAfter, Error: err.Error()}
	}
	if errors.As(err, &rf) {
		st.State, st.Reason = Refused, rf.Reason
		e.log.Error("hub refused", "reason", rf.Reason, "detail", rf.Detail)
	} else {
		e.log.Warn("enrollment failed", "err", err)
	}
	e.set(st)
}

// RenewAt returns when the current certificate should be renewed: when
// RenewFraction of its validity is left.
func (e *Enroller) RenewAt() (time.Time, bool) {
	id := e.Identity()
	if id == nil {
		return time.Time{}, false
	}
	c := id.cert
	life := c.NotAfter.Sub(c.NotBefore)
	return c.NotAfter.Add(-time.Duration(float64(life) * e.cfg.RenewFraction)), true
}

// Renew asks the hub for a new certificate for the box's key.
func (e *Enroller) Renew(ctx context.Context) (*Identity, error) {
	old := e.Identity()
	if old == nil {
		return nil, ErrNotEnrolled
	}
	key, err := e.cfg.Keys.Signer()
	if err != nil {
		return nil, err
	}
	csr, err := MakeCSR(key, e.cfg.Hostname)
	if err != nil {
		return nil, err
	}
	tlsCfg, err := caTLS(old.Hub, old.ca)
	if err != nil {
		return nil, err
	}
	resp, err := post(ctx, tlsCfg, old.Hub, enrollapi.RenewPath,
		enrollapi.Request{V: enrollapi.Version, CSR: string(csr), Hostname: e.cfg.Hostname})
	if err != nil {
		e.fail(err)
		return nil, err
	}
	if resp.DeviceID != old.DeviceID {
		err := fmt.Errorf("hub renewed the certificate for %q, this box is %q", resp.DeviceID, old.DeviceID)
		e.fail(err)
		return nil, err
	}
	id := &Identity{DeviceID: resp.DeviceID, Group: resp.Group, Hub: old.Hub, BrokerURL: resp.BrokerURL,
		CertPEM: resp.Certificate, CAPEM: resp.CA}
	if err := e.accept(id, key.Public(), fingerprint(old.ca)); err != nil {
		e.fail(err)
		return nil, err
	}
	e.log.Info("certificate renewed", "device", id.DeviceID, "serial", id.Serial, "not_after", id.NotAfter)
	return id, nil
}

// Retry pauses: after a refusal the claim file or the hub needs a person,
// so the box asks rarely; after a network error it asks again soon.
var (
	RetryRefused = 5 * time.Minute
	RetryError   = 30 * time.Second
	RetryMax     = 30 * time.Minute
)

// Run enrolls (if needed) and then renews before expiry, until ctx ends.
// It never gives up: failures are retried with growing pauses.
func (e *Enroller) Run(ctx context.Context) error {
	pause := time.Duration(0)
	grow := func(err error) {
		var rf *Refusal
		base := RetryError
		if errors.As(err, &rf) {
			base = RetryRefused
		}
		switch {
		case pause < base:
			pause = base
		default:
			pause = min(pause*2, RetryMax)
		}
	}
	for {
		var wait time.Duration
		if e.Identity() == nil {
			if _, err := e.Enroll(ctx); err != nil {
				grow(err)
				wait = pause
			} else {
				pause = 0
			}
		} else {
			at, _ := e.RenewAt()
			if d := at.Sub(e.now()); d > 0 {
				wait = d
			} else if _, err := e.Renew(ctx); err != nil {
				grow(err)
				wait = pause
			} else if at, _ := e.RenewAt(); !at.After(e.now()) {
				// Due again at once: this clock is ahead of the hub's.
				// Do not hammer the hub; try again later.
				e.log.Warn("renewed certificate is already due: the box's clock is ahead of the hub's", "renew_at", at)
				grow(errors.New("clock ahead"))
				wait = pause
			} else {
				pause = 0
			}
		}
		if wait > 0 {
			// Re-check at least hourly: the clock may jump at sync.
			t := time.NewTimer(min(wait, time.Hour))
			select {
			case <-ctx.Done():
				t.Stop()
				return nil
			case <-t.C:
			case <-e.poke:
				t.Stop()
				pause = 0
			}
		} else if ctx.Err() != nil {
			return nil
		}
	}
}
