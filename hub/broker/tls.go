package broker

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/classcap/classcap/hub/acl"
)

// tlsListenerID names the mutual-TLS listener among mochi's listeners.
const tlsListenerID = "mtls"

// CertAuthorizer decides whether a device certificate (already verified
// against the client CAs by the TLS handshake) may connect, and names the
// device: the registrar, which knows about revocation.
type CertAuthorizer interface {
	Authorize(cert *x509.Certificate) (deviceID string, err error)
}

// ListenTLS adds a listener on listen (host:port; port 0 picks a free one)
// that requires a client certificate issued by clientCAs. A device
// connecting there is the device its certificate names (certs decides): its
// user name, if it sends one, must be that id, and no password is needed.
// Call before Run.
func (b *Broker) ListenTLS(listen string, server tls.Certificate, clientCAs *x509.CertPool, certs CertAuthorizer) error {
	nl, err := net.Listen("tcp", listen)
	if err != nil {
		return fmt.Errorf("broker: listen tls %s: %w", listen, err)
	}
	gate := newGatedListener(nl)
	l := listeners.NewNet(tlsListenerID, tls.NewListener(gate, &tls.Config{
		Certificates: []tls.Certificate{server},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    clientCAs,
		MinVersion:   tls.VersionTLS12,
	}))
	if err := b.srv.AddListener(l); err != nil {
		gate.Close()
		return fmt.Errorf("broker: listen tls %s: %w", listen, err)
	}
	b.tls = gate
	b.auth.certs = certs
	return nil
}

// TLSAddr is the address of the mutual-TLS listener, or "" without one.
func (b *Broker) TLSAddr() string {
	if b.tls == nil {
		return ""
	}
	return b.tls.Addr().String()
}

// DisconnectDevice closes the connections of device id on the TLS listener
// (after a revocation) and reports how many it closed.
func (b *Broker) DisconnectDevice(id string) int {
	n := 0
	for _, cl := range b.srv.Clients.GetByListener(tlsListenerID) {
		if string(cl.Properties.Username) == id {
			_ = b.srv.DisconnectClient(cl, packets.ErrNotAuthorized)
			n++
		}
	}
	return n
}

// authenticateCert authenticates a connection on the TLS listener by its
// client certificate.
func (h *authHook) authenticateCert(cl *mqtt.Client, pk packets.Packet) bool {
	tc, ok := cl.Net.Conn.(*tls.Conn)
	if !ok || h.certs == nil {
		h.log.Warn("MQTT connect refused: no TLS state on the TLS listener", "client", cl.ID)
		return false
	}
	st := tc.ConnectionState()
	if len(st.PeerCertificates) == 0 {
		h.log.Warn("MQTT connect refused: no client certificate", "client", cl.ID, "remote", cl.Net.Remote)
		return false
	}
	id, err := h.certs.Authorize(st.PeerCertificates[0])
	if err != nil {
		h.log.Warn("MQTT connect refused: device certificate", "client", cl.ID, "remote", cl.Net.Remote, "err", err)
		return false
	}
	if user := string(pk.Connect.Username); user != "" && user != id {
		h.log.Warn("MQTT connect refused: user name is not the certificate's device", "user", user, "device", id)
		return false
	}
	if !clientIDOf(cl.ID, id) {
		h.log.Warn("MQTT connect refused: client id is not the device's", "device", id, "client", cl.ID)
		return false
	}
	if pk.Connect.WillFlag && !acl.Allowed(id, pk.Connect.WillTopic, true) {
		h.log.Warn("MQTT connect refused: will topic not allowed", "device", id, "topic", pk.Connect.WillTopic)
		return false
	}
	// The ACL checks go by user name: the certificate's device.
	cl.Properties.Username = []byte(id)
	return true
}
