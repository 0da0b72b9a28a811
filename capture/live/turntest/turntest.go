// Package turntest runs a TURN server (pion/turn) on loopback for tests of
// live view through a relay: UDP on 127.0.0.1 at a free port, one user with
// a static long-term credential (and, if asked, credentials made from a
// shared secret), relayed addresses on 127.0.0.1. It counts
// the bytes clients send it, so a test can tell that media went through it.
package turntest

import (
	"fmt"
	"net"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/pion/turn/v5"
	"github.com/pion/webrtc/v4"
)

// Realm, Username and Password are the server's only credential.
const (
	Realm    = "classcap.test"
	Username = "classcap"
	Password = "relay-secret"
)

// Server is a running TURN server.
type Server struct {
	// URL is turn:127.0.0.1:<port>?transport=udp.
	URL string

	received    atomic.Uint64
	sharedUsers atomic.Uint64
}

// SharedSecretAuths counts the requests the server let in on credentials
// made from its shared secret.
func (s *Server) SharedSecretAuths() uint64 { return s.sharedUsers.Load() }

// Start runs a TURN server until the test ends.
func Start(t testing.TB) *Server {
	t.Helper()
	return start(t, "")
}

// StartWithSecret runs a TURN server that also takes credentials made
// from a shared secret, as coturn's static-auth-secret does (the "TURN REST
// API": username "<expiry>:<user>", password base64(HMAC-SHA1(secret,
// username)), refused once expiry, in Unix seconds, has passed).
func StartWithSecret(t testing.TB, secret string) *Server {
	t.Helper()
	return start(t, secret)
}

func start(t testing.TB, secret string) *Server {
	t.Helper()
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("turntest: listen: %v", err)
	}
	s := &Server{URL: fmt.Sprintf("turn:%s?transport=udp", pc.LocalAddr())}
	key := turn.GenerateAuthKey(Username, Realm, Password)
	var shared turn.AuthHandler
	if secret != "" {
		shared = turn.LongTermTURNRESTAuthHandler(secret, nil)
	}
	srv, err := turn.NewServer(turn.ServerConfig{
		Realm: Realm,
		AuthHandler: func(ra *turn.RequestAttributes) (string, []byte, bool) {
			if ra.Username == Username {
				return ra.Username, key, true
			}
			if shared != nil {
				if user, k, ok := shared(ra); ok {
					s.sharedUsers.Add(1)
					return user, k, true
				}
			}
			return "", nil, false
		},
		PacketConnConfigs: []turn.PacketConnConfig{{
			PacketConn: &counting{PacketConn: pc, n: &s.received},
			RelayAddressGenerator: &turn.RelayAddressGeneratorStatic{
				RelayAddress: net.ParseIP("127.0.0.1"),
				Address:      "127.0.0.1",
			},
		}},
	})
	if err != nil {
		pc.Close()
		t.Fatalf("turntest: new server: %v", err)
	}
	t.Cleanup(func() { srv.Close() })
	return s
}

// ICEServer is the server as a pion ICE server, with its credential.
func (s *Server) ICEServer() webrtc.ICEServer {
	return webrtc.ICEServer{URLs: []string{s.URL}, Username: Username, Credential: Password}
}

// Received counts the bytes clients sent the server (requests and the
// data they relay).
func (s *Server) Received() uint64 { return s.received.Load() }

// PairSelector is a peer that tells its selected ICE candidate pair, such
// as a whep.Viewer.
type PairSelector interface {
	SelectedPair() (*webrtc.ICECandidatePair, error)
}

// RelayPair fails the test unless v's selected candidate pair is relayed
// on both sides, and returns it.
func RelayPair(t testing.TB, v PairSelector) *webrtc.ICECandidatePair {
	t.Helper()
	p, err := v.SelectedPair()
	if err != nil || p == nil {
		t.Fatalf("selected candidate pair: %v, %v", p, err)
	}
	if p.Local.Typ != webrtc.ICECandidateTypeRelay || p.Remote.Typ != webrtc.ICECandidateTypeRelay {
		t.Fatalf("selected pair %s, want relay to relay", p)
	}
	return p
}

// CarriedVideo fails the test if the server received fewer bytes than the
// videoBytes a viewer got: the media did not all go through it.
func (s *Server) CarriedVideo(t testing.TB, videoBytes uint64) {
	t.Helper()
	if got := s.Received(); got < videoBytes {
		t.Fatalf("the TURN server received %d bytes, fewer than the %d bytes of video the viewer got", got, videoBytes)
	}
}

// counting counts the bytes read from the server's socket.
type counting struct {
	net.PacketConn
	n *atomic.Uint64
}

func (c *counting) ReadFrom(b []byte) (int, net.Addr, error) {
	n, addr, err := c.PacketConn.ReadFrom(b)
	c.n.Add(uint64(n))
	return n, addr, err
}

// CandidateTypes counts the types of the ICE candidates in an SDP ("host",
// "srflx", "relay"), so a test can tell what a side offered.
func CandidateTypes(sdp string) map[string]int {
	out := map[string]int{}
	for line := range strings.Lines(sdp) {
		if !strings.HasPrefix(line, "a=candidate:") {
			continue
		}
		f := strings.Fields(line)
		for i := 0; i+1 < len(f); i++ {
			if f[i] == "typ" {
				out[f[i+1]]++
			}
		}
	}
	return out
}
