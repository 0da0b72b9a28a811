// Package broker is the hub's embedded MQTT broker (mochi-mqtt, MQTT 3.1.1
// and 5) with the project's authentication and access control: a device
// logs in with its id as user name and the password the registry issued,
// and reaches only its own topics (package acl); the hub's client logs in
// as acl.HubUser with a password made for this process.
//
// Enrolled boxes connect to a second, mutual-TLS listener (ListenTLS): the
// client certificate, issued by the hub's CA and not revoked, is the
// device's identity, and no password is used there.
package broker

import (
	"context"
	"crypto/subtle"
	"fmt"
	"log/slog"
	"net"
	"strings"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/classcap/classcap/hub/acl"
)

// Passwords checks a device's MQTT password (the registry).
type Passwords interface {
	CheckPassword(id, password string) bool
}

// Broker is the embedded broker, listening from New until Run returns.
type Broker struct {
	srv  *mqtt.Server
	ln   *gatedListener
	tls  *gatedListener // the mutual-TLS listener's TCP side (ListenTLS), or nil
	log  *slog.Logger
	auth *authHook
}

// New listens on listen (host:port; port 0 picks a free one). hubPassword
// is the password of acl.HubUser.
func New(listen string, pw Passwords, hubPassword string, log *slog.Logger) (*Broker, error) {
	srv := mqtt.New(&mqtt.Options{
		Logger:       slog.New(quietHandler{log.Handler()}).With("part", "mochi"),
		InlineClient: false,
	})
	srv.Options.Capabilities.MaximumSessionExpiryInterval = 7 * 24 * 3600
	h := &authHook{pw: pw, hubPassword: hubPassword, log: log}
	if err := srv.AddHook(h, nil); err != nil {
		return nil, fmt.Errorf("broker: add auth hook: %w", err)
	}
	nl, err := net.Listen("tcp", listen)
	if err != nil {
		return nil, fmt.Errorf("broker: listen %s: %w", listen, err)
	}
	ln := newGatedListener(nl)
	if err := srv.AddListener(listeners.NewNet("tcp", ln)); err != nil {
		ln.Close()
		return nil, fmt.Errorf("broker: listen %s: %w", listen, err)
	}
	return &Broker{srv: srv, ln: ln, log: log, auth: h}, nil
}

// Addr is the address the broker listens on (host:port).
func (b *Broker) Addr() string { return b.ln.Addr().String() }

// LocalURL is the URL at which a client on this machine reaches the broker:
// tcp://Addr, with a wildcard host (0.0.0.0, ::) replaced by 127.0.0.1.
func (b *Broker) LocalURL() string {
	host, port, err := net.SplitHostPort(b.Addr())
	if err != nil {
		return "tcp://" + b.Addr()
	}
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	return "tcp://" + net.JoinHostPort(host, port)
}

// quietHandler passes on mochi's warnings and errors only: at info it logs
// every client's connect and disconnect, which drowns the hub's own log when
// hundreds of boxes come and go.
type quietHandler struct{ slog.Handler }

func (h quietHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= slog.LevelWarn && h.Handler.Enabled(ctx, l)
}

func (h quietHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return quietHandler{h.Handler.WithAttrs(as)}
}

func (h quietHandler) WithGroup(name string) slog.Handler {
	return quietHandler{h.Handler.WithGroup(name)}
}

// Run serves until ctx is cancelled, then disconnects every client.
func (b *Broker) Run(ctx context.Context) error {
	if err := b.srv.Serve(); err != nil {
		return fmt.Errorf("broker: serve: %w", err)
	}
	b.log.Info("MQTT broker listening", "addr", b.Addr())
	<-ctx.Done()
	// No connection may be half-way into the server while it closes.
	b.ln.drain()
	if b.tls != nil {
		b.tls.drain()
	}
	if err := b.srv.Close(); err != nil {
		return fmt.Errorf("broker: close: %w", err)
	}
	return nil
}

// authHook authenticates connections and checks every publish and
// subscription against acl.Allowed.
type authHook struct {
	mqtt.HookBase
	pw          Passwords
	hubPassword string
	certs       CertAuthorizer // for the TLS listener (ListenTLS)
	log         *slog.Logger
}

func (h *authHook) ID() string { return "classcap-auth" }

func (h *authHook) Provides(b byte) bool {
	return b == mqtt.OnConnectAuthenticate || b == mqtt.OnACLCheck
}

// OnConnectAuthenticate accepts acl.HubUser with the hub's password and a
// registered device with its own. A device's client id must be its id, or
// start with its id and "-" (so it cannot take over another's session), and
// its will must go to a topic it may publish. On the TLS listener the
// certificate authenticates instead (authenticateCert).
func (h *authHook) OnConnectAuthenticate(cl *mqtt.Client, pk packets.Packet) bool {
	if cl.Net.Listener == tlsListenerID {
		return h.authenticateCert(cl, pk)
	}
	user := string(pk.Connect.Username)
	ok := false
	switch {
	case user == "":
	case user == acl.HubUser:
		ok = subtle.ConstantTimeCompare(pk.Connect.Password, []byte(h.hubPassword)) == 1
	case !clientIDOf(cl.ID, user):
		h.log.Warn("MQTT connect refused: client id is not the device's", "user", user, "client", cl.ID)
		return false
	default:
		ok = h.pw.CheckPassword(user, string(pk.Connect.Password))
	}
	if !ok {
		h.log.Warn("MQTT connect refused: bad user name or password", "user", user, "client", cl.ID, "remote", cl.Net.Remote)
		return false
	}
	if pk.Connect.WillFlag && !acl.Allowed(user, pk.Connect.WillTopic, true) {
		h.log.Warn("MQTT connect refused: will topic not allowed", "user", user, "topic", pk.Connect.WillTopic)
		return false
	}
	return true
}

func clientIDOf(clientID, user string) bool {
	return clientID == user || strings.HasPrefix(clientID, user+"-")
}

// OnACLCheck allows what acl.Allowed allows the client's user.
func (h *authHook) OnACLCheck(cl *mqtt.Client, topic string, write bool) bool {
	user := string(cl.Properties.Username)
	if acl.Allowed(user, topic, write) {
		return true
	}
	h.log.Warn("MQTT access refused", "user", user, "topic", topic, "write", write)
	return false
}
