package faultproxy

import (
	"bytes"
	"crypto/rand"
	"io"
	"net"
	"testing"
)

// echoServer answers every connection with what it read.
func echoServer(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { io.Copy(c, c); c.Close() }()
		}
	}()
	return ln.Addr().String()
}

func roundTrip(addr string, data []byte) ([]byte, error) {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	go func() { c.Write(data); c.(*net.TCPConn).CloseWrite() }()
	return io.ReadAll(c)
}

func TestForwardsAndCuts(t *testing.T) {
	target := echoServer(t)
	data := make([]byte, 1<<20)
	rand.Read(data)

	p, err := New(target, Options{})
	if err != nil {
		t.Fatal(err)
	}
	got, err := roundTrip(p.Addr(), data)
	p.Close()
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("without faults: %d bytes back, %v; want the %d sent", len(got), err, len(data))
	}

	p, err = New(target, Options{CutMin: 100 << 10, CutMax: 200 << 10})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	got, _ = roundTrip(p.Addr(), data)
	if p.Cuts() != 1 || p.Upstream() < 100<<10 || p.Upstream() > 200<<10 {
		t.Fatalf("%d cuts after %d bytes upstream; want one cut between 100 and 200 KiB", p.Cuts(), p.Upstream())
	}
	if len(got) > int(p.Upstream()) || !bytes.Equal(got, data[:len(got)]) {
		t.Fatalf("%d bytes came back through a cut connection; want a prefix of the %d forwarded", len(got), p.Upstream())
	}
}
