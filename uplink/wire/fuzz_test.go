package wire

import (
	"encoding/json"
	"reflect"
	"testing"
)

// The seeds below are also committed under testdata/fuzz, with inputs the
// fuzzer found interesting.

func FuzzParseTopic(f *testing.F) {
	f.Add("classcap/v1/room-101/cmd")
	f.Add("classcap/v1/+/state")
	f.Add("classcap/v1/a/b/c")
	f.Fuzz(func(t *testing.T, topic string) {
		dev, kind, err := ParseTopic(topic)
		if err != nil {
			return
		}
		if Topic(dev, kind) != topic {
			t.Fatalf("ParseTopic(%q) = %q, %q which builds %q", topic, dev, kind, Topic(dev, kind))
		}
	})
}

func FuzzDecodeCommand(f *testing.F) {
	f.Add([]byte(`{"v":1,"id":"c1","type":"record.start","expires_at":"2026-03-02T09:00:00Z","ttl_ms":30000,"args":{"visibility":"coaching","by":"coach:alice"}}`))
	f.Add([]byte(`{"v":1,"id":"c2","type":"identify","ttl_ms":1000,"args":{"seconds":5}}`))
	f.Add([]byte(`{"v":1,"id":"c3","type":"state.get","ttl_ms":1}`))
	f.Add([]byte(`{"v":1,"id":"c5","type":"live.offer","ttl_ms":20000,"args":{"session":"4f1c","viewer":"coach:alice","sdp":"v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\n"}}`))
	f.Add([]byte(`{"v":1,"id":"c7","type":"live.candidates","ttl_ms":20000,"args":{"session":"4f1c","candidates":[{"candidate":"candidate:1 1 udp 2122260223 192.0.2.1 61764 typ host","mid":"0","mline_index":0}],"end":true}}`))
	f.Add([]byte(`{"v":1,"id":"c6","type":"live.stop","ttl_ms":20000,"args":{"session":"4f1c","by":"coach:alice"}}`))
	f.Add([]byte(`{"v":2,"id":"c4"}`))
	f.Add([]byte(`{"id":null}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := DecodeCommand(b)
		if err != nil {
			if DecodeErrorCode(err) == CodeFailed {
				t.Fatalf("decode error without a code: %v", err)
			}
			return
		}
		args, aerr := c.DecodedArgs()
		// What decodes re-encodes to the same command.
		again, err := DecodeCommand(mustMarshal(t, c))
		if err != nil {
			t.Fatalf("re-encoded %+v does not decode: %v", c, err)
		}
		if again.ID != c.ID || again.Type != c.Type || !again.ExpiresAt.Equal(c.ExpiresAt) || again.TTLMillis != c.TTLMillis {
			t.Fatalf("round trip %+v -> %+v", c, again)
		}
		if aerr != nil {
			if code := DecodeErrorCode(aerr); code != CodeBadArgs && code != CodeUnknownType {
				t.Fatalf("args error %v has code %q", aerr, code)
			}
			return
		}
		args2, err := again.DecodedArgs()
		if err != nil || !reflect.DeepEqual(args, args2) {
			t.Fatalf("args %#v -> %#v, %v", args, args2, err)
		}
	})
}

func FuzzDecodeReply(f *testing.F) {
	f.Add([]byte(`{"v":1,"id":"c1","ok":true,"result":{"lesson":"000001-abcdefghij","veto_waited_ms":10000}}`))
	f.Add([]byte(`{"v":1,"id":"c1","ok":false,"code":"declined","error":"declined by the teacher"}`))
	f.Add([]byte(`{"v":1,"id":"","ok":false,"code":"malformed","error":"id: is missing"}`))
	f.Add([]byte(`{"v":1,"id":"c5","ok":true,"result":{"session":"4f1c","sdp":"v=0\r\n"}}`))
	f.Add([]byte(`{"v":1,"id":"c5","ok":false,"code":"live_off","error":"live view is off on this box"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := DecodeReply(b)
		if err != nil {
			return
		}
		again, err := DecodeReply(mustMarshal(t, r))
		if err != nil || again.ID != r.ID || again.OK != r.OK || again.Code != r.Code || again.Error != r.Error {
			t.Fatalf("round trip %+v -> %+v, %v", r, again, err)
		}
	})
}

func FuzzDecodeState(f *testing.F) {
	f.Add(LastWill())
	f.Add(mustMarshal(f, sampleState()))
	f.Add([]byte(`{"v":1,"online":true,"recorder":{"state":"idle"}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := DecodeState(b)
		if err != nil {
			return
		}
		again, err := DecodeState(mustMarshal(t, s))
		if err != nil {
			t.Fatalf("re-encoded %+v does not decode: %v", s, err)
		}
		if again.Online != s.Online || (s.Recorder != nil && again.Recorder.State != s.Recorder.State) {
			t.Fatalf("round trip %+v -> %+v", s, again)
		}
	})
}

func FuzzDecodeEvent(f *testing.F) {
	for _, e := range sampleEvents() {
		f.Add(mustMarshal(f, e))
	}
	f.Add([]byte(`{"v":1,"id":"e","seq":1,"type":"alarm"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := DecodeEvent(b)
		if err != nil {
			return
		}
		again, err := DecodeEvent(mustMarshal(t, e))
		if err != nil || again.ID != e.ID || again.Seq != e.Seq || again.Type != e.Type {
			t.Fatalf("round trip %+v -> %+v, %v", e, again, err)
		}
	})
}

func mustMarshal(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
