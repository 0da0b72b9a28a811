// Package registrar is the hub's side of enrollment. It redeems claim
// tokens, has the enrollment CA sign each box's CSR, keeps the identity of
// every enrolled device (group, key, certificate serial and expiry, revoked)
// in bbolt, renews certificates, and answers the broker whether a device
// certificate may connect.
//
// A device id is the claim's group and the first 8 hex digits of the
// SHA-256 of the box's public key ("school-12-3f9a0c41"): stable for the
// life of the key, unique in practice, and readable in a list.
package registrar

import (
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sort"
	"time"

	"github.com/classcap/classcap/provisioning/ca"
	"github.com/classcap/classcap/provisioning/claim"
	"github.com/classcap/classcap/provisioning/enrollapi"
	bolt "go.etcd.io/bbolt"
)

var (
	devicesBucket = []byte("identities")    // device id -> Device JSON
	keysBucket    = []byte("identity-keys") // key id -> device id
)

// ErrRevoked is returned by Authorize for a revoked device.
var ErrRevoked = errors.New("device revoked")

// ErrUnknownDevice is returned for a device id the registrar never enrolled.
var ErrUnknownDevice = errors.New("device not enrolled")

// Device is an enrolled box's identity.
type Device struct {
	ID         string    `json:"id"`
	Group      string    `json:"group"`
	KeyID      string    `json:"key_id"` // hex SHA-256 of the public key (PKIX DER)
	Serial     string    `json:"serial"` // hex serial of the newest certificate
	NotAfter   time.Time `json:"not_after"`
	Claim      string    `json:"claim"` // id of the claim it enrolled with
	Hostname   string    `json:"hostname,omitempty"`
	EnrolledAt time.Time `json:"enrolled_at"`
	RenewedAt  time.Time `json:"renewed_at,omitempty"`
	Revoked    bool      `json:"revoked"`
	RevokedAt  time.Time `json:"revoked_at,omitempty"`
}

// Registrar enrolls and renews devices.
type Registrar struct {
	ca        *ca.CA
	claims    *claim.Store
	db        claim.DB
	brokerURL string
	validity  time.Duration
	onEnroll  func(Device) error
	log       *slog.Logger
	now       func() time.Time
}

// Config holds what New needs besides its stores.
type Config struct {
	BrokerURL string        // handed to enrolled boxes, e.g. ssl://hub.example:8883
	Validity  time.Duration // of device certificates
	// OnEnrolled, if set, is called with each new device before the box
	// gets its certificate (the hub adds it to its device registry); an
	// error fails the enrollment and gives the claim's use back.
	OnEnrolled func(Device) error
}

// New returns a registrar over db (shared with claims), signing with authority.
func New(cfg Config, authority *ca.CA, claims *claim.Store, db claim.DB, log *slog.Logger) (*Registrar, error) {
	if cfg.Validity <= 0 {
		return nil, fmt.Errorf("registrar: certificate validity %v must be positive", cfg.Validity)
	}
	if err := db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{devicesBucket, keysBucket} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		return nil, fmt.Errorf("registrar: create buckets: %w", err)
	}
	return &Registrar{ca: authority, claims: claims, db: db, brokerURL: cfg.BrokerURL,
		validity: cfg.Validity, onEnroll: cfg.OnEnrolled, log: log, now: time.Now}, nil
}

// SetClock replaces the clock (tests).
func (r *Registrar) SetClock(now func() time.Time) { r.now = now }

// refuse builds a refusal error carrying its HTTP status.
type refusal struct {
	status int
	body   enrollapi.Refusal
}

func (e *refusal) Error() string { return string(e.body.Reason) + ": " + e.body.Error }

func refuse(status int, reason enrollapi.Reason, format string, a ...any) *refusal {
	return &refusal{status: status, body: enrollapi.Refusal{V: enrollapi.Version, Reason: reason, Error: fmt.Sprintf(format, a...)}}
}

// parseCSR reads a request's CSR and the key id of its public key; a CSR
// that cannot be read is refused as a bad request.
func parseCSR(csrPEM string) (*x509.CertificateRequest, string, error) {
	csr, err := ca.ParseCSR([]byte(csrPEM))
	if err != nil {
		return nil, "", refuse(http.StatusBadRequest, enrollapi.BadRequest, "%v", err)
	}
	keyID, err := ca.KeyID(csr.PublicKey)
	if err != nil {
		return nil, "", refuse(http.StatusBadRequest, enrollapi.BadRequest, "%v", err)
	}
	return csr, keyID, nil
}

// Enroll redeems req.Claim and signs req.CSR for a new device.
func (r *Registrar) Enroll(req enrollapi.Request) (enrollapi.Response, error) {
	csr, keyID, err := parseCSR(req.CSR)
	if err != nil {
		return enrollapi.Response{}, err
	}
	// A key that is enrolled uses its certificate from then on.
	if d, ok, err := r.byKey(keyID); err != nil {
		return enrollapi.Response{}, err
	} else if ok {
		if d.Revoked {
			return enrollapi.Response{}, refuse(http.StatusForbidden, enrollapi.DeviceRevoked, "device %s was revoked", d.ID)
		}
		return enrollapi.Response{}, refuse(http.StatusConflict, enrollapi.AlreadyEnrolled,
			"this key is enrolled as %s: renew with it, a claim is not accepted again", d.ID)
	}
	c, err := r.claims.Redeem(req.Claim)
	if err != nil {
		var cr *claim.Refusal
		if errors.As(err, &cr) {
			return enrollapi.Response{}, refuse(http.StatusForbidden, enrollapi.Reason(cr.Reason), "%s", cr.Error())
		}
		return enrollapi.Response{}, err
	}
	id := c.Group + "-" + keyID[:8]
	cert, err := r.ca.SignDevice(csr, id, r.validity)
	if err != nil {
		_ = r.claims.Release(req.Claim)
		return enrollapi.Response{}, err
	}
	now := r.now().UTC()
	d := Device{ID: id, Group: c.Group, KeyID: keyID, Serial: ca.SerialHex(cert), NotAfter: cert.NotAfter.UTC(),
		Claim: c.ID, Hostname: req.Hostname, EnrolledAt: now}
	err = r.db.Update(func(tx *bolt.Tx) error {
		if tx.Bucket(devicesBucket).Get([]byte(id)) != nil {
			return fmt.Errorf("device id %s is taken by another key", id)
		}
		if err := putDevice(tx, d); err != nil {
			return err
		}
		return tx.Bucket(keysBucket).Put([]byte(keyID), []byte(id))
	})
	if err != nil {
		_ = r.claims.Release(req.Claim)
		return enrollapi.Response{}, fmt.Errorf("registrar: enroll %s: %w", id, err)
	}
	if r.onEnroll != nil {
		if err := r.onEnroll(d); err != nil {
			_ = r.db.Update(func(tx *bolt.Tx) error {
				if err := tx.Bucket(keysBucket).Delete([]byte(keyID)); err != nil {
					return err
				}
				return tx.Bucket(devicesBucket).Delete([]byte(id))
			})
			_ = r.claims.Release(req.Claim)
			return enrollapi.Response{}, fmt.Errorf("registrar: enroll %s: %w", id, err)
		}
	}
	r.log.Info("device enrolled", "device", id, "group", c.Group, "claim", c.ID, "uses_left", c.UsesLeft,
		"serial", d.Serial, "not_after", d.NotAfter, "hostname", req.Hostname)
	return r.response(d, cert), nil
}

// Renew signs req.CSR again for the enrolled, unrevoked device that holds
// its key. An expired certificate may be renewed: a box stored over the
// holidays comes back without an operator; revocation is what cuts a box off.
func (r *Registrar) Renew(req enrollapi.Request) (enrollapi.Response, error) {
	csr, keyID, err := parseCSR(req.CSR)
	if err != nil {
		return enrollapi.Response{}, err
	}
	d, ok, err := r.byKey(keyID)
	switch {
	case err != nil:
		return enrollapi.Response{}, err
	case !ok:
		return enrollapi.Response{}, refuse(http.StatusForbidden, enrollapi.NotEnrolled, "no device holds this key: enroll with a claim")
	case d.Revoked:
		return enrollapi.Response{}, refuse(http.StatusForbidden, enrollapi.DeviceRevoked, "device %s was revoked", d.ID)
	}
	cert, err := r.ca.SignDevice(csr, d.ID, r.validity)
	if err != nil {
		return enrollapi.Response{}, err
	}
	err = r.db.Update(func(tx *bolt.Tx) error {
		cur, ok, err := getDevice(tx, d.ID)
		if err != nil {
			return err
		}
		if !ok || cur.Revoked {
			return refuse(http.StatusForbidden, enrollapi.DeviceRevoked, "device %s was revoked", d.ID)
		}
		cur.Serial, cur.NotAfter, cur.RenewedAt = ca.SerialHex(cert), cert.NotAfter.UTC(), r.now().UTC()
		d = cur
		return putDevice(tx, cur)
	})
	if err != nil {
		return enrollapi.Response{}, err
	}
	r.log.Info("certificate renewed", "device", d.ID, "serial", d.Serial, "not_after", d.NotAfter)
	return r.response(d, cert), nil
}

func (r *Registrar) response(d Device, cert *x509.Certificate) enrollapi.Response {
	return enrollapi.Response{
		V: enrollapi.Version, DeviceID: d.ID, Group: d.Group,
		Certificate: string(ca.EncodeCert(cert)), CA: string(r.ca.CertPEM()),
		Serial: d.Serial, NotAfter: d.NotAfter.Format(time.RFC3339), BrokerURL: r.brokerURL,
	}
}

// Revoke marks device id revoked: its certificates are refused by Authorize
// (so by the broker) and it can neither renew nor enroll again with its key.
func (r *Registrar) Revoke(id string) error {
	err := r.db.Update(func(tx *bolt.Tx) error {
		d, ok, err := getDevice(tx, id)
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("%w: %s", ErrUnknownDevice, id)
		}
		if d.Revoked {
			return nil
		}
		d.Revoked, d.RevokedAt = true, r.now().UTC()
		return putDevice(tx, d)
	})
	if err != nil {
		return fmt.Errorf("registrar: revoke: %w", err)
	}
	r.log.Info("device revoked", "device", id)
	return nil
}

// Authorize decides whether a verified device certificate (issued by this
// CA: the TLS layer checked that) may connect: the device must be enrolled,
// not revoked, and the certificate must carry the device's key.
func (r *Registrar) Authorize(cert *x509.Certificate) (string, error) {
	id, err := ca.DeviceID(cert)
	if err != nil {
		return "", err
	}
	keyID, err := ca.KeyID(cert.PublicKey)
	if err != nil {
		return "", err
	}
	var d Device
	var ok bool
	err = r.db.View(func(tx *bolt.Tx) error {
		d, ok, err = getDevice(tx, id)
		return err
	})
	switch {
	case err != nil:
		return "", fmt.Errorf("registrar: authorize %s: %w", id, err)
	case !ok:
		return "", fmt.Errorf("%w: %s", ErrUnknownDevice, id)
	case d.Revoked:
		return "", fmt.Errorf("%w: %s", ErrRevoked, id)
	case d.KeyID != keyID:
		return "", fmt.Errorf("device %s: certificate carries another key", id)
	}
	return id, nil
}

// Device returns the identity of device id.
func (r *Registrar) Device(id string) (Device, bool, error) {
	var d Device
	var ok bool
	err := r.db.View(func(tx *bolt.Tx) error {
		var err error
		d, ok, err = getDevice(tx, id)
		return err
	})
	return d, ok, err
}

// List returns every enrolled device, by id.
func (r *Registrar) List() ([]Device, error) {
	var out []Device
	err := r.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(devicesBucket).ForEach(func(k, v []byte) error {
			var d Device
			if err := json.Unmarshal(v, &d); err != nil {
				return fmt.Errorf("device %s: %w", k, err)
			}
			out = append(out, d)
			return nil
		})
	})
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, err
}

func (r *Registrar) byKey(keyID string) (Device, bool, error) {
	var d Device
	var ok bool
	err := r.db.View(func(tx *bolt.Tx) error {
		id := tx.Bucket(keysBucket).Get([]byte(keyID))
		if id == nil {
			return nil
		}
		var err error
		d, ok, err = getDevice(tx, string(id))
		return err
	})
	if err != nil {
		return Device{}, false, fmt.Errorf("registrar: look up key: %w", err)
	}
	return d, ok, nil
}

func getDevice(tx *bolt.Tx, id string) (Device, bool, error) {
	v := tx.Bucket(devicesBucket).Get([]byte(id))
	if v == nil {
		return Device{}, false, nil
	}
	var d Device
	if err := json.Unmarshal(v, &d); err != nil {
		return Device{}, false, fmt.Errorf("device %s: %w", id, err)
	}
	return d, true, nil
}

func putDevice(tx *bolt.Tx, d Device) error {
	v, err := json.Marshal(d)
	if err != nil {
		return err
	}
	return tx.Bucket(devicesBucket).Put([]byte(d.ID), v)
}
