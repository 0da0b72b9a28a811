// Package link is the box's MQTT connection to the district hub
// (paho.mqtt.golang, MQTT 3.1.1, protocol in uplink/wire).
//
// The box works offline: nothing here is on the recording path. Events
// (lesson started and stopped, segment closed, alarms) and replies are
// written to a bbolt outbox when they happen and published in order once
// the broker is reachable; an entry leaves the outbox only after the broker
// acknowledged it (PUBACK). Commands are acknowledged to the broker only
// after their id is stored, and an id already stored is never acted on
// again: a redelivery is answered from the stored reply. The retained state
// is published on change and at least every 30 s; the broker's last will
// sets it offline. The session is persistent (clean session off) so
// commands published while the box is away wait at the broker.
package link

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	mrand "math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/classcap/classcap/capture/lesson"
	"github.com/classcap/classcap/capture/live"
	"github.com/classcap/classcap/capture/recorder"
	"github.com/classcap/classcap/uplink/wire"
)

// Config is the link's settings.
type Config struct {
	Device   string // the device id: MQTT client id and topic level
	Broker   string // tcp://host:1883
	Username string
	Password string
	// TLS, if set, is the client TLS configuration: an enrolled box's
	// certificate and the hub's CA (the broker URL is then ssl://).
	TLS *tls.Config
	// StorePath is the bbolt file holding the outbox and the command ids.
	StorePath string
	// Veto is how long a remote start is shown to the teacher.
	Veto time.Duration
	// StateEvery is the longest time between two state publications (30 s).
	StateEvery time.Duration
	// StatePoll is how often the state is sampled for changes (500 ms).
	StatePoll time.Duration
	// BackoffMin and BackoffMax bound the jittered reconnect backoff
	// (500 ms, 60 s).
	BackoffMin, BackoffMax time.Duration
	// KeepAlive is the MQTT keep-alive (30 s).
	KeepAlive time.Duration
	Log       *slog.Logger
}

// Box is the part of the daemon the link drives and reports on.
type Box interface {
	RemoteStart(ctx context.Context, req recorder.RemoteStartRequest) (recorder.StartResult, error)
	Stop(ctx context.Context, req recorder.StopRequest) (lesson.Meta, error)
	Identify(ctx context.Context, d time.Duration) error
	// LiveOffer answers a live viewer's SDP offer (live.offer);
	// LiveCandidates hands a view the ICE candidates its viewer trickled
	// and returns how many it took (live.candidates); LiveStop ends a view
	// and returns how long it lasted (live.stop). Their errors are
	// capture/live's.
	LiveOffer(ctx context.Context, a wire.LiveOfferArgs) (answer string, err error)
	LiveCandidates(ctx context.Context, a wire.LiveCandidatesArgs) (added int, err error)
	LiveStop(ctx context.Context, a wire.LiveStopArgs) (time.Duration, error)
	// State reports the box's state; the link sets v, online and the
	// outbox depth.
	State() wire.State
	// ClockSynced reports whether the wall clock can be trusted.
	ClockSynced() bool
	// Clock reports the boot clock (and the wall clock when synced).
	Clock() lesson.Clock
}

// Status is the link as classcapctl shows it.
type Status struct {
	Broker    string  `json:"broker"`
	Connected bool    `json:"connected"`
	Outbox    int     `json:"outbox"` // messages waiting for the broker's acknowledgement
	LastError string  `json:"last_error,omitempty"`
	Since     float64 `json:"since_seconds"` // in the current connected or disconnected state
}

// Link is the MQTT connection.
type Link struct {
	cfg   Config
	box   Box
	log   *slog.Logger
	store *store
	run   string // this process run, to tell commands a crash interrupted

	client    mqtt.Client
	ctx       context.Context
	connected atomic.Bool
	kickOut   chan struct{}
	kickState chan struct{}
	lost      chan error
	commands  sync.WaitGroup

	mu        sync.Mutex
	up        chan struct{} // closed when the current connection ends; nil while down
	lastErr   string
	since     time.Time
	alarms    map[string]string // raised alarms and their message
	eventBase string            // event ids: <eventBase>-<seq>

	openConn mqtt.OpenConnectionFunc // tests: wraps the connection

	handlers map[wire.Kind]func([]byte) // other hub -> box topics (grant, config)
}

// New opens the link's store; Run connects.
func New(cfg Config, box Box) (*Link, error) {
	if err := wire.ValidateDeviceID(cfg.Device); err != nil {
		return nil, fmt.Errorf("uplink: %w", err)
	}
	if cfg.StateEvery <= 0 {
		cfg.StateEvery = 30 * time.Second
	}
	if cfg.StatePoll <= 0 {
		cfg.StatePoll = 500 * time.Millisecond
	}
	if cfg.BackoffMin <= 0 {
		cfg.BackoffMin = 500 * time.Millisecond
	}
	if cfg.BackoffMax < cfg.BackoffMin {
		cfg.BackoffMax = max(60*time.Second, cfg.BackoffMin)
	}
	if cfg.KeepAlive <= 0 {
		cfg.KeepAlive = 30 * time.Second
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	st, err := openStore(cfg.StorePath)
	if err != nil {
		return nil, fmt.Errorf("uplink: %w", err)
	}
	var rb [8]byte
	rand.Read(rb[:])
	return &Link{cfg: cfg, box: box, log: cfg.Log, store: st, run: hex.EncodeToString(rb[:]),
		kickOut: make(chan struct{}, 1), kickState: make(chan struct{}, 1), lost: make(chan error, 1),
		since: time.Now(), alarms: map[string]string{}, eventBase: hex.EncodeToString(rb[:4]),
		handlers: map[wire.Kind]func([]byte){}}, nil
}

// Handle routes the messages on the box's topic of kind k (grant, config:
// the hub -> box topics other than cmd) to f, which must not block for
// long; the message is acknowledged once f returns. Call it before Run.
func (l *Link) Handle(k wire.Kind, f func(payload []byte)) {
	if k == wire.KindCmd || k.FromBox() || !k.Valid() {
		panic(fmt.Sprintf("link.Handle: %q is not a hub -> box topic the link hands over", k))
	}
	l.handlers[k] = f
}

// Publish sends payload on topic (one of the box's own topics), QoS 1, not
// retained, and waits for the broker's acknowledgement. It fails at once
// while the link is down: it is for messages their sender repeats until
// answered (upload requests); events and replies go through the outbox.
func (l *Link) Publish(ctx context.Context, topic string, payload []byte) error {
	dev, kind, err := wire.ParseTopic(topic)
	if err != nil {
		return fmt.Errorf("publish: %w", err)
	}
	if dev != l.cfg.Device || !kind.FromBox() {
		return fmt.Errorf("publish %s: not a topic this box publishes on", topic)
	}
	up := l.connUp()
	if up == nil || l.client == nil {
		return fmt.Errorf("publish %s: not connected to the broker", topic)
	}
	if err := waitAck(ctx, up, l.client.Publish(topic, wire.QoS, false, payload)); err != nil {
		return fmt.Errorf("publish %s: %w", topic, err)
	}
	return nil
}

// Close closes the store; call it after Run returned and after the last
// Notify.
func (l *Link) Close() error { return l.store.Close() }

// Status reports the connection and the outbox.
func (l *Link) Status() Status {
	l.mu.Lock()
	defer l.mu.Unlock()
	return Status{Broker: l.cfg.Broker, Connected: l.connected.Load(), Outbox: l.store.depth(),
		LastError: l.lastErr, Since: time.Since(l.since).Seconds()}
}

func kick(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// connUp returns the channel closed when the current connection ends, or
// nil while there is none.
func (l *Link) connUp() <-chan struct{} {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.up
}

// setUp records a new connection, or (up false) the end of the current one.
func (l *Link) setUp(up bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.up != nil {
		close(l.up)
		l.up = nil
	}
	if up {
		l.up = make(chan struct{})
	}
}

func (l *Link) setConnected(c bool, err error) {
	l.mu.Lock()
	if l.connected.Load() != c {
		l.since = time.Now()
	}
	l.connected.Store(c)
	if err != nil {
		l.lastErr = err.Error()
	}
	l.mu.Unlock()
}

// Run keeps the connection up until ctx ends, reconnecting with a jittered
// backoff. It publishes an offline state before it disconnects.
func (l *Link) Run(ctx context.Context) error {
	l.ctx = ctx
	stateTopic := wire.StateTopic(l.cfg.Device)
	opts := mqtt.NewClientOptions().
		AddBroker(l.cfg.Broker).
		SetClientID(l.cfg.Device).
		SetUsername(l.cfg.Username).
		SetPassword(l.cfg.Password).
		SetProtocolVersion(4). // MQTT 3.1.1
		SetCleanSession(false).
		SetAutoReconnect(false). // Run reconnects, with jitter
		SetConnectRetry(false).
		SetAutoAckDisabled(true). // acknowledge commands after storing them
		SetOrderMatters(true).
		SetKeepAlive(l.cfg.KeepAlive).
		SetPingTimeout(10*time.Second).
		SetConnectTimeout(10*time.Second).
		SetWriteTimeout(10*time.Second).
		SetBinaryWill(stateTopic, wire.LastWill(), wire.QoS, true).
		// Messages of the persistent session may arrive before the
		// subscription is made again: they come here too.
		SetDefaultPublishHandler(l.onMessage).
		SetConnectionLostHandler(func(_ mqtt.Client, err error) {
			select {
			case l.lost <- err:
			default:
			}
		})
	if l.cfg.TLS != nil {
		opts.SetTLSConfig(l.cfg.TLS)
	}
	if l.openConn != nil {
		opts.SetCustomOpenConnectionFn(l.openConn)
	}
	l.client = mqtt.NewClient(opts)

	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); l.outboxLoop(ctx) }()
	go func() { defer wg.Done(); l.stateLoop(ctx) }()

	b := backoff{min: l.cfg.BackoffMin, max: l.cfg.BackoffMax}
	for {
		err := l.connect(ctx)
		if ctx.Err() != nil {
			break
		}
		if err != nil {
			l.setConnected(false, err)
			wait := b.next()
			l.log.Warn("broker unreachable; retrying", "broker", l.cfg.Broker, "err", err, "in", wait.Round(time.Millisecond))
			select {
			case <-ctx.Done():
			case <-time.After(wait):
			}
			continue
		}
		b.reset()
		l.setUp(true)
		l.setConnected(true, nil)
		l.log.Info("connected to the broker", "broker", l.cfg.Broker)
		kick(l.kickOut)
		kick(l.kickState)
		select {
		case <-ctx.Done():
		case err := <-l.lost:
			// Before the next connect: see waitAck.
			l.setUp(false)
			l.setConnected(false, err)
			l.log.Warn("connection to the broker lost", "err", err)
			continue
		}
		break
	}
	// Say goodbye: the retained state goes offline now rather than at the
	// broker's keep-alive timeout; after the state loop ended, so no online
	// state can follow it.
	wg.Wait()
	if l.connected.Load() {
		t := l.client.Publish(stateTopic, wire.QoS, true, wire.LastWill())
		t.WaitTimeout(2 * time.Second)
		l.client.Disconnect(250)
	}
	l.setUp(false)
	l.setConnected(false, nil)
	l.commands.Wait()
	return nil
}

// connect makes one connection attempt and subscribes to the cmd topic.
func (l *Link) connect(ctx context.Context) error {
	select {
	case <-l.lost: // a loss from an earlier connection
	default:
	}
	t := l.client.Connect()
	if err := waitToken(ctx, t); err != nil {
		return fmt.Errorf("connect %s: %w", l.cfg.Broker, err)
	}
	filters := map[string]byte{wire.CmdTopic(l.cfg.Device): wire.QoS}
	for k := range l.handlers {
		filters[wire.Topic(l.cfg.Device, k)] = wire.QoS
	}
	st := l.client.SubscribeMultiple(filters, l.onMessage)
	if err := waitToken(ctx, st); err != nil {
		l.client.Disconnect(0)
		return fmt.Errorf("subscribe: %w", err)
	}
	if s, ok := st.(*mqtt.SubscribeToken); ok {
		for topic, code := range s.Result() {
			if code == 0x80 {
				l.client.Disconnect(0)
				return fmt.Errorf("subscribe %s: refused by the broker", topic)
			}
		}
	}
	return nil
}

func waitToken(ctx context.Context, t mqtt.Token) error {
	select {
	case <-t.Done():
		return t.Error()
	case <-ctx.Done():
		return ctx.Err()
	}
}

// errConnEnded is waitAck's answer for a publication whose connection
// ended before it could be told acknowledged.
var errConnEnded = errors.New("the connection ended before the broker's acknowledgement")

// waitAck waits for the broker's acknowledgement of t, a QoS 1 publication
// made on the connection up stands for. A token completed without an error
// is not proof of a PUBACK: the session being kept (clean session off),
// paho sends the messages still in flight again on the next connection and
// completes their old tokens then, without an error (v1.5.1,
// messageIds.claimID). So a token done once its connection ended counts as
// unacknowledged and its message goes again (QoS 1 allows the repeat).
// Run ends up before it connects again, so that completion is always seen
// after the end.
func waitAck(ctx context.Context, up <-chan struct{}, t mqtt.Token) error {
	select {
	case <-t.Done():
	case <-up:
		return errConnEnded
	case <-ctx.Done():
		return ctx.Err()
	}
	if err := t.Error(); err != nil {
		return err
	}
	select {
	case <-up:
		return errConnEnded
	default:
		return nil
	}
}

// backoff is a capped exponential backoff with jitter: each wait is drawn
// between half and all of the current step, so boxes that lost the same
// broker do not come back in lockstep.
type backoff struct {
	min, max, cur time.Duration
}

func (b *backoff) next() time.Duration {
	if b.cur < b.min {
		b.cur = b.min
	}
	d := b.cur/2 + time.Duration(mrand.Int64N(int64(b.cur/2)+1))
	b.cur = min(b.cur*2, b.max)
	return d
}

func (b *backoff) reset() { b.cur = 0 }

// outboxLoop publishes the outbox in order while connected.
func (l *Link) outboxLoop(ctx context.Context) {
	retry := time.NewTicker(2 * time.Second)
	defer retry.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-l.kickOut:
		case <-retry.C:
		}
		for ctx.Err() == nil && l.connected.Load() {
			sent, err := l.flush(ctx)
			if err != nil {
				l.log.Warn("outbox: publish failed; will retry", "err", err)
				break
			}
			if sent == 0 {
				break
			}
		}
	}
}

// flush publishes up to 16 messages from the front of the outbox (in flight
// together, in order) and removes those the broker acknowledged.
func (l *Link) flush(ctx context.Context) (int, error) {
	up := l.connUp()
	if up == nil {
		return 0, nil
	}
	seqs, entries, err := l.store.oldest(16)
	if err != nil || len(seqs) == 0 {
		return 0, err
	}
	tokens := make([]mqtt.Token, len(entries))
	for i, e := range entries {
		tokens[i] = l.client.Publish(e.Topic, wire.QoS, false, []byte(e.Payload))
	}
	var acked []uint64
	for i, t := range tokens {
		tctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		err = waitAck(tctx, up, t)
		cancel()
		if err != nil {
			err = fmt.Errorf("publish to %s: %w", entries[i].Topic, err)
			break
		}
		acked = append(acked, seqs[i])
	}
	if len(acked) > 0 {
		if rerr := l.store.remove(acked...); rerr != nil {
			return 0, rerr
		}
		kick(l.kickState) // the outbox depth is part of the state
	}
	return len(acked), err
}

// stateLoop publishes the retained state on change and at least every
// StateEvery, and raises or clears alarms.
func (l *Link) stateLoop(ctx context.Context) {
	tick := time.NewTicker(l.cfg.StatePoll)
	defer tick.Stop()
	var lastKey string
	var lastPub time.Time
	for {
		force := false
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		case <-l.kickState:
			force = true
		}
		s := l.state()
		l.checkAlarms(s)
		up := l.connUp()
		if up == nil {
			lastKey = "" // publish as soon as connected
			continue
		}
		key := changeKey(s)
		if !force && key == lastKey && time.Since(lastPub) < l.cfg.StateEvery {
			continue
		}
		b, err := json.Marshal(s)
		if err != nil {
			l.log.Error("state: encode", "err", err)
			continue
		}
		t := l.client.Publish(wire.StateTopic(l.cfg.Device), wire.QoS, true, b)
		tctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err = waitAck(tctx, up, t)
		cancel()
		if err != nil {
			l.log.Warn("state: publish failed", "err", err)
			continue
		}
		lastKey, lastPub = key, time.Now()
	}
}

// state is the box's state as published.
func (l *Link) state() wire.State {
	s := l.box.State()
	s.V, s.Online = wire.Version, true
	if s.Upload == nil {
		s.Upload = &wire.Upload{}
	}
	s.Upload.OutboxEvents = l.store.depth()
	return s
}

// changeKey is the state without the fields that change all the time
// (levels, counters, uptime), so a change in it is worth a publication.
func changeKey(s wire.State) string {
	s.UptimeS, s.At = 0, time.Time{}
	if s.Recorder != nil {
		r := *s.Recorder
		r.RecordedS, r.Segments = 0, 0
		if r.RemoteStart != nil {
			rs := *r.RemoteStart
			rs.VetoLeftS = 0
			r.RemoteStart = &rs
		}
		s.Recorder = &r
	}
	if s.Camera != nil {
		c := *s.Camera
		c.Frames = 0
		s.Camera = &c
	}
	if s.Microphone != nil {
		m := *s.Microphone
		m.Packets, m.Levels = 0, nil
		s.Microphone = &m
	}
	if s.Live != nil {
		lv := *s.Live
		lv.Viewers = slices.Clone(lv.Viewers)
		for i := range lv.Viewers {
			v := &lv.Viewers[i]
			v.Seconds, v.Video, v.Audio = 0, 0, 0
			v.Dropped = min(v.Dropped, 1) // starting to drop is news; each drop is not
		}
		s.Live = &lv
	}
	if s.Disk != nil {
		d := *s.Disk
		d.FreeMB /= 1024 // a change of a GB is worth telling
		s.Disk = &d
	}
	if s.TemperatureC != nil {
		t := float64(int(*s.TemperatureC / 5))
		s.TemperatureC = &t
	}
	b, _ := json.Marshal(s)
	return string(b)
}

// checkAlarms raises an alarm event when a part of the box starts failing
// and clears it when it is well again.
func (l *Link) checkAlarms(s wire.State) {
	now := map[string]string{}
	if s.Camera != nil && !s.Camera.OK {
		now["camera"] = s.Camera.Fault
	}
	if s.Microphone != nil && !s.Microphone.OK {
		now["microphone"] = s.Microphone.Fault
	}
	if s.Recorder != nil && s.Recorder.State == wire.RecorderError {
		now["recorder"] = s.Recorder.Reason
	}
	if s.Upload != nil && s.Upload.DamagedSegments > 0 {
		now["storage"] = s.Upload.Problem
	}
	l.mu.Lock()
	var changes []wire.AlarmEvent
	for name, msg := range now {
		if old, ok := l.alarms[name]; !ok || old != msg {
			changes = append(changes, wire.AlarmEvent{Name: name, Active: true, Message: msg})
		}
	}
	for name := range l.alarms {
		if _, ok := now[name]; !ok {
			changes = append(changes, wire.AlarmEvent{Name: name, Active: false})
		}
	}
	l.alarms = now
	l.mu.Unlock()
	for _, a := range changes {
		if err := l.addEvent(wire.Event{Type: wire.EventAlarm, Alarm: &a}); err != nil {
			l.log.Error("alarm event lost", "alarm", a.Name, "err", err)
		}
	}
}

// Notify turns a recorder notice into an event in the outbox. It is safe
// to call from any goroutine, before Run and after it (until Close).
func (l *Link) Notify(n recorder.Notice) {
	m := n.Meta
	var e wire.Event
	switch n.Kind {
	case recorder.NoticeLessonStarted:
		e = wire.Event{Type: wire.EventLessonStarted, Lesson: &wire.LessonEvent{ID: m.ID, Visibility: m.Visibility, StartedBy: m.StartedBy}}
	case recorder.NoticeSegmentClosed:
		e = wire.Event{Type: wire.EventSegmentClosed, Segment: &wire.SegmentEvent{Lesson: m.ID, Name: n.Segment.Name,
			Seconds: n.Segment.Duration, Bytes: n.Segment.Bytes, SHA256: n.Segment.SHA256}}
	case recorder.NoticeLessonStopped:
		le := &wire.LessonEvent{ID: m.ID, Visibility: m.Visibility, StartedBy: m.StartedBy, Segments: len(m.Segments),
			Seconds: m.Duration, Bytes: m.Bytes}
		if m.Stop != nil {
			le.StoppedBy, le.Reason = m.Stop.By, m.Stop.Reason
		}
		e = wire.Event{Type: wire.EventLessonStopped, Lesson: le}
	default:
		return
	}
	e.BootID, e.BootS = n.At.BootID, n.At.BootTime
	if n.At.Wall != nil {
		e.At = *n.At.Wall
	}
	if err := l.addEvent(e); err != nil {
		l.log.Error("event lost", "type", e.Type, "lesson", m.ID, "err", err)
	}
}

// NotifyLive writes a live view event (wire.EventLiveStarted or
// wire.EventLiveStopped) to the outbox. It is safe to call from any
// goroutine, before Run and after it (until Close).
func (l *Link) NotifyLive(typ string, e wire.LiveEvent) {
	if err := l.addEvent(wire.Event{Type: typ, Live: &e}); err != nil {
		l.log.Error("event lost", "type", typ, "session", e.Session, "err", err)
	}
}

// addEvent numbers an event and writes it to the outbox.
func (l *Link) addEvent(e wire.Event) error {
	if e.BootID == "" && e.BootS == 0 {
		c := l.box.Clock()
		e.BootID, e.BootS = c.BootID, c.BootTime
		if c.Wall != nil {
			e.At = *c.Wall
		}
	}
	_, err := l.store.enqueueEvent(wire.EventTopic(l.cfg.Device), func(seq uint64) ([]byte, error) {
		e.V, e.Seq, e.ID = wire.Version, seq, fmt.Sprintf("%s-%d", l.eventBase, seq)
		if err := e.Validate(); err != nil {
			return nil, err
		}
		return json.Marshal(e)
	})
	if err != nil {
		return err
	}
	kick(l.kickOut)
	kick(l.kickState)
	return nil
}

// onMessage handles a message on the cmd topic. It runs in paho's router
// goroutine and must not block for long: the command is stored, the
// message acknowledged, and the command acted on in a goroutine of its own.
func (l *Link) onMessage(_ mqtt.Client, msg mqtt.Message) {
	received := time.Now()
	dev, kind, err := wire.ParseTopic(msg.Topic())
	if h := l.handlers[kind]; err == nil && dev == l.cfg.Device && h != nil {
		h(msg.Payload())
		msg.Ack()
		return
	}
	if err != nil || dev != l.cfg.Device || kind != wire.KindCmd {
		l.log.Warn("message on an unexpected topic ignored", "topic", msg.Topic())
		msg.Ack()
		return
	}
	c, derr := wire.DecodeCommand(msg.Payload())
	if derr != nil && c.ID == "" {
		// Nothing to remember it by: answer and forget.
		l.log.Warn("malformed command", "err", derr)
		l.queueReply(wire.ErrorReply("", wire.DecodeErrorCode(derr), derr.Error()))
		msg.Ack()
		return
	}
	rec, err := l.store.claim(c.ID, commandRecord{State: cmdRunning, Run: l.run, Received: received, Type: c.Type})
	switch {
	case errors.Is(err, errSeen):
		msg.Ack()
		l.redelivered(c.ID, rec)
		return
	case err != nil:
		// Not stored, so not acknowledged: the broker delivers it again.
		l.log.Error("cannot store a command; leaving it unacknowledged", "id", c.ID, "err", err)
		return
	}
	msg.Ack()
	l.log.Info("command", "id", c.ID, "type", c.Type)
	if derr != nil {
		l.answer(c.ID, wire.ErrorReply(c.ID, wire.DecodeErrorCode(derr), derr.Error()))
		return
	}
	args, err := c.DecodedArgs()
	if err != nil {
		l.answer(c.ID, wire.ErrorReply(c.ID, wire.DecodeErrorCode(err), err.Error()))
		return
	}
	deadline, ok := c.Deadline(received, l.box.ClockSynced())
	if !ok {
		l.answer(c.ID, wire.ErrorReply(c.ID, wire.CodeClockUnsynced,
			"the box's clock is not synced and the command has only expires_at; send ttl_ms too"))
		return
	}
	if !received.Before(deadline) {
		l.answer(c.ID, wire.ErrorReply(c.ID, wire.CodeExpired,
			fmt.Sprintf("expired %v before it arrived", received.Sub(deadline).Round(time.Millisecond))))
		return
	}
	l.commands.Add(1)
	go func() {
		defer l.commands.Done()
		l.answer(c.ID, l.execute(c, args, deadline))
	}()
}

// redelivered answers a command id seen before without acting on it again.
func (l *Link) redelivered(id string, rec commandRecord) {
	switch {
	case rec.State == cmdDone:
		l.log.Info("command delivered again; sending its stored reply", "id", id)
		if err := l.store.queue(wire.ReplyTopic(l.cfg.Device), rec.Reply); err != nil {
			l.log.Error("reply lost", "id", id, "err", err)
		}
		kick(l.kickOut)
	case rec.Run == l.run:
		l.log.Info("command delivered again while being acted on; its reply follows", "id", id)
	default:
		l.log.Warn("command delivered again after a restart interrupted it; not acting on it again", "id", id)
		l.answer(id, wire.ErrorReply(id, wire.CodeFailed,
			"interrupted by a restart of the box before it finished; not run again"))
	}
}

// execute acts on a valid, unexpired command and returns its reply.
func (l *Link) execute(c wire.Command, args any, deadline time.Time) wire.Reply {
	ctx := l.ctx
	kick(l.kickState)
	defer kick(l.kickState)
	var result any
	var err error
	switch a := args.(type) {
	case wire.RecordStartArgs:
		var res recorder.StartResult
		res, err = l.box.RemoteStart(ctx, recorder.RemoteStartRequest{
			StartRequest: recorder.StartRequest{By: "hub:" + a.By, Visibility: a.Visibility},
			ID:           c.ID, Veto: l.cfg.Veto, Deadline: deadline,
		})
		if err == nil {
			result = wire.RecordStartResult{Lesson: res.LessonID, VetoWaitedMS: res.VetoWaited.Milliseconds(),
				FirstFrameLatencyMS: float64(res.FirstFrameLatency.Microseconds()) / 1000}
		}
	case wire.RecordStopArgs:
		by := "hub"
		if a.By != "" {
			by = "hub:" + a.By
		}
		var m lesson.Meta
		m, err = l.box.Stop(ctx, recorder.StopRequest{By: by, Reason: "remote stop"})
		if err == nil {
			result = wire.RecordStopResult{Lesson: m.ID, Segments: len(m.Segments), Seconds: m.Duration}
		}
	case wire.StateGetArgs:
		result = l.state()
	case wire.LiveOfferArgs:
		var answer string
		answer, err = l.box.LiveOffer(ctx, a)
		if err == nil {
			result = wire.LiveOfferResult{Session: a.Session, SDP: answer}
		}
	case wire.LiveCandidatesArgs:
		var n int
		n, err = l.box.LiveCandidates(ctx, a)
		if err == nil {
			result = wire.LiveCandidatesResult{Session: a.Session, Added: n}
		}
	case wire.LiveStopArgs:
		var d time.Duration
		d, err = l.box.LiveStop(ctx, a)
		if err == nil {
			result = wire.LiveStopResult{Session: a.Session, Seconds: d.Seconds()}
		}
	case wire.IdentifyArgs:
		err = l.box.Identify(ctx, a.Duration())
		if err == nil {
			result = wire.IdentifyResult{Seconds: int(a.Duration() / time.Second)}
		}
	default:
		err = fmt.Errorf("no handler for %s", c.Type)
	}
	if err != nil {
		code, msg := replyCode(err)
		l.log.Info("command refused", "id", c.ID, "type", c.Type, "code", code, "err", err)
		return wire.ErrorReply(c.ID, code, msg)
	}
	r, err := wire.OKReply(c.ID, result)
	if err != nil {
		return wire.ErrorReply(c.ID, wire.CodeFailed, err.Error())
	}
	l.log.Info("command done", "id", c.ID, "type", c.Type)
	return r
}

// replyCode maps the recorder's errors to reply codes.
func replyCode(err error) (code, msg string) {
	switch {
	case errors.Is(err, recorder.ErrDeclined):
		return wire.CodeDeclined, "declined by the teacher"
	case errors.Is(err, recorder.ErrBusy), errors.Is(err, recorder.ErrRecording):
		return wire.CodeBusy, err.Error()
	case errors.Is(err, recorder.ErrExpired):
		return wire.CodeExpired, err.Error()
	case errors.Is(err, recorder.ErrNotRecording):
		return wire.CodeNotRecording, err.Error()
	case errors.Is(err, recorder.ErrDiskLow):
		return wire.CodeDiskLow, err.Error()
	case errors.Is(err, recorder.ErrNoVideo):
		return wire.CodeNoVideo, err.Error()
	case errors.Is(err, recorder.ErrBadRequest):
		return wire.CodeBadArgs, err.Error()
	case errors.Is(err, live.ErrOff), errors.Is(err, live.ErrNotRecording):
		return wire.CodeLiveOff, err.Error()
	case errors.Is(err, live.ErrVetoed):
		return wire.CodeDeclined, err.Error()
	case errors.Is(err, live.ErrTooMany), errors.Is(err, live.ErrSessionExists):
		return wire.CodeBusy, err.Error()
	case errors.Is(err, live.ErrBadOffer), errors.Is(err, live.ErrBadCandidate):
		return wire.CodeBadArgs, err.Error()
	case errors.Is(err, live.ErrUnknownSession):
		return wire.CodeUnknownSession, err.Error()
	case errors.Is(err, context.Canceled):
		return wire.CodeFailed, "the box is shutting down"
	}
	return wire.CodeFailed, err.Error()
}

// answer stores a command's reply and queues it for publishing.
func (l *Link) answer(id string, r wire.Reply) {
	b, err := json.Marshal(r)
	if err == nil {
		err = l.store.answer(id, wire.ReplyTopic(l.cfg.Device), b)
	}
	if err != nil {
		l.log.Error("reply lost", "id", id, "err", err)
		return
	}
	kick(l.kickOut)
}

// queueReply queues a reply to a command that had no readable id.
func (l *Link) queueReply(r wire.Reply) {
	b, _ := json.Marshal(r)
	if err := l.store.queue(wire.ReplyTopic(l.cfg.Device), b); err != nil {
		l.log.Error("reply lost", "err", err)
		return
	}
	kick(l.kickOut)
}
