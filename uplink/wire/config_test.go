package wire

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func TestDecodeConfig(t *testing.T) {
	good := `{"v":1,"version":3,"settings":{"recording":{"visibility":"coaching"}}}`
	c, err := DecodeConfig([]byte(good))
	if err != nil {
		t.Fatal(err)
	}
	if c.Version != 3 || !strings.Contains(string(c.Settings), "coaching") {
		t.Errorf("decoded %+v", c)
	}
	for _, tc := range []struct{ name, in, field string }{
		{"no v", `{"version":1,"settings":{}}`, "v"},
		{"version 0", `{"v":1,"version":0,"settings":{}}`, "version"},
		{"settings not an object", `{"v":1,"version":1,"settings":[1]}`, "settings"},
		{"settings missing", `{"v":1,"version":1}`, "settings"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := DecodeConfig([]byte(tc.in))
			var fe *FieldError
			if !errors.Is(err, ErrMalformed) || !errors.As(err, &fe) || fe.Field != tc.field {
				t.Errorf("err %v, want a malformed %s", err, tc.field)
			}
		})
	}
	if _, err := DecodeConfig([]byte(`{"v":1,"version":1,"settings":{},"extra":1}`)); err == nil {
		t.Error("unknown field accepted")
	}
	if got := ConfigTopic("room-101"); got != "classcap/v1/room-101/config" {
		t.Errorf("topic %q", got)
	}
}

func FuzzDecodeConfig(f *testing.F) {
	f.Add([]byte(`{"v":1,"version":3,"settings":{"recording":{"visibility":"coaching"}}}`))
	f.Add([]byte(`{"v":1,"version":1,"settings":{}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := DecodeConfig(b)
		if err != nil {
			return
		}
		out, err := json.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		again, err := DecodeConfig(out)
		if err != nil || again.Version != c.Version {
			t.Fatalf("round trip %s -> %+v, %v", out, again, err)
		}
	})
}
