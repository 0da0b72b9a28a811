// Package enrollapi is the wire format of enrollment between a box and the
// hub's registrar: JSON over HTTPS, the hub's server certificate checked
// against the CA fingerprint the box's claim file pins.
//
//	POST /api/v1/enroll  Request{Claim, CSR}  -> 200 Response | Refusal
//	POST /api/v1/renew   Request{CSR}         -> 200 Response | Refusal
//
// A renewal needs no claim: its CSR is signed with the key the hub already
// knows, which proves the sender holds it (a certificate is worthless
// without that key).
package enrollapi

// Paths of the enrollment endpoints.
const (
	EnrollPath = "/api/v1/enroll"
	RenewPath  = "/api/v1/renew"
)

// Version is the "v" of every payload.
const Version = 1

// MaxBody bounds a request body.
const MaxBody = 64 << 10

// Request is the body of an enrollment or a renewal.
type Request struct {
	V        int    `json:"v"`
	Claim    string `json:"claim,omitempty"`    // the claim token (enroll only)
	CSR      string `json:"csr"`                // PEM certificate request signed by the box's key
	Hostname string `json:"hostname,omitempty"` // for the operator's eyes only
}

// Response is a successful enrollment or renewal.
type Response struct {
	V           int    `json:"v"`
	DeviceID    string `json:"device_id"`
	Group       string `json:"group"`
	Certificate string `json:"certificate"` // PEM: the device certificate
	CA          string `json:"ca"`          // PEM: the hub's root, for the broker's certificate
	Serial      string `json:"serial"`      // hex
	NotAfter    string `json:"not_after"`   // RFC 3339
	BrokerURL   string `json:"broker_url"`  // e.g. ssl://hub.example:8883 (mTLS)
}

// Reason says why a request was refused.
type Reason string

// The reasons a request is refused.
const (
	ClaimUnknown    Reason = "unknown"          // no such claim on this hub
	ClaimExpired    Reason = "expired"          // the claim is past its expiry
	ClaimExhausted  Reason = "exhausted"        // every use of the claim is taken
	ClaimRevoked    Reason = "revoked"          // an operator revoked the claim
	AlreadyEnrolled Reason = "already_enrolled" // this key is enrolled: renew with it instead
	DeviceRevoked   Reason = "device_revoked"   // the device was revoked
	NotEnrolled     Reason = "not_enrolled"     // renewal for a key the hub does not know
	BadRequest      Reason = "bad_request"      // malformed body or CSR
	Internal        Reason = "internal"         // the hub failed; retry later
)

// Refusal is the body of every non-200 answer.
type Refusal struct {
	V      int    `json:"v"`
	Reason Reason `json:"reason"`
	Error  string `json:"error"` // human-readable detail
}
