// Package fleet is the hub's own MQTT client: it follows every box's
// retained state, replies and events (recording what it learns in the
// registry) and sends commands to a box, waiting for its reply. It speaks
// uplink/wire over paho.mqtt.golang to the embedded broker or to an external
// one alike.
package fleet

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/classcap/classcap/hub/registry"
	"github.com/classcap/classcap/uplink/wire"
)

// Registry is where the fleet records what boxes report.
type Registry interface {
	Write(func(*registry.Tx) error) error
	Device(id string) (registry.Device, error)
}

// Errors of Command.
var (
	ErrTimeout      = errors.New("no reply from the box in time")
	ErrNotConnected = errors.New("the hub is not connected to the MQTT broker")
)

// Config is how the fleet reaches the broker.
type Config struct {
	Broker   string // tcp://host:port
	Username string
	Password string
	ClientID string // default: the user name
}

// Fleet is the hub's MQTT client. Create it with New, run it with Run.
type Fleet struct {
	cfg Config
	reg Registry
	log *slog.Logger
	now func() time.Time

	client paho.Client
	inbox  chan inMsg // state and event messages for the writer

	mu      sync.Mutex
	pending map[string]pendingCmd // by command id

	connected chan struct{} // closed on the first connection
	connOnce  sync.Once

	uploads func(device string, m wire.UploadMsg) wire.GrantMsg // nil: uploads not served
}

// HandleUploads makes the fleet answer the boxes' upload messages with
// what answer returns, on the box's grant topic. Call it before Run.
func (f *Fleet) HandleUploads(answer func(device string, m wire.UploadMsg) wire.GrantMsg) {
	f.uploads = answer
}

type pendingCmd struct {
	device string
	reply  chan wire.Reply
}

type inMsg struct {
	device  string
	kind    wire.Kind
	payload []byte
	at      time.Time
}

// New returns a fleet client for cfg; it connects in Run.
func New(cfg Config, reg Registry, log *slog.Logger) *Fleet {
	if cfg.ClientID == "" {
		cfg.ClientID = cfg.Username
	}
	f := &Fleet{
		cfg:       cfg,
		reg:       reg,
		log:       log,
		now:       time.Now,
		inbox:     make(chan inMsg, 4096),
		pending:   make(map[string]pendingCmd),
		connected: make(chan struct{}),
	}
	opts := paho.NewClientOptions().
		AddBroker(cfg.Broker).
		SetClientID(cfg.ClientID).
		SetUsername(cfg.Username).
		SetPassword(cfg.Password).
		SetCleanSession(false). // replies and events sent while the hub reconnects are kept for it
		SetProtocolVersion(4).
		SetAutoReconnect(true).
		SetConnectRetry(true).
		SetConnectRetryInterval(time.Second).
		SetMaxReconnectInterval(10 * time.Second).
		SetKeepAlive(30 * time.Second).
		SetOrderMatters(true). // one device's events in order; handlers only queue
		SetConnectionLostHandler(func(_ paho.Client, err error) {
			log.Warn("MQTT connection lost", "broker", cfg.Broker, "err", err)
		}).
		SetOnConnectHandler(f.onConnect)
	f.client = paho.NewClient(opts)
	return f
}

// Connected returns a channel closed once the fleet has connected and
// subscribed for the first time.
func (f *Fleet) Connected() <-chan struct{} { return f.connected }

func (f *Fleet) onConnect(c paho.Client) {
	subs := map[string]byte{
		wire.KindFilter(wire.KindState): wire.QoS,
		wire.KindFilter(wire.KindReply): wire.QoS,
		wire.KindFilter(wire.KindEvent): wire.QoS,
	}
	if f.uploads != nil {
		subs[wire.KindFilter(wire.KindUpload)] = wire.QoS
	}
	tok := c.SubscribeMultiple(subs, f.onMessage)
	if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		f.log.Error("MQTT subscribe failed", "err", tok.Error())
		return
	}
	f.log.Info("connected to MQTT broker", "broker", f.cfg.Broker, "user", f.cfg.Username)
	f.connOnce.Do(func() { close(f.connected) })
}

// onMessage runs on paho's goroutine: replies go straight to their waiter,
// state and events to the writer's queue.
func (f *Fleet) onMessage(_ paho.Client, m paho.Message) {
	if in, ok := f.route(m.Topic(), m.Payload()); ok {
		f.inbox <- in
	}
}

// route handles a reply at once and returns state and event messages for
// the writer (ok true).
func (f *Fleet) route(topic string, payload []byte) (in inMsg, ok bool) {
	device, kind, err := wire.ParseTopic(topic)
	if err != nil {
		f.log.Warn("MQTT message on an unknown topic", "err", err)
		return inMsg{}, false
	}
	switch kind {
	case wire.KindReply:
		f.handleReply(device, payload)
	case wire.KindState, wire.KindEvent:
		return inMsg{device: device, kind: kind, payload: append([]byte(nil), payload...), at: f.now()}, true
	case wire.KindUpload:
		f.handleUpload(device, payload)
	}
	return inMsg{}, false
}

// handleUpload answers an upload message on the box's grant topic. It
// does not wait for the publish: paho calls it on its own goroutine.
func (f *Fleet) handleUpload(device string, payload []byte) {
	if f.uploads == nil {
		return
	}
	m, err := wire.DecodeUpload(payload)
	if err != nil {
		f.log.Warn("bad upload message from box", "device", device, "err", err)
		return
	}
	b, err := json.Marshal(f.uploads(device, m))
	if err != nil {
		f.log.Error("encode grant", "err", err)
		return
	}
	f.client.Publish(wire.GrantTopic(device), wire.QoS, false, b)
}

func (f *Fleet) handleReply(device string, payload []byte) {
	r, err := wire.DecodeReply(payload)
	if err != nil {
		f.log.Warn("bad reply from box", "device", device, "err", err)
		return
	}
	f.mu.Lock()
	p, ok := f.pending[r.ID]
	if ok && p.device == device {
		delete(f.pending, r.ID)
	}
	f.mu.Unlock()
	if !ok || p.device != device {
		f.log.Info("reply to no waiting command", "device", device, "id", r.ID, "ok", r.OK, "code", r.Code)
		return
	}
	p.reply <- r
}

// Run connects (retrying until the broker answers), follows the boxes and
// serves Command until ctx is cancelled.
func (f *Fleet) Run(ctx context.Context) error {
	f.client.Connect() // with SetConnectRetry, keeps trying in the background
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); f.write(done) }()
	<-ctx.Done()
	f.client.Disconnect(250)
	close(done)
	wg.Wait()
	return nil
}

// write owns the registry writes of incoming state and events: it takes
// whatever has queued up and writes it in one transaction, so a burst of
// reports from hundreds of boxes costs one commit, not hundreds.
func (f *Fleet) write(done <-chan struct{}) {
	for {
		var batch []inMsg
		select {
		case m := <-f.inbox:
			batch = append(batch, m)
		case <-done:
			return
		}
	drain:
		for len(batch) < 1024 {
			select {
			case m := <-f.inbox:
				batch = append(batch, m)
			default:
				break drain
			}
		}
		if err := f.record(batch); err != nil {
			f.log.Error("registry write failed", "messages", len(batch), "err", err)
		}
	}
}

// record writes what batch says in one transaction. A message from an
// unregistered device or a malformed one is logged and skipped.
func (f *Fleet) record(batch []inMsg) error {
	return f.reg.Write(func(tx *registry.Tx) error {
		for _, m := range batch {
			if err := f.apply(tx, m); err != nil {
				if errors.Is(err, registry.ErrUnknownDevice) {
					f.log.Warn("message from an unregistered device", "device", m.device, "kind", m.kind)
					continue
				}
				if errors.Is(err, wire.ErrMalformed) {
					f.log.Warn("bad message from box", "device", m.device, "kind", m.kind, "err", err)
					continue
				}
				return err
			}
		}
		return nil
	})
}

// apply records one message. Errors other than ErrUnknownDevice and
// wire.ErrMalformed abort the transaction.
func (f *Fleet) apply(tx *registry.Tx, m inMsg) error {
	switch m.kind {
	case wire.KindState:
		if len(m.payload) == 0 {
			return nil // a retained state cleared
		}
		s, err := wire.DecodeState(m.payload)
		if err != nil {
			return err
		}
		var payload json.RawMessage
		if s.Online {
			payload = m.payload
		}
		return tx.SetState(m.device, payload, s.Online, m.at)
	case wire.KindEvent:
		e, err := wire.DecodeEvent(m.payload)
		if err != nil {
			return err
		}
		if err := tx.Seen(m.device, m.at); err != nil {
			return err
		}
		return applyEvent(tx, m.device, e)
	}
	return nil
}

// applyEvent merges a lesson event into the registry's lessons. Other
// events only count as a sign of life.
func applyEvent(tx *registry.Tx, device string, e wire.Event) error {
	if lv := e.Live; lv != nil {
		return applyLiveEvent(tx, device, e.Type, e.At, *lv)
	}
	le := e.Lesson
	if le == nil {
		return nil
	}
	switch e.Type {
	case wire.EventLessonStarted:
		return tx.UpdateLesson(device, le.ID, func(l *registry.Lesson) {
			l.Visibility = le.Visibility
			l.StartedBy = le.StartedBy
			if !e.At.IsZero() {
				l.StartedAt = e.At.UTC()
			}
			if !l.Stopped {
				l.Recording = true
			}
		})
	case wire.EventLessonStopped:
		return tx.UpdateLesson(device, le.ID, func(l *registry.Lesson) {
			if le.Visibility != "" {
				l.Visibility = le.Visibility
			}
			if le.StartedBy != "" {
				l.StartedBy = le.StartedBy
			}
			l.StoppedBy = le.StoppedBy
			if !e.At.IsZero() {
				l.StoppedAt = e.At.UTC()
			}
			l.Seconds = le.Seconds
			l.Segments = le.Segments
			l.Bytes = le.Bytes
			l.Recording = false
			l.Stopped = true
		})
	}
	return nil
}

// applyLiveEvent merges a live view event into the registry's view log.
func applyLiveEvent(tx *registry.Tx, device, typ string, at time.Time, lv wire.LiveEvent) error {
	return tx.UpdateView(device, lv.Session, func(v *registry.View) {
		v.Viewer = lv.Viewer
		if lv.Lesson != "" {
			v.Lesson = lv.Lesson
		}
		if !lv.Started.IsZero() {
			v.Started = lv.Started.UTC()
		}
		switch typ {
		case wire.EventLiveStarted:
			if v.Ended.IsZero() && v.Reason == "" {
				v.Live = true
			}
		case wire.EventLiveStopped:
			v.Live = false
			v.Seconds, v.Reason = lv.Seconds, lv.Reason
			v.Video, v.Audio, v.Dropped = lv.Video, lv.Audio, lv.Dropped
			if !at.IsZero() {
				v.Ended = at.UTC()
			}
			if v.Reason == "" {
				v.Reason = "ended"
			}
		}
	})
}

// maxWait bounds how long Command waits (and a command lives).
const maxWait = 5 * time.Minute

// Command sends a command of type typ with args to device and waits for its
// reply until wait has passed (the command expires then too) or ctx ends.
// The reply is returned whether ok or not; errors are ErrTimeout,
// ErrNotConnected, registry.ErrUnknownDevice, or a bad command.
func (f *Fleet) Command(ctx context.Context, device, typ string, args any, wait time.Duration) (wire.Reply, error) {
	if wait <= 0 || wait > maxWait {
		return wire.Reply{}, fmt.Errorf("command %s: wait %v is outside 0..%v", typ, wait, maxWait)
	}
	if _, err := f.reg.Device(device); err != nil {
		return wire.Reply{}, err
	}
	cmd := wire.Command{V: wire.Version, ID: newID(), Type: typ, TTLMillis: wait.Milliseconds(),
		ExpiresAt: f.now().Add(wait).UTC()}
	if args != nil {
		b, err := json.Marshal(args)
		if err != nil {
			return wire.Reply{}, fmt.Errorf("command %s: args: %w", typ, err)
		}
		cmd.Args = b
	}
	if err := cmd.Validate(); err != nil {
		return wire.Reply{}, err
	}
	payload, err := json.Marshal(cmd)
	if err != nil {
		return wire.Reply{}, fmt.Errorf("command %s: %w", typ, err)
	}
	if !f.client.IsConnectionOpen() {
		return wire.Reply{}, ErrNotConnected
	}
	p := pendingCmd{device: device, reply: make(chan wire.Reply, 1)}
	f.mu.Lock()
	f.pending[cmd.ID] = p
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		delete(f.pending, cmd.ID)
		f.mu.Unlock()
	}()

	timer := time.NewTimer(wait)
	defer timer.Stop()
	tok := f.client.Publish(wire.CmdTopic(device), wire.QoS, false, payload)
	select {
	case <-tok.Done():
		if err := tok.Error(); err != nil {
			return wire.Reply{}, fmt.Errorf("command %s to %s: publish: %w", cmd.ID, device, err)
		}
	case <-timer.C:
		return wire.Reply{}, fmt.Errorf("command %s to %s: the broker did not acknowledge it: %w", cmd.ID, device, ErrTimeout)
	case <-ctx.Done():
		return wire.Reply{}, ctx.Err()
	}
	f.log.Debug("command sent", "device", device, "id", cmd.ID, "type", typ)
	select {
	case r := <-p.reply:
		return r, nil
	case <-timer.C:
		return wire.Reply{}, fmt.Errorf("command %s (%s) to %s: %w (waited %v)", cmd.ID, typ, device, ErrTimeout, wait)
	case <-ctx.Done():
		return wire.Reply{}, ctx.Err()
	}
}

// newID returns a command id: "hub-<unix ms>-<random>", unique without a
// shared counter.
func newID() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return "hub-" + strconv.FormatInt(time.Now().UnixMilli(), 10) + "-" + hex.EncodeToString(b)
}
