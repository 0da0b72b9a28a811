package tus

import (
	"testing"
	"time"
)

func TestMetadataRoundTrip(t *testing.T) {
	cases := []map[string]string{
		{},
		{"filename": "seg_000001.m4s", "lesson": "000001-abcdefghij", "sha256": "00ff", "segment": "1"},
		{"empty": "", "comma": "a,b c", "utf8": "grüße"},
	}
	for _, m := range cases {
		got, err := DecodeMetadata(EncodeMetadata(m))
		if err != nil {
			t.Fatalf("%v: %v", m, err)
		}
		if len(got) != len(m) {
			t.Fatalf("%v -> %v", m, got)
		}
		for k, v := range m {
			if got[k] != v {
				t.Fatalf("%v -> %v", m, got)
			}
		}
	}
}

func TestDecodeMetadataRejects(t *testing.T) {
	for _, h := range []string{"a !!!", "a YQ==,a Yg==", ",", "a YQ==,,b Yg=="} {
		if m, err := DecodeMetadata(h); err == nil {
			t.Errorf("DecodeMetadata(%q) = %v, want an error", h, m)
		}
	}
}

func FuzzDecodeMetadata(f *testing.F) {
	f.Add("filename c2VnXzAwMDAwMS5tNHM=,sha256 YWJj")
	f.Add("key")
	f.Add("a YQ==,a Yg==")
	f.Fuzz(func(t *testing.T, h string) {
		m, err := DecodeMetadata(h)
		if err != nil {
			return
		}
		again, err := DecodeMetadata(EncodeMetadata(m))
		if err != nil || len(again) != len(m) {
			t.Fatalf("re-encoding %v: %v, %v", m, again, err)
		}
		for k, v := range m {
			if again[k] != v {
				t.Fatalf("re-encoding %v: %v", m, again)
			}
		}
	})
}

func TestDelayGrowsWithJitterAndCap(t *testing.T) {
	c := &Client{MinDelay: 100 * time.Millisecond, MaxDelay: time.Second}
	for n := 1; n <= 10; n++ {
		base := min(100*time.Millisecond<<(n-1), time.Second)
		for range 50 {
			d := c.delay(n)
			if d < base/2 || d > base {
				t.Fatalf("delay(%d) = %v, want within [%v, %v]", n, d, base/2, base)
			}
		}
	}
}
