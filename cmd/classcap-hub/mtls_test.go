package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/classcap/classcap/hub/broker"
	"github.com/classcap/classcap/hub/registry"
	"github.com/classcap/classcap/provisioning/ca"
	"github.com/classcap/classcap/provisioning/config"
	"github.com/classcap/classcap/provisioning/desired"
	"github.com/classcap/classcap/provisioning/enroll"
	"github.com/classcap/classcap/uplink/wire"
)

// mqttConnect connects a paho client over TLS and returns it, or the error.
func mqttConnect(t *testing.T, url, clientID, user string, tlsCfg *tls.Config, lost chan<- error) (paho.Client, error) {
	t.Helper()
	opts := paho.NewClientOptions().AddBroker(url).SetClientID(clientID).SetUsername(user).
		SetTLSConfig(tlsCfg).SetAutoReconnect(false).SetConnectRetry(false).
		SetConnectTimeout(10 * time.Second).SetProtocolVersion(4)
	if lost != nil {
		opts.SetConnectionLostHandler(func(_ paho.Client, err error) { lost <- err })
	}
	c := paho.NewClient(opts)
	tok := c.Connect()
	if !tok.WaitTimeout(20 * time.Second) {
		return nil, errors.New("connect timed out")
	}
	if err := tok.Error(); err != nil {
		return nil, err
	}
	return c, nil
}

// TestEnrolledBoxMutualTLS: an enrolled box connects to the hub's broker
// with its certificate only; the hub refuses a certificate from another CA,
// no certificate, and a user name that is not the certificate's; the box
// refuses a broker under the wrong name, from an unknown CA, or with an
// expired certificate; revoking the
// box disconnects it and keeps it out.
func TestEnrolledBoxMutualTLS(t *testing.T) {
	revocationPoll = 50 * time.Millisecond
	configPoll = 50 * time.Millisecond
	dataDir := filepath.Join(t.TempDir(), "hub-data")
	cfgPath := writeConfig(t, `
[hub]
data_dir = "`+dataDir+`"
http_listen = "127.0.0.1:0"
[broker]
listen = "127.0.0.1:0"
tls_listen = "127.0.0.1:0"
[enroll]
listen = "127.0.0.1:0"
names = ["localhost"]
`)
	ctx, cancel := context.WithCancel(context.Background())
	stderr := newWatchBuffer()
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"-config", cfgPath}, io.Discard, stderr) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("hub: %v", err)
		}
	}()
	enrollAddr := stderr.waitFor(t, regexp.MustCompile(`msg="enrollment endpoint" component=enroll addr=(\S+)`), 10*time.Second)
	tlsAddr := stderr.waitFor(t, regexp.MustCompile(`msg="MQTT mutual-TLS listener" component=broker addr=(\S+)`), 10*time.Second)
	_, enrollPort, _ := strings.Cut(enrollAddr, ":")
	_, tlsPort, _ := strings.Cut(tlsAddr, ":")

	out, err := runVerb(t, cfgPath, "claim", "create", "-group", "school-12", "-uses", "3")
	if err != nil {
		t.Fatal(err)
	}
	c, err := enroll.ParseClaim([]byte(out))
	if err != nil {
		t.Fatal(err)
	}
	c.Hub = "https://localhost:" + enrollPort
	claimPath := filepath.Join(t.TempDir(), "classcap-claim")
	if err := os.WriteFile(claimPath, c.Format(""), 0o644); err != nil {
		t.Fatal(err)
	}
	box, err := enroll.New(enroll.Config{Dir: filepath.Join(t.TempDir(), "id"), ClaimPath: claimPath}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	id, err := box.Enroll(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if want := "ssl://localhost:0"; id.BrokerURL != want {
		t.Errorf("broker url %q, want %q (from the config)", id.BrokerURL, want)
	}
	brokerURL := "ssl://localhost:" + tlsPort
	tlsCfg, err := id.TLSConfig(box.Keys())
	if err != nil {
		t.Fatal(err)
	}

	// Connects with its certificate, no password.
	lost := make(chan error, 1)
	cl, err := mqttConnect(t, brokerURL, id.DeviceID, "", tlsCfg, lost)
	if err != nil {
		t.Fatalf("enrolled box cannot connect: %v", err)
	}
	// It may publish its state (the ACL goes by the certificate's device).
	if tok := cl.Publish("classcap/v1/"+id.DeviceID+"/state", 1, true, `{"v":1}`); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Errorf("publish state: %v", tok.Error())
	}

	// Group configuration: set by IT, pushed retained, applied by the box.
	configs := make(chan []byte, 4)
	if tok := cl.Subscribe(wire.ConfigTopic(id.DeviceID), 1, func(_ paho.Client, m paho.Message) {
		configs <- m.Payload()
	}); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe config: %v", tok.Error())
	}
	bad := filepath.Join(t.TempDir(), "bad.toml")
	os.WriteFile(bad, []byte("[video]\nbitrate_kbps = 5\n"), 0o644)
	if _, err := runVerb(t, cfgPath, "config", "set", "-group", "school-12", bad); err == nil || !strings.Contains(err.Error(), "video.bitrate_kbps") {
		t.Errorf("config set with a bad value: %v", err)
	}
	good := filepath.Join(t.TempDir(), "good.toml")
	os.WriteFile(good, []byte("[video]\nbitrate_kbps = 1800\n[recording]\nvisibility = \"coaching\"\n"), 0o644)
	out, err = runVerb(t, cfgPath, "config", "set", "-group", "school-12", good)
	if err != nil {
		t.Fatal(err)
	}
	var payload []byte
	select {
	case payload = <-configs:
	case <-time.After(20 * time.Second):
		t.Fatal("the box received no configuration")
	}
	boxCfg, err := config.ParseBox([]byte("[device]\nid = \"x\"\n[hardware]\nprofile = \"sim\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	store, err := desired.Open(t.TempDir(), boxCfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if r, err := store.Offer(payload, false); r != desired.Applied || err != nil {
		t.Fatalf("box: %v %v (%s)", r, err, payload)
	}
	if st := store.Status(); !strings.Contains(out, fmt.Sprintf("version %d", st.Applied)) || store.Current().Video.BitrateKbps != 1800 {
		t.Errorf("applied %+v (%s), hub said %q", st, payload, out)
	}

	// The hub refuses: a user name that is not the certificate's device, a
	// client id of another device, no client certificate, a certificate
	// from another CA.
	if _, err := mqttConnect(t, brokerURL, id.DeviceID+"-2", "school-12-other", tlsCfg, nil); err == nil {
		t.Error("connected with another device's user name")
	}
	if _, err := mqttConnect(t, brokerURL, "school-12-other", "", tlsCfg, nil); err == nil {
		t.Error("connected with another device's client id")
	}
	noCert := tlsCfg.Clone()
	noCert.Certificates = nil
	if _, err := mqttConnect(t, brokerURL, id.DeviceID, "", noCert, nil); err == nil {
		t.Error("connected without a client certificate")
	}
	otherCA, err := ca.LoadOrCreate(t.TempDir(), "another hub")
	if err != nil {
		t.Fatal(err)
	}
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	csrPEM, _ := enroll.MakeCSR(key, "x")
	csr, _ := ca.ParseCSR(csrPEM)
	foreign, err := otherCA.SignDevice(csr, id.DeviceID, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	foreignCfg := tlsCfg.Clone()
	foreignCfg.Certificates = []tls.Certificate{{Certificate: [][]byte{foreign.Raw}, PrivateKey: key}}
	if _, err := mqttConnect(t, brokerURL, id.DeviceID, "", foreignCfg, nil); err == nil {
		t.Error("connected with a device certificate from another CA")
	}

	// The box refuses: the broker under a name its certificate lacks, and
	// a broker whose CA is not the box's.
	if _, err := mqttConnect(t, "ssl://127.0.0.1:"+tlsPort, id.DeviceID+"-3", "", tlsCfgFor(t, id, box, "127.0.0.1"), nil); err == nil ||
		!strings.Contains(err.Error(), "certificate") {
		t.Errorf("box accepted a broker under the wrong name: %v", err)
	}
	strange := tlsCfg.Clone()
	strange.RootCAs = otherCA.Pool()
	if _, err := mqttConnect(t, brokerURL, id.DeviceID+"-4", "", strange, nil); err == nil ||
		!strings.Contains(err.Error(), "unknown authority") {
		t.Errorf("box accepted a broker from an unknown CA: %v", err)
	}
	// And a broker of the right CA and name whose certificate expired.
	expiredURL := expiredBroker(t, ctx, filepath.Join(dataDir, "ca"))
	if _, err := mqttConnect(t, expiredURL, id.DeviceID+"-5", "", tlsCfg, nil); err == nil ||
		!strings.Contains(err.Error(), "expired") {
		t.Errorf("box accepted a broker whose certificate expired: %v", err)
	}

	// Revoked: the connected box is cut off, and cannot come back.
	if _, err := runVerb(t, cfgPath, "device", "revoke", id.DeviceID); err != nil {
		t.Fatal(err)
	}
	select {
	case <-lost:
	case <-time.After(20 * time.Second):
		t.Fatal("revoked box still connected")
	}
	if _, err := mqttConnect(t, brokerURL, id.DeviceID, "", tlsCfg, nil); err == nil {
		t.Error("revoked box connected again")
	}
	stderr.waitFor(t, regexp.MustCompile(`msg="(revoked device disconnected)" component=broker device=`+regexp.QuoteMeta(id.DeviceID)), 5*time.Second)
}

// expiredBroker runs a second broker with a mutual-TLS listener whose
// server certificate, from the hub's CA and for localhost, expired an hour
// ago, and returns its URL.
func expiredBroker(t *testing.T, ctx context.Context, caDir string) string {
	t.Helper()
	authority, err := ca.Load(caDir)
	if err != nil {
		t.Fatal(err)
	}
	authority.SetClock(func() time.Time { return time.Now().Add(-48 * time.Hour) })
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	leaf, err := authority.SignServer(key.Public(), []string{"localhost"}, 47*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if time.Now().Before(leaf.NotAfter) {
		t.Fatalf("server certificate valid until %v: not expired", leaf.NotAfter)
	}
	b, err := broker.New("127.0.0.1:0", noPasswords{}, registry.NewSecret(16), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	cert := tls.Certificate{Certificate: [][]byte{leaf.Raw, authority.Certificate().Raw}, PrivateKey: key}
	if err := b.ListenTLS("127.0.0.1:0", cert, authority.Pool(), certDevice{}); err != nil {
		t.Fatal(err)
	}
	bctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- b.Run(bctx) }()
	t.Cleanup(func() { stop(); <-done })
	_, port, _ := strings.Cut(b.TLSAddr(), ":")
	return "ssl://localhost:" + port
}

// noPasswords refuses every password login.
type noPasswords struct{}

func (noPasswords) CheckPassword(string, string) bool { return false }

// certDevice lets any certificate of the CA in as the device it names.
type certDevice struct{}

func (certDevice) Authorize(c *x509.Certificate) (string, error) { return ca.DeviceID(c) }

// tlsCfgFor is the box's TLS configuration with another server name.
func tlsCfgFor(t *testing.T, id *enroll.Identity, box *enroll.Enroller, serverName string) *tls.Config {
	t.Helper()
	c, err := id.TLSConfig(box.Keys())
	if err != nil {
		t.Fatal(err)
	}
	c.ServerName = serverName
	return c
}
