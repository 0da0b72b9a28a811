package wire

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"
)

const testSum = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"

func TestUploadAndGrantRoundTrip(t *testing.T) {
	ref := FileRef{Lesson: "000001-abcdefghij", File: "seg_000001.m4s", Segment: 1, Bytes: 1234, SHA256: testSum}
	for _, m := range []UploadMsg{{V: 1, Type: UploadRequest, FileRef: ref}, {V: 1, Type: UploadComplete, FileRef: ref}} {
		b, _ := json.Marshal(m)
		got, err := DecodeUpload(b)
		if err != nil || !reflect.DeepEqual(got, m) {
			t.Fatalf("%s -> %+v, %v", b, got, err)
		}
	}
	exp := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	for _, m := range []GrantMsg{
		{V: 1, Type: GrantGranted, FileRef: ref, URL: "http://hub:8080/tus/", Token: "abc.def", ExpiresAt: exp},
		{V: 1, Type: GrantVerified, FileRef: ref},
		{V: 1, Type: GrantRefused, FileRef: ref, Error: "not stored"},
	} {
		b, _ := json.Marshal(m)
		got, err := DecodeGrant(b)
		if err != nil || !reflect.DeepEqual(got, m) {
			t.Fatalf("%s -> %+v, %v", b, got, err)
		}
	}
	if UploadTopic("room-101") != "classcap/v1/room-101/upload" || GrantTopic("room-101") != "classcap/v1/room-101/grant" {
		t.Fatal("topics")
	}
}

func TestUploadAndGrantRejects(t *testing.T) {
	cases := []struct{ payload, field string }{
		{`{"v":1,"type":"request","lesson":"l","file":"f","bytes":1,"sha256":"zz"}`, "sha256"},
		{`{"v":1,"type":"send","lesson":"l","file":"f","bytes":1,"sha256":"` + testSum + `"}`, "type"},
		{`{"v":1,"type":"request","file":"f","bytes":1,"sha256":"` + testSum + `"}`, "lesson"},
		{`{"v":1,"type":"request","lesson":"l","file":"f","bytes":-1,"sha256":"` + testSum + `"}`, "bytes"},
		{`{"v":2,"type":"request","lesson":"l","file":"f","bytes":1,"sha256":"` + testSum + `"}`, "v"},
	}
	for _, c := range cases {
		if _, err := DecodeUpload([]byte(c.payload)); err == nil || !strings.Contains(err.Error(), c.field) {
			t.Errorf("DecodeUpload(%s) = %v; want an error naming %s", c.payload, err, c.field)
		}
	}
	if _, err := DecodeGrant([]byte(`{"v":1,"type":"grant","lesson":"l","file":"f","bytes":1,"sha256":"` + testSum + `"}`)); err == nil ||
		!strings.Contains(err.Error(), "url") {
		t.Errorf("grant without url: %v", err)
	}
}

func FuzzDecodeUpload(f *testing.F) {
	f.Add([]byte(`{"v":1,"type":"request","lesson":"000001-abcdefghij","file":"seg_000001.m4s","segment":1,"bytes":5,"sha256":"` + testSum + `"}`))
	f.Add([]byte(`{"v":1,"type":"complete","lesson":"l","file":"init.mp4","bytes":0,"sha256":"` + testSum + `"}`))
	f.Add([]byte(`{"v":1,"type":"request"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := DecodeUpload(b)
		if err != nil {
			return
		}
		again, err := DecodeUpload(mustMarshal(t, m))
		if err != nil || !reflect.DeepEqual(again, m) {
			t.Fatalf("round trip %+v -> %+v, %v", m, again, err)
		}
	})
}

func FuzzDecodeGrant(f *testing.F) {
	f.Add([]byte(`{"v":1,"type":"grant","lesson":"l","file":"seg_000001.m4s","segment":1,"bytes":5,"sha256":"` + testSum + `","url":"http://h/tus/","token":"a.b","expires_at":"2026-03-02T09:00:00Z"}`))
	f.Add([]byte(`{"v":1,"type":"verified","lesson":"l","file":"lesson.json","bytes":5,"sha256":"` + testSum + `"}`))
	f.Add([]byte(`{"v":1,"type":"refused","lesson":"l","file":"f","bytes":5,"sha256":"` + testSum + `","error":"no"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := DecodeGrant(b)
		if err != nil {
			return
		}
		again, err := DecodeGrant(mustMarshal(t, m))
		if err != nil || again.Type != m.Type || again.FileRef != m.FileRef || again.URL != m.URL || again.Token != m.Token ||
			!again.ExpiresAt.Equal(m.ExpiresAt) || again.Error != m.Error {
			t.Fatalf("round trip %+v -> %+v, %v", m, again, err)
		}
	})
}
