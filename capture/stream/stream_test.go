package stream

import (
	"testing"
	"time"

	"github.com/classcap/classcap/capture/media"
)

func TestLossyReaderDropsLosslessWaits(t *testing.T) {
	s := New()
	rec := s.Subscribe("recorder", true, 4)
	viewer := s.Subscribe("viewer", false, 2) // never read: a stalled viewer
	got := make(chan int)
	go func() {
		n := 0
		for range rec.Video {
			n++
			if n == 100 {
				got <- n
				return
			}
		}
	}()
	for i := 0; i < 100; i++ {
		s.WriteVideo(media.AccessUnit{PTS: time.Duration(i)})
	}
	select {
	case n := <-got:
		if n != 100 {
			t.Fatalf("recorder got %d", n)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("recorder did not get every unit")
	}
	if d := viewer.Dropped(); d != 98 {
		t.Fatalf("viewer dropped %d, want 98", d)
	}
	if rec.Dropped() != 0 {
		t.Fatal("lossless reader dropped")
	}
	if v, _ := s.Counts(); v != 100 {
		t.Fatalf("count %d", v)
	}
}

func TestCloseReleasesBlockedWriter(t *testing.T) {
	s := New()
	r := s.Subscribe("recorder", true, 1)
	done := make(chan struct{})
	go func() {
		for i := 0; i < 5; i++ {
			s.WriteAudio(media.AudioPacket{})
		}
		close(done)
	}()
	// The writer blocks once the queue (3 packets) is full; closing the
	// reader must release it.
	deadline := time.Now().Add(5 * time.Second)
	for len(r.Audio) < 3 {
		if time.Now().After(deadline) {
			t.Fatal("queue never filled")
		}
		time.Sleep(time.Millisecond)
	}
	r.Close()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("writer still blocked after Close")
	}
}
