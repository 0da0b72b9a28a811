// Package faultproxy is a TCP proxy for tests of transfers over a bad
// network: it forwards bytes to a target, cuts every connection it carries
// once the bytes sent towards the target pass a random threshold, and can
// pace that direction to a fixed rate.
package faultproxy

import (
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"

	"github.com/classcap/classcap/uplink/pace"
)

// Options shape the faults. Zero values mean no cuts and no pacing.
type Options struct {
	// Cuts happen after a random number of upstream bytes in
	// [CutMin, CutMax]; CutMax 0 disables cutting.
	CutMin, CutMax int64
	// Rate paces the upstream direction, bytes per second (0: no pacing).
	Rate int64
}

// Proxy forwards 127.0.0.1 connections to a target address.
type Proxy struct {
	target string
	ln     net.Listener
	opts   Options
	rate   *pace.Limiter

	mu      sync.Mutex
	conns   map[net.Conn]struct{}
	budget  int64 // upstream bytes left before the next cut
	cutting bool

	cuts     atomic.Int64
	upstream atomic.Int64
	wg       sync.WaitGroup
	ctx      context.Context
	cancel   context.CancelFunc
}

// New listens on a free loopback port and forwards to target.
func New(target string, opts Options) (*Proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &Proxy{target: target, ln: ln, opts: opts, conns: map[net.Conn]struct{}{},
		cutting: opts.CutMax > 0, ctx: ctx, cancel: cancel}
	if opts.Rate > 0 {
		p.rate = pace.New(opts.Rate)
	}
	p.budget = p.nextBudget()
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

// Addr is the proxy's host:port.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Cuts is the number of cuts so far.
func (p *Proxy) Cuts() int64 { return p.cuts.Load() }

// Upstream is the number of bytes forwarded towards the target.
func (p *Proxy) Upstream() int64 { return p.upstream.Load() }

// SetCutting turns cutting on or off.
func (p *Proxy) SetCutting(on bool) {
	p.mu.Lock()
	p.cutting = on && p.opts.CutMax > 0
	p.mu.Unlock()
}

// CutAll closes every connection now (counted as one cut).
func (p *Proxy) CutAll() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cutLocked()
}

// Close stops listening and closes every connection.
func (p *Proxy) Close() error {
	p.cancel()
	err := p.ln.Close()
	p.mu.Lock()
	for c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
	return err
}

func (p *Proxy) nextBudget() int64 {
	if p.opts.CutMax <= 0 {
		return 0
	}
	lo := max(p.opts.CutMin, 1)
	hi := max(p.opts.CutMax, lo)
	return lo + rand.Int64N(hi-lo+1)
}

func (p *Proxy) cutLocked() {
	for c := range p.conns {
		// RST rather than FIN, as a dropped network looks to the peers.
		if tc, ok := c.(*net.TCPConn); ok {
			tc.SetLinger(0)
		}
		c.Close()
		delete(p.conns, c)
	}
	p.cuts.Add(1)
	p.budget = p.nextBudget()
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		up, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		p.conns[c] = struct{}{}
		p.conns[up] = struct{}{}
		p.mu.Unlock()
		p.wg.Add(2)
		go func() { defer p.wg.Done(); p.pipe(up, c, true) }()
		go func() { defer p.wg.Done(); p.pipe(c, up, false) }()
	}
}

// pipe copies src to dst; upstream copies are paced and counted towards
// the next cut.
func (p *Proxy) pipe(dst, src net.Conn, upstream bool) {
	halfClosed := false
	defer func() {
		if halfClosed {
			return // the other direction closes both
		}
		p.mu.Lock()
		delete(p.conns, dst)
		delete(p.conns, src)
		p.mu.Unlock()
		dst.Close()
		src.Close()
	}()
	buf := make([]byte, 16<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			b := buf[:n]
			if upstream {
				if p.rate != nil && p.rate.WaitN(p.ctx, n) != nil {
					return
				}
				p.mu.Lock()
				if _, live := p.conns[src]; !live {
					p.mu.Unlock()
					return
				}
				cut := false
				if p.cutting && int64(n) >= p.budget {
					b = b[:p.budget] // forward up to the cut, then drop everything
					cut = true
				} else if p.cutting {
					p.budget -= int64(n)
				}
				p.mu.Unlock()
				if _, werr := dst.Write(b); werr != nil {
					return
				}
				p.upstream.Add(int64(len(b)))
				if cut {
					p.mu.Lock()
					p.cutLocked()
					p.mu.Unlock()
					return
				}
			} else if _, werr := dst.Write(b); werr != nil {
				return
			}
		}
		if err != nil {
			if !errors.Is(err, io.EOF) {
				return
			}
			// Half-close towards dst so a request/response pair can finish.
			if tc, ok := dst.(*net.TCPConn); ok && tc.CloseWrite() == nil {
				halfClosed = true
			}
			return
		}
	}
}
