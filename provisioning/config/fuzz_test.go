package config

import (
	"bytes"
	"os"
	"reflect"
	"testing"

	"github.com/BurntSushi/toml"
)

// Every accepted configuration is valid, and writing it back out as TOML
// and parsing that gives the same configuration.

func FuzzParseBox(f *testing.F) {
	if data, err := os.ReadFile("testdata/design-box.toml"); err == nil {
		f.Add(data)
	}
	f.Add([]byte("[device]\nid = \"a\"\n[recording]\nsegment_seconds = 1.5\n"))
	f.Add([]byte("[hardware]\nprofile = \"auto\"\nled = \"gpiochip0:27\"\nbutton = \"\"\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		b, err := ParseBox(data)
		if err != nil {
			if b != nil {
				t.Fatalf("ParseBox returned a config with error %v", err)
			}
			return
		}
		if err := b.Validate(); err != nil {
			t.Fatalf("accepted config does not validate: %v", err)
		}
		var buf bytes.Buffer
		if err := toml.NewEncoder(&buf).Encode(b); err != nil {
			t.Fatalf("encode accepted config: %v", err)
		}
		again, err := ParseBox(buf.Bytes())
		if err != nil {
			t.Fatalf("re-parse: %v\n%s", err, buf.String())
		}
		b.Warnings = nil
		if !reflect.DeepEqual(again, b) {
			t.Fatalf("round trip changed the config:\n got %+v\nwant %+v", again, b)
		}
	})
}

func FuzzParseHub(f *testing.F) {
	if data, err := os.ReadFile("testdata/design-hub.toml"); err == nil {
		f.Add(data)
	}
	f.Add([]byte("[broker]\nurl = \"tcp://mosq:1883\"\n"))
	f.Add([]byte("[hub]\nhttp_listen = \"[::1]:0\"\n"))
	f.Add([]byte("[http]\nallowed_origins = [\"https://player.example.org\", \"http://[::1]:3000\"]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		h, err := ParseHub(data)
		if err != nil {
			if h != nil {
				t.Fatalf("ParseHub returned a config with error %v", err)
			}
			return
		}
		if err := h.Validate(); err != nil {
			t.Fatalf("accepted config does not validate: %v", err)
		}
		var buf bytes.Buffer
		if err := toml.NewEncoder(&buf).Encode(h); err != nil {
			t.Fatalf("encode accepted config: %v", err)
		}
		again, err := ParseHub(buf.Bytes())
		if err != nil {
			t.Fatalf("re-parse: %v\n%s", err, buf.String())
		}
		h.Warnings = nil
		if !reflect.DeepEqual(again, h) {
			t.Fatalf("round trip changed the config:\n got %+v\nwant %+v", again, h)
		}
	})
}

func FuzzCanonicalOrigin(f *testing.F) {
	for _, s := range []string{"https://player.example.org", "http://10.0.0.5:8080", "http://[::1]:80", "HTTPS://A.example:443/", "*", "null", "https://u@h/p?q#f"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := CanonicalOrigin(s)
		if err != nil {
			return
		}
		again, err := CanonicalOrigin(c)
		if err != nil || again != c {
			t.Fatalf("%q -> %q -> %q, %v: not canonical", s, c, again, err)
		}
	})
}
