package main

// The page's live view in headless Chromium: its WHEP client against the
// hub's WHEP endpoint and a real classcapd; and the glass-to-glass latency
// read from the sim camera's clock strip in the decoded pictures.

import (
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// liveExtra is the box configuration for live view on this machine:
// consent always, loopback ICE candidates.
const liveExtra = `
[live]
allow = "always"
loopback = true
interfaces = ["lo"]
`

// liveStats is what getStats says of the page's live view.
type liveStats struct {
	State         string  `json:"state"`
	FramesDecoded float64 `json:"framesDecoded"`
	AudioPackets  float64 `json:"audioPackets"`
}

const liveStatsJS = `(async () => {
	const v = document.getElementById('live-video');
	const out = { state: v.dataset.state || '', framesDecoded: 0, audioPackets: 0 };
	if (typeof live === 'undefined' || !live || !live.session.pc) return out;
	const stats = await live.session.pc.getStats();
	stats.forEach((s) => {
		if (s.type !== 'inbound-rtp') return;
		if (s.kind === 'video') out.framesDecoded = s.framesDecoded || 0;
		if (s.kind === 'audio') out.audioPackets = s.packetsReceived || 0;
	});
	return out;
})()`

// watchLive clicks the box's "Watch live" and waits until pictures and
// sound arrive; it returns the stats then.
func watchLive(t *testing.T, b *browser, id string) liveStats {
	t.Helper()
	b.click(t, "click watch live", `tr[data-device="`+id+`"] button[data-action=live]`, 30*time.Second)
	return waitLiveMedia(t, b)
}

// waitLiveMedia waits until the page's live view is connected and
// pictures and sound arrive; it returns the stats then.
func waitLiveMedia(t *testing.T, b *browser) liveStats {
	t.Helper()
	b.waitJS(t, "the live view is connected", `document.getElementById('live-video').dataset.state === 'connected'`, 60*time.Second)
	var s liveStats
	waitLong(t, "pictures decoded and sound received", 60*time.Second, func() bool {
		s = eval[liveStats](t, b, liveStatsJS)
		return s.FramesDecoded >= 15 && s.AudioPackets >= 50
	})
	return s
}

// pageTrickle is what the page's WHEP session says of its trickle ICE
// (whep.js: WHEPSession.trickle) and of its session.
type pageTrickle struct {
	State           string   `json:"state"`
	Sent            []string `json:"sent"`
	Error           string   `json:"error"`
	OfferCandidates int      `json:"offerCandidates"`
	Session         string   `json:"session"`
	Gathering       string   `json:"gathering"`
}

const pageTrickleJS = `(() => {
	if (typeof live === 'undefined' || !live) return { state: '', sent: [] };
	const s = live.session;
	return Object.assign({}, s.trickle, { session: s.id(), gathering: s.pc ? s.pc.iceGatheringState : '' });
})()`

// boxRemoteCandidates is how many candidates the box took for a view
// (classcapctl status -json: live.viewers[].remote_candidates); -1 when the
// box lists no such view.
func boxRemoteCandidates(t *testing.T, box *simBox, session string) int {
	t.Helper()
	var st struct {
		Live *struct {
			Viewers []struct {
				Session          string `json:"session"`
				RemoteCandidates int    `json:"remote_candidates"`
			} `json:"viewers"`
		} `json:"live"`
	}
	out := box.ctlLocal(t, "status", "-json")
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatalf("classcapctl status -json: %v\n%s", err, out)
	}
	if st.Live != nil {
		for _, v := range st.Live.Viewers {
			if v.Session == session {
				return v.RemoteCandidates
			}
		}
	}
	return -1
}

// waitPageTrickled waits until the page has trickled its candidates and
// the end of them (every PATCH answered 2xx), and the box has taken each;
// it returns what the page says then.
func waitPageTrickled(t *testing.T, b *browser, box *simBox) pageTrickle {
	t.Helper()
	var p pageTrickle
	waitLong(t, "the page trickles its candidates and their end", 60*time.Second, func() bool {
		p = eval[pageTrickle](t, b, pageTrickleJS)
		if p.State == "stopped" || p.State == "offered" {
			t.Fatalf("the page does not trickle: %+v", p)
		}
		return p.State == "done"
	})
	if len(p.Sent) == 0 {
		t.Fatalf("the page trickled no candidate (its offer had %d)", p.OfferCandidates)
	}
	waitLong(t, fmt.Sprintf("the box takes the %d candidates the page trickled", len(p.Sent)), 60*time.Second, func() bool {
		n := boxRemoteCandidates(t, box, p.Session)
		if n > len(p.Sent) {
			t.Fatalf("the box took %d candidates, the page sent %d", n, len(p.Sent))
		}
		return n == len(p.Sent)
	})
	return p
}

func TestWebPageLiveView(t *testing.T) {
	h := startHub(t)
	coach := h.verb(t, "token", "create", "-role", "coach", "-name", "alice")
	box := startWebBox(t, h, "room-live", webBoxConfig{Extra: liveExtra})
	b := newBrowser(t)
	b.signIn(t, h, coach)
	b.waitJS(t, "the box is listed online",
		`document.querySelector('tr[data-device="room-live"]')?.dataset.online === 'yes'`, 60*time.Second)

	first := watchLive(t, b, "room-live")
	// The page posted its offer at once and trickled the candidates
	// gathered afterwards; the box took each.
	p := waitPageTrickled(t, b, box)
	t.Logf("the page's offer had %d candidates, it trickled %d: %q", p.OfferCandidates, len(p.Sent), p.Sent)
	// Both keep coming.
	waitLong(t, "more pictures and sound", 60*time.Second, func() bool {
		s := eval[liveStats](t, b, liveStatsJS)
		return s.FramesDecoded > first.FramesDecoded+15 && s.AudioPackets > first.AudioPackets+50
	})
	if s := eval[string](t, b, `document.getElementById('live-msg').textContent`); s != "Watching room-live live. The box shows the teacher that you watch." {
		t.Errorf("live message %q", s)
	}
	if w := eval[float64](t, b, `document.getElementById('live-video').videoWidth`); w != 320 {
		t.Errorf("live video is %v pixels wide, want 320", w)
	}
	b.screenshot(t, "live")

	// The viewer ends it: the page sends DELETE, the hub logs who ended it.
	b.click(t, "click end live view", `#live-close`, 30*time.Second)
	waitLong(t, "the hub logs the view as ended by the viewer", 60*time.Second, func() bool {
		_, m := h.call(t, "GET", "/api/v1/devices/room-live/views", coach, "")
		vs, _ := m["views"].([]any)
		if len(vs) != 1 {
			return false
		}
		v, _ := vs[0].(map[string]any)
		return v["live"] == false && v["reason"] == "stopped by coach:alice"
	})
	// Watch again, from a page whose WHEP server refuses PATCH (as one
	// without trickle ICE may): the page stops trickling, says so on the
	// console, and the view connects with what the offer had (the box
	// learns the page's address from its connectivity checks).
	b.do(t, "refuse PATCH", 10*time.Second, chromedp.Evaluate[chromedp.Void](`(() => {
		const real = window.fetch;
		window.fetch = (url, init) => (init && init.method === 'PATCH')
			? Promise.resolve(new Response('trickle ICE is not supported here', { status: 405 }))
			: real(url, init);
	})()`))
	watchLive(t, b, "room-live")
	p = eval[pageTrickle](t, b, pageTrickleJS)
	if p.State != "stopped" || !strings.Contains(p.Error, "HTTP 405") || len(p.Sent) != 0 {
		t.Errorf("after a 405 to PATCH the page's trickle is %+v, want stopped", p)
	}
	if n := boxRemoteCandidates(t, box, p.Session); n != 0 {
		t.Errorf("the box took %d trickled candidates, want none", n)
	}
	waitLong(t, "the page logs that it stopped trickling", 30*time.Second, func() bool {
		return strings.Contains(b.console.String(), "no more ICE candidates trickled")
	})

	// The teacher holds the button: the box ends the view, the page says so.
	box.ctlLocal(t, "sim", "hold", "2.2")
	b.waitJS(t, "the page reports the view ended", `document.getElementById('live-video').dataset.state === 'ended'`, 60*time.Second)
	if s := eval[string](t, b, `document.getElementById('live-msg').textContent`); s != "The live view of room-live ended (the teacher held the button)." {
		t.Errorf("after the hold the page says %q", s)
	}
	b.waitJS(t, "the page shows the teacher's refusal", `document.querySelector('tr[data-device="room-live"] [data-field=recorder]').textContent.includes('live view refused by the teacher')`, 30*time.Second)
}

// TestLiveGlassToGlass measures, when CLASSCAP_BENCH_GLASS is set (make
// bench, scripts/bench-glass.sh), the glass-to-glass latency of the live
// view in Chromium: for each decoded picture (requestVideoFrameCallback),
// the page's clock minus the capture clock the sim camera burned into it
// (same machine, same clock). It prints the median over
// CLASSCAP_BENCH_GLASS frames as a bench line.
func TestLiveGlassToGlass(t *testing.T) {
	frames, _ := strconv.Atoi(os.Getenv("CLASSCAP_BENCH_GLASS"))
	if frames <= 0 {
		t.Skip("a benchmark: set CLASSCAP_BENCH_GLASS=<frames> (scripts/bench-glass.sh)")
	}
	js, err := os.ReadFile("testdata/clockstrip.js")
	if err != nil {
		t.Fatal(err)
	}
	size := os.Getenv("CLASSCAP_BENCH_GLASS_SIZE")
	if size == "" {
		size = "1280x720"
	}
	var w, hgt int
	if _, err := fmt.Sscanf(size, "%dx%d", &w, &hgt); err != nil {
		t.Fatalf("CLASSCAP_BENCH_GLASS_SIZE=%q: want WxH", size)
	}
	h := startHub(t)
	coach := h.verb(t, "token", "create", "-role", "coach", "-name", "alice")
	startWebBox(t, h, "room-glass", webBoxConfig{Width: w, Height: hgt, FPS: 30, Extra: liveExtra})
	b := newBrowser(t)
	b.signIn(t, h, coach)
	b.waitJS(t, "the box is listed online",
		`document.querySelector('tr[data-device="room-glass"]')?.dataset.online === 'yes'`, 60*time.Second)
	watchLive(t, b, "room-glass")
	b.do(t, "load the clock reader", 10*time.Second, chromedp.Evaluate[chromedp.Void](string(js)))
	// Collect (now - capture) for each presented frame; unreadable frames
	// are counted, not used.
	b.do(t, "start measuring", 10*time.Second, chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`(() => {
		const v = document.getElementById('live-video');
		window.glass = { lat: [], bad: 0, want: %d };
		const step = () => {
			const clock = readCaptureClock(v);
			const now = Date.now();
			if (clock === null) glass.bad++;
			else glass.lat.push(((now %% 4294967296) - clock + 4294967296) %% 4294967296);
			if (glass.lat.length < glass.want) v.requestVideoFrameCallback(step);
		};
		v.requestVideoFrameCallback(step);
	})()`, frames)))
	b.waitJS(t, "enough frames measured", `glass.lat.length >= glass.want`, time.Duration(frames)*time.Second)
	type result struct {
		Lat []float64 `json:"lat"`
		Bad int       `json:"bad"`
	}
	r := eval[result](t, b, `glass`)
	lat := append([]float64(nil), r.Lat...)
	sort.Float64s(lat)
	median := lat[len(lat)/2]
	if len(lat)%2 == 0 {
		median = (lat[len(lat)/2-1] + lat[len(lat)/2]) / 2
	}
	t.Logf("%s: %d frames, %d unreadable; min %.0f, median %.1f, p90 %.0f, max %.0f ms",
		size, len(lat), r.Bad, lat[0], median, lat[len(lat)*9/10], lat[len(lat)-1])
	fmt.Printf("bench live_glass_to_glass_ms ours=%.1f unit=ms\n", median)
}
