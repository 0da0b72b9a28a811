//go:build cgo

package audio

/*
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>
#include <fcntl.h>

// The few libopus entry points used here, declared rather than included so
// that no header path is needed: the static library itself is linked by
// opus_src.go (libopus built by scripts/libopus.sh, -tags opussrc) or
// opus_bundled.go (the one mediadevices ships).
typedef struct OpusEncoder OpusEncoder;
OpusEncoder *opus_encoder_create(int32_t Fs, int channels, int application, int *error);
void opus_encoder_destroy(OpusEncoder *st);
int32_t opus_encode_float(OpusEncoder *st, const float *pcm, int frame_size,
	unsigned char *data, int32_t max_data_bytes);
int opus_encoder_ctl(OpusEncoder *st, int request, ...);
const char *opus_strerror(int error);
const char *opus_get_version_string(void);

// opus_encoder_ctl is variadic, which cgo cannot call directly.
static int classcap_opus_set(OpusEncoder *st, int request, int value) {
	return opus_encoder_ctl(st, request, (int32_t)value);
}
static int classcap_opus_get(OpusEncoder *st, int request, int32_t *value) {
	return opus_encoder_ctl(st, request, value);
}

// A worker is a thread of its own that runs opus_encode_float on a ring of
// packets. Go fills a slot, publishes it by advancing posted and writes a
// byte into the wake pipe, all without a cgo call; the worker encodes,
// advances done and writes a byte into the done pipe, which Go waits on
// through the runtime's poller.
enum { CLASSCAP_SLOTS = 8, CLASSCAP_MAX_PACKET = 1276 };

typedef struct {
	float *pcm;         // CLASSCAP_SLOTS slots of frame*channels samples
	unsigned char *out; // CLASSCAP_SLOTS slots of CLASSCAP_MAX_PACKET bytes
	int32_t *len;       // per slot: the packet's length, or a libopus error
	uint32_t *posted;   // slots published by Go (a counter, modulo 2^32)
	uint32_t *done;     // slots encoded by the worker
	int wake;           // write end of the wake pipe (non-blocking)
	int done_fd;        // read end of the done pipe (non-blocking), Go's to close
} classcap_view;

typedef struct {
	OpusEncoder *enc;
	int frame, channels;
	float *pcm;
	unsigned char *out;
	int32_t len[CLASSCAP_SLOTS];
	_Atomic uint32_t posted, done;
	_Atomic int stop;
	int wake[2], done_pipe[2];
	pthread_t thread;
} classcap_worker;

static void *classcap_worker_main(void *arg) {
	classcap_worker *w = arg;
	// Signals are for the Go threads (the runtime's handlers run anywhere,
	// but a profiling signal has no business interrupting a read here).
	sigset_t all;
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, NULL);
	char buf[64];
	for (;;) {
		uint32_t done = atomic_load(&w->done);
		if (done == atomic_load(&w->posted)) {
			if (atomic_load(&w->stop)) {
				return NULL;
			}
			// Go advances posted before writing the pipe: a slot
			// published after the check above finds a byte here.
			if (read(w->wake[0], buf, sizeof buf) < 0 && errno != EINTR && errno != EAGAIN) {
				return NULL;
			}
			continue;
		}
		int s = done % CLASSCAP_SLOTS;
		w->len[s] = opus_encode_float(w->enc, w->pcm + (size_t)s * w->frame * w->channels, w->frame,
			w->out + (size_t)s * CLASSCAP_MAX_PACKET, CLASSCAP_MAX_PACKET);
		atomic_store(&w->done, done + 1);
		// Go waits for the last slot it posted: tell it once the ring is
		// drained, not after each packet of a block. Non-blocking: a full
		// pipe already tells Go to look.
		if (done + 1 == atomic_load(&w->posted)) {
			while (write(w->done_pipe[1], "", 1) < 0 && errno == EINTR) {
			}
		}
	}
}

static void classcap_worker_free(classcap_worker *w) {
	if (w->wake[0] >= 0) close(w->wake[0]);
	if (w->wake[1] >= 0) close(w->wake[1]);
	if (w->done_pipe[1] >= 0) close(w->done_pipe[1]);
	free(w->pcm);
	free(w->out);
	free(w);
}

// classcap_worker_start returns a running worker for enc, or NULL with
// errno set.
static classcap_worker *classcap_worker_start(OpusEncoder *enc, int frame, int channels, classcap_view *v) {
	classcap_worker *w = calloc(1, sizeof *w);
	if (w == NULL) {
		return NULL;
	}
	w->enc = enc;
	w->frame = frame;
	w->channels = channels;
	w->wake[0] = w->wake[1] = w->done_pipe[0] = w->done_pipe[1] = -1;
	w->pcm = calloc((size_t)CLASSCAP_SLOTS * frame * channels, sizeof(float));
	w->out = malloc((size_t)CLASSCAP_SLOTS * CLASSCAP_MAX_PACKET);
	int err = ENOMEM;
	if (w->pcm == NULL || w->out == NULL) {
		goto fail;
	}
	if (pipe(w->wake) != 0 || pipe(w->done_pipe) != 0) {
		err = errno;
		goto fail;
	}
	for (int i = 0; i < 2; i++) {
		fcntl(w->wake[i], F_SETFD, FD_CLOEXEC);
		fcntl(w->done_pipe[i], F_SETFD, FD_CLOEXEC);
	}
	// A full pipe already holds a wake-up: neither side's write may block.
	// Go reads the done pipe through its poller, which wants it
	// non-blocking too.
	fcntl(w->wake[1], F_SETFL, O_NONBLOCK);
	fcntl(w->done_pipe[0], F_SETFL, O_NONBLOCK);
	fcntl(w->done_pipe[1], F_SETFL, O_NONBLOCK);
	if ((err = pthread_create(&w->thread, NULL, classcap_worker_main, w)) != 0) {
		goto fail;
	}
	v->pcm = w->pcm;
	v->out = w->out;
	v->len = w->len;
	v->posted = (uint32_t *)&w->posted;
	v->done = (uint32_t *)&w->done;
	v->wake = w->wake[1];
	v->done_fd = w->done_pipe[0];
	return w;
fail:
	if (w->done_pipe[0] >= 0) close(w->done_pipe[0]);
	classcap_worker_free(w);
	errno = err;
	return NULL;
}

// classcap_worker_stop ends the thread once it has encoded what was posted,
// and frees the worker (not the encoder, nor the done pipe's read end).
static void classcap_worker_stop(classcap_worker *w) {
	atomic_store(&w->stop, 1);
	while (write(w->wake[1], "", 1) < 0 && errno == EINTR) {
	}
	pthread_join(w->thread, NULL);
	classcap_worker_free(w);
}
*/
import "C"

import (
	"fmt"
	"os"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"github.com/classcap/classcap/capture/media"
)

// libopus constants (opus_defines.h).
const (
	opusOK                  = 0
	opusApplicationVOIP     = 2048
	opusSetBitrateRequest   = 4002
	opusSetComplexityReq    = 4010
	opusGetLookaheadRequest = 4027
)

// OpusVersion names the libopus linked in, e.g. "libopus 1.5.2".
func OpusVersion() string { return C.GoString(C.opus_get_version_string()) }

// workerSlots is the depth of the worker's ring (CLASSCAP_SLOTS).
const workerSlots = C.CLASSCAP_SLOTS

// Encoder frames 48 kHz PCM into 20 ms Opus packets. It is not safe for
// concurrent use.
//
// libopus runs on a thread of the encoder's own, not in a cgo call from
// the goroutine that writes: a cgo call as long as an encode (hundreds of
// microseconds at complexity 10) wakes the runtime's monitor thread, which
// then takes the processor away from the call and hands it to another
// thread, and the call's return takes it back: several thread switches per
// 20 ms packet, which cost more CPU than the Go side of the whole recording
// path. Handing a packet over is two memory writes and one raw write(2) to
// a pipe, which the runtime does not see; once a Write has handed over
// every packet its block completes, the writing goroutine waits for them in
// the runtime's poller, as for a network read, so its processor is idle
// rather than held in a call. A block of three packets is one wake-up of
// each thread, not three.
type Encoder struct {
	cfg       EncoderConfig
	enc       *C.OpusEncoder
	w         *C.classcap_worker
	lookahead int

	// The worker's ring, in C memory.
	ring   []float32 // workerSlots slots of one packet of interleaved input
	out    []byte    // workerSlots slots of maxPacketBytes
	lens   []int32
	posted *uint32               // shared with the worker: slots published
	done   *uint32               // shared with the worker: slots encoded
	wake   int32                 // the worker's wake pipe
	doneF  *os.File              // read end of the worker's done pipe
	doneRC syscall.RawConn       // doneF, read through the poller
	drain  func(fd uintptr) bool // doneRC's callback, made once (no allocation per wait)
	rerr   error                 // drain's error

	next      uint32 // slots published so far (our copy of *posted)
	taken     uint32 // slots whose packet was emitted
	slotPTS   [workerSlots]time.Duration
	buf       []float32 // the slot being filled (part of ring)
	n         int       // frames in buf
	started   bool
	base      time.Duration // PTS the framing (re)started at
	count     int64         // frames posted since base
	slab      []byte        // packet payloads are carved from here
	encodeErr error         // the first failed encode
}

// NewEncoder creates an Opus encoder (OPUS_APPLICATION_VOIP). The signal
// type is left to libopus's own speech/music detection, as ffmpeg leaves it:
// forcing "voice" cost 263 µs per 20 ms packet of the simulated classroom
// against 72 µs without (x86, complexity 10, 32 kbit/s).
func NewEncoder(cfg EncoderConfig) (*Encoder, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	var cerr C.int
	enc := C.opus_encoder_create(C.int32_t(media.AudioRate), C.int(cfg.Channels), opusApplicationVOIP, &cerr)
	if cerr != opusOK || enc == nil {
		return nil, fmt.Errorf("opus encoder: create: %s", C.GoString(C.opus_strerror(cerr)))
	}
	for _, s := range []struct {
		name       string
		req, value int
	}{
		{"bitrate", opusSetBitrateRequest, cfg.BitrateBps},
		{"complexity", opusSetComplexityReq, cfg.Complexity},
	} {
		if rc := C.classcap_opus_set(enc, C.int(s.req), C.int(s.value)); rc != opusOK {
			C.opus_encoder_destroy(enc)
			return nil, fmt.Errorf("opus encoder: set %s %d: %s", s.name, s.value, C.GoString(C.opus_strerror(rc)))
		}
	}
	var la C.int32_t
	if rc := C.classcap_opus_get(enc, opusGetLookaheadRequest, &la); rc != opusOK {
		C.opus_encoder_destroy(enc)
		return nil, fmt.Errorf("opus encoder: get lookahead: %s", C.GoString(C.opus_strerror(rc)))
	}
	var v C.classcap_view
	w, err := C.classcap_worker_start(enc, C.int(media.OpusFrameSamples), C.int(cfg.Channels), &v)
	if w == nil {
		C.opus_encoder_destroy(enc)
		return nil, fmt.Errorf("opus encoder: start worker thread: %w", err)
	}
	doneF := os.NewFile(uintptr(v.done_fd), "opus-done")
	rc, err := doneF.SyscallConn()
	if err != nil {
		C.classcap_worker_stop(w)
		C.opus_encoder_destroy(enc)
		doneF.Close()
		return nil, fmt.Errorf("opus encoder: done pipe: %w", err)
	}
	slot := media.OpusFrameSamples * cfg.Channels
	e := &Encoder{
		cfg: cfg, enc: enc, w: w, lookahead: int(la),
		ring:   unsafe.Slice((*float32)(unsafe.Pointer(v.pcm)), workerSlots*slot),
		out:    unsafe.Slice((*byte)(unsafe.Pointer(v.out)), workerSlots*maxPacketBytes),
		lens:   unsafe.Slice((*int32)(unsafe.Pointer(v.len)), workerSlots),
		posted: (*uint32)(unsafe.Pointer(v.posted)),
		done:   (*uint32)(unsafe.Pointer(v.done)),
		wake:   int32(v.wake),
		doneF:  doneF,
		doneRC: rc,
	}
	e.drain = func(fd uintptr) bool {
		e.rerr = drainPipe(fd)
		return e.rerr != errWouldBlock
	}
	e.buf = e.slot(0)
	return e, nil
}

// slot returns ring slot i%workerSlots.
func (e *Encoder) slot(i uint32) []float32 {
	n := media.OpusFrameSamples * e.cfg.Channels
	s := int(i%workerSlots) * n
	return e.ring[s : s+n : s+n]
}

// Config returns the settings in use, defaults filled in.
func (e *Encoder) Config() EncoderConfig { return e.cfg }

// Lookahead returns the encoder delay in samples at 48 kHz (312 with these
// settings): the pre-skip a decoder must drop (Ogg and MP4 "pre-skip") so
// that the first decoded sample has the first packet's PTS. The last
// Lookahead samples before a Flush stay inside the encoder.
func (e *Encoder) Lookahead() int { return e.lookahead }

// Write appends p (48 kHz, e's channel count, any number of frames) to the
// packet being filled and calls emit for every completed 20 ms packet
// before it returns.
//
// The PTS of a packet is the PTS of the input sample it starts with,
// counted in samples from the block that started the framing, so it does not
// drift with block sizes. When p.PTS is more than one packet away from
// where the previous input ended (samples lost after an overrun or a device
// loss, or a timeline jump), the partial packet is padded with silence and
// emitted, and framing restarts at p.PTS. Input that overlaps audio already
// emitted is dropped, so packet PTSs always increase by at least 20 ms.
//
// The packet's Data belongs to the receiver; emit may keep it.
func (e *Encoder) Write(p media.PCM, emit func(media.AudioPacket)) error {
	if e.enc == nil {
		return ErrClosed
	}
	ch := e.cfg.Channels
	if p.Channels != ch || p.Rate != media.AudioRate {
		return fmt.Errorf("opus encode: input %d ch at %d Hz, want %d ch at %d Hz",
			p.Channels, p.Rate, ch, media.AudioRate)
	}
	frames := p.Frames()
	if frames == 0 {
		return nil
	}
	in := p.Samples[:frames*ch]
	start := p.PTS
	if e.started {
		gap := p.PTS - e.pts(e.count+int64(e.n))
		if gap > packetDur || gap < -packetDur {
			if err := e.Flush(emit); err != nil {
				return err
			}
			if end := e.pts(e.count); p.PTS < end {
				skip := durToSamplesCeil(end - p.PTS)
				if skip >= int64(frames) {
					return nil
				}
				in = in[int(skip)*ch:]
				start = p.PTS + samplesToDur(skip)
			}
			e.started = false
		}
	}
	if !e.started {
		e.started, e.base, e.count, e.n = true, start, 0, 0
	}
	for len(in) > 0 {
		dst := e.buf[e.n*ch:]
		k := min(len(dst), len(in))
		for i, v := range in[:k] {
			dst[i] = clamp1(v)
		}
		in = in[k:]
		e.n += k / ch
		if e.n == media.OpusFrameSamples {
			if err := e.post(emit); err != nil {
				return err
			}
		}
	}
	return e.finish(emit)
}

// Flush pads a partial packet with silence and emits it. The next Write
// continues the framing after the padded packet, or restarts it if its PTS
// says samples are missing.
func (e *Encoder) Flush(emit func(media.AudioPacket)) error {
	if e.enc == nil {
		return ErrClosed
	}
	if e.n == 0 {
		return nil
	}
	clear(e.buf[e.n*e.cfg.Channels:])
	e.n = media.OpusFrameSamples
	if err := e.post(emit); err != nil {
		return err
	}
	return e.finish(emit)
}

// post publishes the full e.buf to the worker and moves e.buf to the next
// slot. The packets of one Write are encoded in one go: finish wakes the
// worker once for all of them and waits once (one wake-up of each thread
// per block, not per packet). post waits only when the ring is full.
func (e *Encoder) post(emit func(media.AudioPacket)) error {
	e.slotPTS[e.next%workerSlots] = e.pts(e.count)
	e.next++
	atomic.StoreUint32(e.posted, e.next)
	e.count += media.OpusFrameSamples
	e.n = 0
	if e.next-e.taken == workerSlots {
		if err := e.finish(emit); err != nil {
			return err
		}
	}
	e.buf = e.slot(e.next)
	return nil
}

// finish wakes the worker for the packets posted since the last finish,
// waits for every one of them and emits them.
func (e *Encoder) finish(emit func(media.AudioPacket)) error {
	if e.taken == e.next {
		return nil
	}
	wakeWorker(e.wake)
	if err := e.wait(e.next); err != nil {
		return err
	}
	return e.collect(emit)
}

// wait parks the goroutine in the runtime's poller until the worker has
// encoded target slots.
func (e *Encoder) wait(target uint32) error {
	for int32(atomic.LoadUint32(e.done)-target) < 0 {
		err := e.doneRC.Read(e.drain)
		if err == nil {
			err = e.rerr
		}
		if err != nil {
			return fmt.Errorf("opus encode: wait for the encoder thread: %w", err)
		}
	}
	return nil
}

// collect emits the packets the worker has finished, in order.
func (e *Encoder) collect(emit func(media.AudioPacket)) error {
	done := atomic.LoadUint32(e.done)
	for ; e.taken != done; e.taken++ {
		s := int(e.taken % workerSlots)
		n := int(e.lens[s])
		if n < 0 {
			if e.encodeErr == nil {
				e.encodeErr = fmt.Errorf("opus encode: %s", C.GoString(C.opus_strerror(C.int(n))))
			}
			continue
		}
		if len(e.slab) < n {
			e.slab = make([]byte, max(slabBytes, n))
		}
		copy(e.slab, e.out[s*maxPacketBytes:s*maxPacketBytes+n])
		pkt := media.AudioPacket{
			Data:     e.slab[:n:n],
			PTS:      e.slotPTS[s],
			Samples:  media.OpusFrameSamples,
			Channels: e.cfg.Channels,
		}
		e.slab = e.slab[n:]
		emit(pkt)
	}
	if err := e.encodeErr; err != nil {
		e.encodeErr = nil
		return err
	}
	return nil
}

// pts returns the PTS of the sample k frames after the framing's base.
func (e *Encoder) pts(k int64) time.Duration { return e.base + samplesToDur(k) }

// Close stops the encoder's thread and releases the encoder. A partial
// packet is discarded (call Flush first to keep it).
func (e *Encoder) Close() error {
	if e.enc != nil {
		C.classcap_worker_stop(e.w)
		C.opus_encoder_destroy(e.enc)
		e.doneF.Close()
		e.enc, e.w, e.doneF, e.doneRC = nil, nil, nil, nil
		e.ring, e.out, e.lens, e.posted, e.done, e.buf = nil, nil, nil, nil, nil, nil
	}
	return nil
}
