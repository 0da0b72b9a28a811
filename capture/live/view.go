package live

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/webrtc/v4"
	pmedia "github.com/pion/webrtc/v4/pkg/media"

	"github.com/classcap/classcap/capture/h264"
	"github.com/classcap/classcap/capture/media"
	"github.com/classcap/classcap/capture/stream"
)

// The tracks' codecs: H.264 as the encoders make it (constrained baseline,
// packetization mode 1) and Opus.
var (
	videoCodec = webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeH264, ClockRate: media.VideoClockRate,
		SDPFmtpLine: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f"}
	audioCodec = webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: media.AudioRate, Channels: 2,
		SDPFmtpLine: "minptime=10;useinbandfec=1"}
)

// view is one viewer's PeerConnection and the goroutine feeding it.
type view struct {
	m       *Manager
	req     OfferRequest
	started time.Time
	lesson  string

	pc           *webrtc.PeerConnection
	video, audio *webrtc.TrackLocalStaticSample
	readerMu     sync.Mutex // reader is replaced once when joining through the tap
	reader       *stream.Reader
	dropBase     atomic.Uint64 // drops of a replaced reader

	connected chan struct{}
	connOnce  sync.Once
	done      chan struct{}
	endOnce   sync.Once
	wg        sync.WaitGroup
	began     atomic.Bool
	state     atomic.Pointer[string]
	sentV     atomic.Uint64
	sentA     atomic.Uint64
	remote    atomic.Uint64 // trickled candidates taken
	length    time.Duration // set by end

	sps, pps []byte // the last parameter sets seen (sender goroutine)
}

func newView(m *Manager, req OfferRequest) *view {
	v := &view{m: m, req: req, started: time.Now(), connected: make(chan struct{}), done: make(chan struct{})}
	s := webrtc.PeerConnectionStateNew.String()
	v.state.Store(&s)
	return v
}

// negotiate answers the offer, ICE gathered completely.
func (v *view) negotiate(ctx context.Context) (string, error) {
	pc, err := v.m.api.NewPeerConnection(v.m.configuration())
	if err != nil {
		return "", fmt.Errorf("live: new peer connection: %w", err)
	}
	v.pc = pc
	pc.OnConnectionStateChange(func(s webrtc.PeerConnectionState) {
		str := s.String()
		v.state.Store(&str)
		switch s {
		case webrtc.PeerConnectionStateConnected:
			v.connOnce.Do(func() { close(v.connected) })
			v.m.updateWatched()
		case webrtc.PeerConnectionStateFailed:
			go v.end("connection failed")
		case webrtc.PeerConnectionStateClosed:
			go v.end("connection closed")
		}
	})
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: v.req.SDP}); err != nil {
		return "", fmt.Errorf("%w: %w", ErrBadOffer, err)
	}
	if v.video, err = webrtc.NewTrackLocalStaticSample(videoCodec, "video", "classcap"); err != nil {
		return "", fmt.Errorf("live: video track: %w", err)
	}
	if v.audio, err = webrtc.NewTrackLocalStaticSample(audioCodec, "audio", "classcap"); err != nil {
		return "", fmt.Errorf("live: audio track: %w", err)
	}
	for _, tr := range []webrtc.TrackLocal{v.video, v.audio} {
		sender, err := pc.AddTrack(tr)
		if err != nil {
			return "", fmt.Errorf("%w: add %s track: %w", ErrBadOffer, tr.Kind(), err)
		}
		go v.readRTCP(sender)
	}
	answer, err := pc.CreateAnswer(nil)
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrBadOffer, err)
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(answer); err != nil {
		return "", fmt.Errorf("live: set answer: %w", err)
	}
	timer := time.NewTimer(v.m.cfg.GatherTimeout)
	defer timer.Stop()
	select {
	case <-gathered:
	case <-timer.C:
		return "", errors.New("live: ICE gathering did not complete")
	case <-ctx.Done():
		return "", ctx.Err()
	}
	return pc.LocalDescription().SDP, nil
}

// addCandidates adds trickled remote candidates to the connection.
func (v *view) addCandidates(cs []Candidate, end bool) (int, error) {
	select {
	case <-v.done:
		return 0, fmt.Errorf("%w: %q has ended", ErrUnknownSession, v.req.Session)
	default:
	}
	if !v.begun() { // negotiate still owns pc
		return 0, fmt.Errorf("%w: %q is still negotiating", ErrUnknownSession, v.req.Session)
	}
	n := 0
	for _, c := range cs {
		mid, idx := c.Mid, c.MLineIndex
		if err := v.pc.AddICECandidate(webrtc.ICECandidateInit{Candidate: c.Candidate, SDPMid: &mid, SDPMLineIndex: &idx}); err != nil {
			return n, fmt.Errorf("%w: %q: %w", ErrBadCandidate, c.Candidate, err)
		}
		n++
		v.remote.Add(1)
	}
	if end {
		if err := v.pc.AddICECandidate(webrtc.ICECandidateInit{}); err != nil {
			return n, fmt.Errorf("live: end of candidates: %w", err)
		}
	}
	return n, nil
}

// readRTCP answers a viewer's picture loss (PLI, FIR) with a keyframe. It
// ends when the connection closes.
func (v *view) readRTCP(s *webrtc.RTPSender) {
	for {
		pkts, _, err := s.ReadRTCP()
		if err != nil {
			return
		}
		for _, p := range pkts {
			switch p.(type) {
			case *rtcp.PictureLossIndication, *rtcp.FullIntraRequest:
				v.m.keyframe()
			}
		}
	}
}

// begin starts feeding the view.
func (v *view) begin() {
	v.lesson = v.m.deps.Lesson()
	v.readerMu.Lock()
	v.reader = v.m.deps.Source.Subscribe("live:"+v.req.Session, false, v.m.cfg.Queue)
	v.readerMu.Unlock()
	v.began.Store(true)
	v.wg.Add(1)
	go v.run()
}

func (v *view) begun() bool { return v.began.Load() }

func (v *view) isConnected() bool {
	select {
	case <-v.connected:
		select {
		case <-v.done:
			return false
		default:
			return true
		}
	default:
		return false
	}
}

// run feeds the tracks from the viewer's queue once the viewer has
// connected, starting at a keyframe.
func (v *view) run() {
	defer v.wg.Done()
	timer := time.NewTimer(v.m.cfg.ConnectTimeout)
	select {
	case <-v.connected:
		timer.Stop()
	case <-timer.C:
		go v.end("viewer did not connect")
		return
	case <-v.done:
		timer.Stop()
		return
	}
	// What queued while connecting is stale: start from now, at the
	// keyframe asked for, or from the last one kept by the tap when the
	// encoder cannot be asked, or else at the camera's next one.
	for drained := false; !drained; {
		select {
		case <-v.reader.Video:
		case <-v.reader.Audio:
		default:
			drained = true
		}
	}
	var started, havePTS bool
	var lastPTS time.Duration
	step := time.Second / 30
	if !v.m.keyframe() && v.m.deps.Tap != nil {
		gop, r := v.m.deps.Tap.join(v.m.deps.Source, "live:"+v.req.Session, v.m.cfg.Queue)
		old := v.reader
		v.dropBase.Store(old.Dropped())
		v.readerMu.Lock()
		v.reader = r
		v.readerMu.Unlock()
		old.Close()
		// The kept pictures go at once, 1 ms apart on the RTP clock, so the
		// viewer's decoder catches up to now instead of replaying the group
		// at its pace; the pictures after them keep their own spacing.
		for _, au := range gop {
			if sps, pps := h264.FindParams(au.NALUs); sps != nil && pps != nil {
				v.sps, v.pps = sps, pps
			}
			if err := v.video.WriteSample(pmedia.Sample{Data: v.annexB(au), Duration: time.Millisecond}); err == nil {
				v.sentV.Add(1)
			}
			started, havePTS, lastPTS = true, true, au.PTS
		}
	}
	for {
		select {
		case <-v.done:
			return
		case au := <-v.reader.Video:
			if sps, pps := h264.FindParams(au.NALUs); sps != nil && pps != nil {
				v.sps, v.pps = sps, pps
			}
			if !started && !au.IDR {
				continue
			}
			started = true
			// Each sample advances the RTP clock by the last frame's
			// length, so RTP time follows the capture time without drift.
			if havePTS {
				if d := au.PTS - lastPTS; d > 0 && d < time.Second {
					step = d
				}
			}
			lastPTS, havePTS = au.PTS, true
			if err := v.video.WriteSample(pmedia.Sample{Data: v.annexB(au), Duration: step}); err == nil {
				v.sentV.Add(1)
			}
		case p := <-v.reader.Audio:
			if err := v.audio.WriteSample(pmedia.Sample{Data: p.Data, Duration: p.Duration()}); err == nil {
				v.sentA.Add(1)
			}
		}
	}
}

var startCode = []byte{0, 0, 0, 1}

// annexB writes an access unit with start codes, the parameter sets in
// front of an IDR that lacks them (a browser needs them in band).
func (v *view) annexB(au media.AccessUnit) []byte {
	n := 0
	for _, nal := range au.NALUs {
		n += 4 + len(nal)
	}
	lacks := au.IDR && v.sps != nil
	if lacks {
		if sps, _ := h264.FindParams(au.NALUs); sps != nil {
			lacks = false
		}
	}
	if lacks {
		n += 8 + len(v.sps) + len(v.pps)
	}
	out := make([]byte, 0, n)
	if lacks {
		out = append(append(append(append(out, startCode...), v.sps...), startCode...), v.pps...)
	}
	for _, nal := range au.NALUs {
		out = append(append(out, startCode...), nal...)
	}
	return out
}

// end ends the view once and returns how long it lasted.
func (v *view) end(reason string) time.Duration {
	v.endOnce.Do(func() {
		close(v.done)
		v.length = time.Since(v.started)
		if v.pc != nil {
			_ = v.pc.Close()
		}
		v.wg.Wait()
		var dropped uint64
		if r := v.currentReader(); r != nil {
			r.Close()
			dropped = v.dropped()
		}
		v.m.remove(v)
		if !v.begun() {
			return
		}
		v.m.log.Info("live view ended", "session", v.req.Session, "viewer", v.req.Viewer, "reason", reason,
			"seconds", v.length.Seconds(), "video", v.sentV.Load(), "audio", v.sentA.Load(), "dropped", dropped)
		v.m.deps.Notify(Event{Kind: EventStopped, Session: v.req.Session, Viewer: v.req.Viewer, Lesson: v.lesson,
			Started: v.started, Seconds: v.length.Seconds(), Reason: reason,
			Video: v.sentV.Load(), Audio: v.sentA.Load(), Dropped: dropped})
	})
	return v.length
}

// close drops a view that never began (negotiation failed or refused).
func (v *view) close() {
	v.endOnce.Do(func() {
		close(v.done)
		if v.pc != nil {
			_ = v.pc.Close()
		}
	})
}

func (v *view) status() Viewer {
	s := Viewer{Session: v.req.Session, Viewer: v.req.Viewer, State: *v.state.Load(),
		Seconds: time.Since(v.started).Seconds(), Video: v.sentV.Load(), Audio: v.sentA.Load(),
		RemoteCandidates: v.remote.Load()}
	if v.begun() {
		s.Dropped = v.dropped()
	}
	return s
}

func (v *view) currentReader() *stream.Reader {
	v.readerMu.Lock()
	defer v.readerMu.Unlock()
	return v.reader
}

// dropped counts what the viewer's queues dropped.
func (v *view) dropped() uint64 { return v.dropBase.Load() + v.currentReader().Dropped() }
