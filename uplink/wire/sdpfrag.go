package wire

import (
	"fmt"
	"strings"
)

// SDPFragType is the media type of a trickle ICE fragment (RFC 8840), the
// body of a WHEP PATCH (RFC 9725).
const SDPFragType = "application/trickle-ice-sdpfrag"

// MaxSDPFrag is the longest fragment the hub reads.
const MaxSDPFrag = 16 << 10

// SDPFrag is a trickle ICE fragment as read by ParseSDPFrag.
type SDPFrag struct {
	Ufrag, Pwd string // a=ice-ufrag and a=ice-pwd; "" when absent
	Candidates []LiveCandidate
	End        bool // a=end-of-candidates
}

// ParseSDPFrag reads a trickle ICE fragment: session-level a=ice-ufrag and
// a=ice-pwd, then m= lines (counted from 0 for each candidate's m-line
// index), each with a=mid, a=ice-ufrag, a=ice-pwd, a=candidate and
// a=end-of-candidates. Other a= lines are ignored; anything else is an
// error naming the line. Lines end in CRLF or LF.
func ParseSDPFrag(s string) (SDPFrag, error) {
	var f SDPFrag
	if len(s) > MaxSDPFrag {
		return f, fmt.Errorf("sdpfrag: %d bytes, more than %d", len(s), MaxSDPFrag)
	}
	mline, mid := -1, ""
	for n, line := range strings.Split(s, "\n") {
		line = strings.TrimSuffix(line, "\r")
		if line == "" {
			continue
		}
		bad := func(format string, a ...any) (SDPFrag, error) {
			return SDPFrag{}, fmt.Errorf("sdpfrag line %d %q: %s", n+1, clip(line), fmt.Sprintf(format, a...))
		}
		for _, r := range line {
			if r < ' ' || r == 0x7f {
				return bad("contains a control character")
			}
		}
		if len(line) < 2 || line[1] != '=' {
			return bad("not an SDP line (want x=value)")
		}
		switch line[0] {
		case 'm':
			if len(strings.Fields(line[2:])) < 3 {
				return bad("a media line needs media, port and protocol")
			}
			mline++
			mid = ""
			continue
		case 'a':
		default:
			return bad("only a= and m= lines belong in a fragment")
		}
		name, value, _ := strings.Cut(line[2:], ":")
		switch name {
		case "ice-ufrag", "ice-pwd":
			if value == "" || strings.ContainsAny(value, " \t") {
				return bad("empty or with spaces")
			}
			p := &f.Ufrag
			if name == "ice-pwd" {
				p = &f.Pwd
			}
			if *p != "" && *p != value {
				return bad("a second, different %s (one ICE session per fragment)", name)
			}
			*p = value
		case "mid":
			if mline < 0 {
				return bad("a=mid before any m= line")
			}
			if value == "" {
				return bad("empty mid")
			}
			mid = value
		case "candidate":
			if mline < 0 {
				return bad("a=candidate before any m= line")
			}
			c := LiveCandidate{Candidate: line[2:], Mid: mid, MLineIndex: mline}
			if err := c.validate("candidate"); err != nil {
				return bad("%v", err)
			}
			f.Candidates = append(f.Candidates, c)
		case "end-of-candidates":
			if value != "" {
				return bad("end-of-candidates takes no value")
			}
			f.End = true
		}
	}
	return f, nil
}

// clip shortens a line for an error message.
func clip(s string) string {
	if len(s) > 80 {
		return s[:80] + "…"
	}
	return s
}
