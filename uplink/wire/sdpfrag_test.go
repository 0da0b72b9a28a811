package wire

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

const fragSample = "a=ice-ufrag:EsAw\r\na=ice-pwd:P2uYro0UCOQ4zxjKXaWCBui1\r\n" +
	"m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:0\r\n" +
	"a=candidate:1387637174 1 udp 2122260223 192.0.2.1 61764 typ host generation 0 ufrag EsAw network-id 1\r\n" +
	"a=candidate:3471623853 1 udp 2122194687 198.51.100.2 61765 typ host\r\n" +
	"m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:1\r\n" +
	"a=candidate:2 1 udp 1686052607 203.0.113.9 61766 typ srflx raddr 192.0.2.1 rport 61764\r\n" +
	"a=end-of-candidates\r\n"

func TestParseSDPFrag(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     SDPFrag
		err      string // part of the error; "" for none
	}{
		{name: "candidates in two sections", in: fragSample, want: SDPFrag{Ufrag: "EsAw", Pwd: "P2uYro0UCOQ4zxjKXaWCBui1", End: true,
			Candidates: []LiveCandidate{
				{Candidate: "candidate:1387637174 1 udp 2122260223 192.0.2.1 61764 typ host generation 0 ufrag EsAw network-id 1", Mid: "0"},
				{Candidate: "candidate:3471623853 1 udp 2122194687 198.51.100.2 61765 typ host", Mid: "0"},
				{Candidate: "candidate:2 1 udp 1686052607 203.0.113.9 61766 typ srflx raddr 192.0.2.1 rport 61764", Mid: "1", MLineIndex: 1},
			}}},
		{name: "LF line ends, credentials in the section", in: "m=video 9 UDP/TLS/RTP/SAVPF 96\na=mid:v\na=ice-ufrag:u\na=ice-pwd:p\na=candidate:1 1 udp 1 10.0.0.1 5000 typ host\n",
			want: SDPFrag{Ufrag: "u", Pwd: "p", Candidates: []LiveCandidate{{Candidate: "candidate:1 1 udp 1 10.0.0.1 5000 typ host", Mid: "v"}}}},
		{name: "end only", in: "a=ice-ufrag:u\r\na=ice-pwd:p\r\nm=audio 9 RTP/AVP 0\r\na=mid:0\r\na=end-of-candidates\r\n",
			want: SDPFrag{Ufrag: "u", Pwd: "p", End: true}},
		{name: "other attributes ignored", in: "a=group:BUNDLE 0\r\nm=audio 9 RTP/AVP 0\r\na=mid:0\r\na=rtcp-mux\r\n", want: SDPFrag{}},
		{name: "empty", in: "", want: SDPFrag{}},
		{name: "candidate before m=", in: "a=candidate:1 1 udp 1 10.0.0.1 5000 typ host\r\n", err: "line 1"},
		{name: "mid before m=", in: "a=mid:0\r\n", err: "a=mid before any m= line"},
		{name: "not a line", in: "a=ice-ufrag:u\r\nhello\r\n", err: `line 2 "hello"`},
		{name: "session line", in: "v=0\r\n", err: "only a= and m= lines"},
		{name: "short m=", in: "m=audio\r\n", err: "media, port and protocol"},
		{name: "two ufrags", in: "a=ice-ufrag:u\r\nm=audio 9 RTP/AVP 0\r\na=ice-ufrag:w\r\n", err: "second, different ice-ufrag"},
		{name: "empty ufrag", in: "a=ice-ufrag:\r\n", err: "empty"},
		{name: "empty candidate", in: "m=audio 9 RTP/AVP 0\r\na=candidate:\r\n", err: "candidate"},
		{name: "control character", in: "a=ice-ufrag:u\x01\r\n", err: "control character"},
		{name: "end with value", in: "a=end-of-candidates:now\r\n", err: "no value"},
		{name: "too long", in: strings.Repeat("a=x\r\n", MaxSDPFrag/5+1), err: "more than"},
		{name: "too many m= lines", in: strings.Repeat("m=audio 9 RTP/AVP 0\r\n", 65) + "a=candidate:1 1 udp 1 10.0.0.1 5000 typ host\r\n", err: "mline_index"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseSDPFrag(tc.in)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err %v, want one with %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func FuzzParseSDPFrag(f *testing.F) {
	f.Add(fragSample)
	f.Add("a=ice-ufrag:u\na=ice-pwd:p\nm=video 9 UDP/TLS/RTP/SAVPF 96\na=mid:0\na=end-of-candidates\n")
	f.Add("a=candidate:1\r\n")
	f.Fuzz(func(t *testing.T, s string) {
		frag, err := ParseSDPFrag(s)
		if err != nil {
			return
		}
		// What the parser accepts makes a valid live.candidates command.
		for len(frag.Candidates) > 0 || frag.End {
			n := min(len(frag.Candidates), MaxLiveCandidates)
			a := LiveCandidatesArgs{Session: "s1", Candidates: frag.Candidates[:n], End: frag.End && n == len(frag.Candidates)}
			if _, err := NewCommand("c1", TypeLiveCandidates, a, time.Time{}, time.Second); err != nil {
				t.Fatalf("fragment %q parsed to %+v, which is no valid command: %v", s, a, err)
			}
			frag.Candidates = frag.Candidates[n:]
			if a.End {
				break
			}
		}
	})
}

func TestLiveCandidatesCommand(t *testing.T) {
	a := LiveCandidatesArgs{Session: "s1", End: true, Candidates: []LiveCandidate{
		{Candidate: "candidate:1 1 udp 2122260223 192.0.2.1 61764 typ host", Mid: "0", MLineIndex: 0},
		{Candidate: "candidate:2 1 udp 1686052607 203.0.113.9 61766 typ srflx raddr 192.0.2.1 rport 61764", Mid: "1", MLineIndex: 1},
	}}
	c, err := NewCommand("c1", TypeLiveCandidates, a, time.Time{}, 20*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	d, err := DecodeCommand(b)
	if err != nil {
		t.Fatal(err)
	}
	got, err := d.DecodedArgs()
	if err != nil || !reflect.DeepEqual(got, a) {
		t.Fatalf("round trip: %#v, %v, want %#v", got, err, a)
	}
	many := make([]string, MaxLiveCandidates+1)
	for i := range many {
		many[i] = `{"candidate":"candidate:1 1 udp 1 10.0.0.1 5000 typ host"}`
	}
	for _, tc := range []struct {
		args  string
		field string
	}{
		{`{"candidates":[{"candidate":"candidate:1 1 udp 1 10.0.0.1 5000 typ host"}]}`, "args.session"},
		{`{"session":"s 1","end":true}`, "args.session"},
		{`{"session":"s1"}`, "args.candidates"},
		{`{"session":"s1","candidates":[]}`, "args.candidates"},
		{`{"session":"s1","candidates":[` + strings.Join(many, ",") + `]}`, "more than 32"},
		{`{"session":"s1","candidates":[{"candidate":"1 1 udp 1 10.0.0.1 5000 typ host"}]}`, "args.candidates[0].candidate"},
		{`{"session":"s1","candidates":[{"candidate":"candidate:"}]}`, "args.candidates[0].candidate"},
		{`{"session":"s1","candidates":[{"candidate":"candidate:` + strings.Repeat("x", MaxCandidateLen) + `"}]}`, "longer than 512"},
		{`{"session":"s1","candidates":[{"candidate":"candidate:1\u0000"}]}`, "control character"},
		{`{"session":"s1","candidates":[{"candidate":"candidate:1","mid":"a b"}]}`, "args.candidates[0].candidate.mid"},
		{`{"session":"s1","candidates":[{"candidate":"candidate:1","mline_index":-1}]}`, "mline_index"},
		{`{"session":"s1","candidates":[{"candidate":"candidate:1","mline_index":64}]}`, "mline_index"},
		{`{"session":"s1","candidates":[{"candidate":"candidate:1","sdpMid":"0"}]}`, "args"},
		{`{"session":"s1","end":"yes"}`, "args.end"},
	} {
		c := Command{V: 1, ID: "c2", Type: TypeLiveCandidates, TTLMillis: 1000, Args: json.RawMessage(tc.args)}
		if _, err := c.DecodedArgs(); !errors.Is(err, ErrBadArgs) || !strings.Contains(err.Error(), tc.field) {
			t.Errorf("%s: %v, want bad args naming %s", clip(tc.args), err, tc.field)
		}
	}
}
