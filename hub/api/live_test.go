package api

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/classcap/classcap/hub/registry"
	"github.com/classcap/classcap/uplink/wire"
)

// liveBoxes answers live commands as boxes would: room-1 answers offers
// and stops session "s-known"; room-off refuses (live_off); room-old does
// not know live view; room-full is busy.
type liveBoxes struct {
	got   []wire.LiveOfferArgs
	cands []wire.LiveCandidatesArgs
}

func (b *liveBoxes) Command(_ context.Context, device, typ string, args any, _ time.Duration) (wire.Reply, error) {
	switch device + " " + typ {
	case "room-1 " + wire.TypeLiveOffer:
		a := args.(wire.LiveOfferArgs)
		b.got = append(b.got, a)
		return wire.OKReply("c1", wire.LiveOfferResult{Session: a.Session, SDP: "v=0\r\nanswer\r\n"})
	case "room-1 " + wire.TypeLiveStop:
		if args.(wire.LiveStopArgs).Session != "s-known" {
			return wire.ErrorReply("c2", wire.CodeUnknownSession, "no such live view"), nil
		}
		return wire.OKReply("c2", wire.LiveStopResult{Session: "s-known", Seconds: 12})
	case "room-1 " + wire.TypeLiveCandidates:
		a := args.(wire.LiveCandidatesArgs)
		if len(b.got) == 0 || a.Session != b.got[0].Session {
			return wire.ErrorReply("c6", wire.CodeUnknownSession, "no such live view"), nil
		}
		b.cands = append(b.cands, a)
		return wire.OKReply("c6", wire.LiveCandidatesResult{Session: a.Session, Added: len(a.Candidates)})
	case "room-off " + wire.TypeLiveOffer:
		return wire.ErrorReply("c3", wire.CodeLiveOff, "live view is off on this box"), nil
	case "room-old " + wire.TypeLiveOffer:
		return wire.ErrorReply("c4", wire.CodeUnknownType, "unknown command type"), nil
	case "room-full " + wire.TypeLiveOffer:
		return wire.ErrorReply("c5", wire.CodeBusy, "too many live viewers"), nil
	}
	return wire.Reply{}, io.EOF
}

func TestWHEPEndpoint(t *testing.T) {
	reg, err := registry.Open(filepath.Join(t.TempDir(), "registry.db"), registry.Options{BcryptCost: bcrypt.MinCost})
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Close()
	for _, id := range []string{"room-1", "room-off", "room-old", "room-full"} {
		if _, err := reg.AddDevice(id); err != nil {
			t.Fatal(err)
		}
	}
	token, err := reg.CreateToken(registry.RoleCoach, "alice")
	if err != nil {
		t.Fatal(err)
	}
	bobToken, _ := reg.CreateToken(registry.RoleCoach, "bob")
	adminToken, _ := reg.CreateToken(registry.RoleAdmin, "it")
	boxes := &liveBoxes{}
	srv := httptest.NewServer(New(reg, boxes, slog.New(slog.DiscardHandler)))
	defer srv.Close()
	doAs := func(token, method, path, ctype, body string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+token)
		if ctype != "" {
			req.Header.Set("Content-Type", ctype)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { resp.Body.Close() })
		return resp
	}
	do := func(method, path, ctype, body string) *http.Response {
		t.Helper()
		return doAs(token, method, path, ctype, body)
	}
	offer := "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\na=ice-ufrag:EsAw\r\na=ice-pwd:P2uYro0UCOQ4zxjKXaWCBui1\r\n"

	resp := do("POST", "/live/room-1/whep", "application/sdp", offer)
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusCreated || resp.Header.Get("Content-Type") != "application/sdp" || string(body) != "v=0\r\nanswer\r\n" {
		t.Fatalf("offer: %d %q %q", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	if len(boxes.got) != 1 || boxes.got[0].SDP != offer || boxes.got[0].Viewer != "coach:alice" || len(boxes.got[0].Session) != 32 {
		t.Fatalf("the box was asked %+v", boxes.got)
	}
	if loc := resp.Header.Get("Location"); loc != "/live/room-1/whep/"+boxes.got[0].Session {
		t.Fatalf("Location %q", loc)
	}
	for _, tt := range []struct {
		name, method, path, ctype, body string
		status                          int
	}{
		{"charset allowed", "POST", "/live/room-1/whep", "application/sdp; charset=utf-8", offer, 201},
		{"not sdp", "POST", "/live/room-1/whep", "application/json", `{}`, 415},
		{"bad sdp", "POST", "/live/room-1/whep", "application/sdp", "hello", 400},
		{"unknown device", "POST", "/live/room-9/whep", "application/sdp", offer, 404},
		{"consent off", "POST", "/live/room-off/whep", "application/sdp", offer, 403},
		{"old box", "POST", "/live/room-old/whep", "application/sdp", offer, 501},
		{"busy", "POST", "/live/room-full/whep", "application/sdp", offer, 503},
		{"delete", "DELETE", "/live/room-1/whep/s-known", "", "", 200},
		{"delete unknown", "DELETE", "/live/room-1/whep/s-other", "", "", 404},
		{"options", "OPTIONS", "/live/room-1/whep", "", "", 204},
		{"options of a view", "OPTIONS", "/live/room-1/whep/s-known", "", "", 204},
		{"other route", "GET", "/live/room-1/whep", "", "", 404},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := do(tt.method, tt.path, tt.ctype, tt.body); got.StatusCode != tt.status {
				b, _ := io.ReadAll(got.Body)
				t.Fatalf("%s %s: %d %s, want %d", tt.method, tt.path, got.StatusCode, b, tt.status)
			}
		})
	}
	// The view log.
	if err := reg.Write(func(tx *registry.Tx) error {
		return tx.UpdateView("room-1", "s-known", func(v *registry.View) { v.Viewer, v.Seconds = "coach:alice", 12 })
	}); err != nil {
		t.Fatal(err)
	}
	resp = do("GET", "/api/v1/devices/room-1/views", "", "")
	body, _ = io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"session": "s-known"`) {
		t.Fatalf("views: %d %s", resp.StatusCode, body)
	}
	// A view is ended by whoever opened it, or by an admin; another coach
	// is refused. The owner is known from the view log too (after a hub
	// restart).
	if got := doAs(bobToken, "DELETE", "/live/room-1/whep/s-known", "", ""); got.StatusCode != http.StatusForbidden {
		t.Fatalf("another coach's DELETE: %d, want 403", got.StatusCode)
	}
	if got := doAs(adminToken, "DELETE", "/live/room-1/whep/s-known", "", ""); got.StatusCode != http.StatusOK {
		t.Fatalf("an admin's DELETE: %d, want 200", got.StatusCode)
	}
	own := boxes.got[0].Session
	if got := doAs(bobToken, "DELETE", "/live/room-1/whep/"+own, "", ""); got.StatusCode != http.StatusForbidden {
		t.Fatalf("another coach's DELETE of alice's new view: %d, want 403", got.StatusCode)
	}
	resp = do("GET", "/api/v1/devices/room-off/views", "", "")
	body, _ = io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"views": []`) {
		t.Fatalf("no views: %d %s", resp.StatusCode, body)
	}

	// Trickle ICE: PATCH relays the fragment's candidates as live.candidates,
	// 32 at most per command.
	const frag = "a=ice-ufrag:EsAw\r\na=ice-pwd:P2uYro0UCOQ4zxjKXaWCBui1\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:0\r\n"
	const cand = "a=candidate:1 1 udp 2122260223 192.0.2.1 61764 typ host\r\n"
	many := frag + strings.Repeat(cand, 40) + "a=end-of-candidates\r\n"
	sdpfrag := "application/trickle-ice-sdpfrag"
	if got := doAs(adminToken, "OPTIONS", "/live/room-1/whep/"+own, "", ""); got.Header.Get("Accept-Patch") != sdpfrag ||
		!strings.Contains(got.Header.Get("Allow"), "PATCH") {
		t.Fatalf("OPTIONS of a view: %v", got.Header)
	}
	for _, tt := range []struct {
		name, token, path, ctype, body string
		status                         int
		code                           string
	}{
		{"one candidate", token, own, sdpfrag, frag + cand, 204, ""},
		{"forty and the end", token, own, sdpfrag + "; charset=utf-8", many, 204, ""},
		{"an admin's", adminToken, own, sdpfrag, frag + cand, 204, ""},
		{"empty", token, own, sdpfrag, "", 204, ""},
		{"not a fragment", token, own, "application/sdp", frag + cand, 415, "bad_content_type"},
		{"too large", token, own, sdpfrag, frag + strings.Repeat(cand, 400), 413, "bad_sdpfrag"},
		{"bad line", token, own, sdpfrag, frag + "x=y\r\n", 400, "bad_sdpfrag"},
		{"bad candidate", token, own, sdpfrag, frag + "a=candidate:\r\n", 400, "bad_sdpfrag"},
		{"ICE restart", token, own, sdpfrag, strings.Replace(frag, "EsAw", "NeWu", 1) + cand, 422, "ice_restart"},
		{"another coach's view", bobToken, own, sdpfrag, frag + cand, 403, "not_your_view"},
		{"unknown session", token, "s-other", sdpfrag, frag + cand, 404, "unknown_session"},
		{"session too long", token, strings.Repeat("s", 65), sdpfrag, frag + cand, 404, "unknown_session"},
	} {
		t.Run("patch "+tt.name, func(t *testing.T) {
			got := doAs(tt.token, "PATCH", "/live/room-1/whep/"+tt.path, tt.ctype, tt.body)
			b, _ := io.ReadAll(got.Body)
			if got.StatusCode != tt.status || !strings.Contains(string(b), tt.code) {
				t.Fatalf("%d %s, want %d %s", got.StatusCode, b, tt.status, tt.code)
			}
		})
	}
	var n, ends int
	for _, c := range boxes.cands {
		n += len(c.Candidates)
		if c.End {
			ends++
		}
		if len(c.Candidates) > wire.MaxLiveCandidates || c.Session != own {
			t.Errorf("live.candidates %+v", c)
		}
	}
	if len(boxes.cands) != 4 || n != 42 || ends != 1 || !boxes.cands[2].End || boxes.cands[1].End {
		t.Fatalf("the box got %d live.candidates commands, %d candidates, %d ends: %+v", len(boxes.cands), n, ends, boxes.cands)
	}
}
