package main

// The hub's web page in a real headless Chromium (driven over the DevTools
// protocol by chromedp), against the hub and a real classcapd with
// simulated hardware: sign in, see the box, start and stop a recording,
// play the uploaded lesson.

import (
	"bytes"
	"cmp"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"image"
	"image/draw"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto"
	"github.com/chromedp/chromedp"

	"github.com/classcap/classcap/device/sim"
)

// chromiumPath is Debian's Chromium (scripts/install-deps.sh installs it).
const chromiumPath = "/usr/bin/chromium"

// browser is a headless Chromium tab for one test.
type browser struct {
	ctx     context.Context
	console *syncBuffer
	log     *syncBuffer
}

// newBrowser starts Chromium with a fresh profile; it skips the test when
// Chromium is missing, except in CI where that is a failure.
func newBrowser(t *testing.T) *browser {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is missing: scripts/install-deps.sh installs chromium", chromiumPath)
		}
		t.Skipf("%s is missing (scripts/install-deps.sh installs chromium): web page tests skipped", chromiumPath)
	}
	b := &browser{console: &syncBuffer{}, log: &syncBuffer{}}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromiumPath),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.CombinedOutput(b.log),
		chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun, chromedp.NoDefaultBrowserCheck,
		// This machine has no network: no background connections.
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		// Real host candidates on loopback, not mDNS .local names.
		chromedp.Flag("disable-features", "WebRtcHideLocalIpsWithMdns"),
		chromedp.Flag("autoplay-policy", "no-user-gesture-required"),
		chromedp.WindowSize(1280, 1000),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() {
		cancel()
		cancelAlloc()
		if t.Failed() {
			t.Logf("browser console:\n%s", b.console.String())
		}
	})
	msgs := chromedp.Console(ctx)
	if err := chromedp.Do(ctx, chromedp.Navigate("about:blank")); err != nil {
		t.Fatalf("start chromium: %v\n%s", err, b.log.String())
	}
	go func() {
		for m, err := range msgs {
			if err != nil {
				return
			}
			fmt.Fprintf(b.console, "%s\n", m.String())
		}
	}()
	b.ctx = ctx
	return b
}

// do runs steps within d.
func (b *browser) do(t *testing.T, what string, d time.Duration, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, d)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// click clicks the first enabled button that the CSS selector sel finds,
// within d. The selector is evaluated at each attempt, and the click waits
// until it finds an enabled, visible button. An attempt that fails because
// the page replaced or removed the node between the query and the click
// (before any mouse event was sent) is tried again with a fresh query.
func (b *browser) click(t *testing.T, what, sel string, d time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, d)
	defer cancel()
	for stale := 0; ; stale++ {
		err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(sel+":enabled")))
		if err == nil {
			if stale > 0 {
				t.Logf("%s: clicked after %d attempts on a node the page had replaced", what, stale)
			}
			return
		}
		if !staleNode(err) || ctx.Err() != nil {
			t.Fatalf("%s (%s), after %d attempts on replaced nodes: %v", what, sel, stale, err)
		}
	}
}

// staleNode reports whether err is the browser's answer about a node that
// is no longer in the page (or no longer laid out), as when the page
// replaced it just after a query found it.
func staleNode(err error) bool {
	if errors.Is(err, chromedp.ErrInvalidDimensions) {
		return true
	}
	var e *cdproto.Error
	if !errors.As(err, &e) {
		return false
	}
	for _, m := range []string{
		"Could not find node with given id",
		"No node with given id found",
		"Node is detached from document",
		"Node does not have a layout object",
		"Could not compute content quads",
	} {
		if strings.Contains(e.Message, m) {
			return true
		}
	}
	return false
}

// waitJS waits until the JavaScript expression is truthy, at most d.
func (b *browser) waitJS(t *testing.T, what, expr string, d time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, d+5*time.Second)
	defer cancel()
	_, err := chromedp.Run(ctx, chromedp.Poll[bool](expr,
		chromedp.WithPollingTimeout(d), chromedp.WithPollingInterval(100*time.Millisecond)))
	if err != nil {
		t.Fatalf("waiting until %s (%s): %v", what, expr, err)
	}
}

// eval returns the value of a JavaScript expression.
func eval[T any](t *testing.T, b *browser, expr string) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

// webBoxConfig is what a web test's box varies: the camera (default
// 320x240 at 15 fps) and extra configuration appended to the file.
type webBoxConfig struct {
	Width, Height int
	FPS           float64
	Extra         string
}

// startWebBox registers id at the hub and runs classcapd for it until the
// test ends, with a 15 s veto window: the page shows a remote start the
// teacher may decline, and the test answers with the button well within it.
func startWebBox(t *testing.T, h *testHub, id string, c webBoxConfig) *simBox {
	t.Helper()
	return runSimBox(t, h, id, `
[hardware.sim]
width = `+strconv.Itoa(cmp.Or(c.Width, 320))+`
height = `+strconv.Itoa(cmp.Or(c.Height, 240))+`
fps = `+strconv.FormatFloat(cmp.Or(c.FPS, 15), 'f', -1, 64)+`
mic_channels = 2
[recording]
segment_seconds = 2.0
min_free_mb = 10
veto_seconds = 15
`, c.Extra)
}

// ctlLocal runs classcapctl against the box's socket.
func (b *simBox) ctlLocal(t *testing.T, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, b.ctl, append([]string{"-socket", b.socket}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("classcapctl %v: %v\n%s", args, err, out)
	}
	return string(out)
}

// waitLong polls cond until it holds or d passes.
func waitLong(t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// signIn opens the page and signs in with token.
func (b *browser) signIn(t *testing.T, h *testHub, token string) {
	t.Helper()
	b.do(t, "open the page and sign in", 30*time.Second,
		chromedp.Navigate(h.http+"/"),
		chromedp.WaitVisible(chromedp.CSS("#token")),
		chromedp.SendKeys(chromedp.CSS("#token"), token),
		chromedp.Click(chromedp.CSS(`#signin-form button[type=submit]`)),
		chromedp.WaitVisible(chromedp.CSS("#whoami")),
	)
}

func TestWebPageRecordAndPlay(t *testing.T) {
	h := startHub(t)
	coach := h.verb(t, "token", "create", "-role", "coach", "-name", "alice")
	box := startWebBox(t, h, "room-web", webBoxConfig{})
	b := newBrowser(t)

	// A wrong token is refused with the hub's reason.
	b.do(t, "sign in with a wrong token", 30*time.Second,
		chromedp.Navigate(h.http+"/"),
		chromedp.WaitVisible(chromedp.CSS("#token")),
		chromedp.SendKeys(chromedp.CSS("#token"), "cct_wrong"),
		chromedp.Click(chromedp.CSS(`#signin-form button[type=submit]`)))
	b.waitJS(t, "the page says the token is refused",
		`document.getElementById('signin-error').textContent.includes('unknown token')`, 15*time.Second)

	b.signIn(t, h, coach)
	if who := eval[string](t, b, `document.getElementById('whoami-text').textContent`); who != "Signed in as alice (coach)" {
		t.Fatalf("whoami: %q", who)
	}
	row := `document.querySelector('tr[data-device="room-web"]')`
	b.waitJS(t, "the box is listed online and idle, its camera ok",
		row+`?.dataset.online === 'yes' && `+row+`.dataset.recorder === 'idle' && `+
			row+`.querySelector('[data-field=camera]').textContent === 'ok'`, 60*time.Second)

	// The box shows a remote start to the teacher for its veto window (15 s; the test answers with the button well before it ends).
	remoteStartShown := func() bool {
		_, d := h.call(t, "GET", "/api/v1/devices/room-web", coach, "")
		st, _ := d["state"].(map[string]any)
		rec, _ := st["recorder"].(map[string]any)
		return rec["remote_start"] != nil
	}
	startSel := `tr[data-device="room-web"] button[data-action=start]`
	stopSel := `tr[data-device="room-web"] button[data-action=stop]`
	// The page updates its rows in place: the stop button seen now is the
	// one clicked after many refreshes.
	b.do(t, "keep the stop button", 10*time.Second, chromedp.Evaluate[chromedp.Void](`window.firstStop = document.querySelector('`+stopSel+`')`))
	// The teacher holds the button: the page shows the box's refusal.
	b.click(t, "click start", startSel, 30*time.Second)
	waitLong(t, "the box shows the remote start", 30*time.Second, remoteStartShown)
	box.ctlLocal(t, "sim", "hold", "2.2")
	b.waitJS(t, "the page reports the teacher's refusal",
		`document.getElementById('device-msg').textContent === 'room-web answered: declined by the teacher'`, 30*time.Second)

	// The teacher taps to accept: the page shows the box's answer, the hub
	// sees it record.
	b.click(t, "click start again", startSel, 30*time.Second)
	waitLong(t, "the box shows the remote start", 30*time.Second, remoteStartShown)
	box.ctlLocal(t, "sim", "press")
	b.waitJS(t, "the page reports the recording", `document.getElementById('device-msg').textContent.includes('is recording lesson')`, 60*time.Second)
	msg := eval[string](t, b, `document.getElementById('device-msg').textContent`)
	lessonID := strings.TrimSuffix(strings.TrimPrefix(msg, "room-web is recording lesson "), ".")
	waitLong(t, "the hub sees the box recording two segments", 60*time.Second, func() bool {
		_, d := h.call(t, "GET", "/api/v1/devices/room-web", coach, "")
		st, _ := d["state"].(map[string]any)
		rec, _ := st["recorder"].(map[string]any)
		segs, _ := rec["segments"].(float64)
		return d["recorder"] == "recording" && d["lesson"] == lessonID && segs >= 2
	})
	b.waitJS(t, "the page shows the box recording", row+`.dataset.recorder === 'recording'`, 15*time.Second)
	if !eval[bool](t, b, `window.firstStop.isConnected && window.firstStop === document.querySelector('`+stopSel+`')`) {
		t.Fatal("the page replaced the box's stop button while refreshing its row")
	}

	// Stop: the lesson is uploaded and listed with a Play button.
	b.click(t, "click stop", stopSel, 30*time.Second)
	b.waitJS(t, "the page reports the stop", `document.getElementById('device-msg').textContent.includes('stopped lesson `+lessonID+`')`, 60*time.Second)
	playSel := `tr[data-lesson="` + lessonID + `"] button[data-action=play]`
	b.waitJS(t, "the lesson is uploaded and playable", `!!document.querySelector('`+playSel+`')`, 120*time.Second)

	// Play: the video advances without a media error.
	b.click(t, "click play", playSel, 30*time.Second)
	b.waitJS(t, "the lesson plays", `(() => { const v = document.getElementById('player');
		if (v.error) throw new Error('media error ' + v.error.code + ' ' + v.error.message);
		return v.currentTime > 1.5 && v.videoWidth === 320; })()`, 60*time.Second)
	src := eval[string](t, b, `document.getElementById('player').currentSrc`)
	if !strings.Contains(src, "/lessons/"+lessonID+"/lesson.mp4?t=") {
		t.Fatalf("the player plays %q; want the lesson's media URL", src)
	}
	b.screenshot(t, "record-and-play")
}

// screenshot saves a PNG of the page into $CLASSCAP_SCREENSHOTS, when set
// (to look at the page as a person would).
func (b *browser) screenshot(t *testing.T, name string) {
	t.Helper()
	dir := os.Getenv("CLASSCAP_SCREENSHOTS")
	if dir == "" {
		return
	}
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestCaptureClockInChromium: the JavaScript reader of the sim camera's
// clock strip (testdata/clockstrip.js, used by the live view tests) reads
// what device/sim draws, from a picture drawn by Chromium.
func TestCaptureClockInChromium(t *testing.T) {
	b := newBrowser(t)
	js, err := os.ReadFile("testdata/clockstrip.js")
	if err != nil {
		t.Fatal(err)
	}
	b.do(t, "load the reader", 30*time.Second, chromedp.Evaluate[chromedp.Void](string(js)))
	for _, tt := range []struct {
		w, h int
		ms   int64
	}{{320, 240, 1764755000123}, {640, 360, 1<<32 - 1}, {1280, 720, 12345}} {
		img := image.NewYCbCr(image.Rect(0, 0, tt.w, tt.h), image.YCbCrSubsampleRatio420)
		sim.RenderFrameAt(img, 9, time.UnixMilli(tt.ms))
		rgba := image.NewRGBA(img.Rect)
		draw.Draw(rgba, rgba.Rect, img, image.Point{}, draw.Src)
		var buf bytes.Buffer
		if err := png.Encode(&buf, rgba); err != nil {
			t.Fatal(err)
		}
		url := "data:image/png;base64," + base64.StdEncoding.EncodeToString(buf.Bytes())
		got := eval[any](t, b, `new Promise((resolve, reject) => { const i = new Image();
			i.onload = () => resolve(readCaptureClock(i)); i.onerror = reject; i.src = '`+url+`'; })`)
		if f, ok := got.(float64); !ok || uint32(f) != uint32(tt.ms) || f != float64(uint32(tt.ms)) {
			t.Errorf("%dx%d: read %v, want %d", tt.w, tt.h, got, uint32(tt.ms))
		}
	}
}

// TestClickStaleNode: a click on a node the page has removed since the
// query fails with an error that staleNode recognises (the error a web
// test saw when the page rebuilt its rows), and click gets through to a
// button that the page keeps replacing.
func TestClickStaleNode(t *testing.T) {
	b := newBrowser(t)
	b.do(t, "open the page", 30*time.Second, chromedp.Navigate(`data:text/html,<div id="box"></div><script>
		let n = 0;
		const put = () => {
			const b = document.createElement('button');
			b.id = 'go';
			b.textContent = 'Go ' + n++;
			b.onclick = () => { document.body.dataset.clicked = b.textContent; };
			document.getElementById('box').replaceChildren(b);
		};
		put();
	</script>`))
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	nodes, err := chromedp.Run(ctx, chromedp.Nodes(chromedp.CSS("#go")))
	if err != nil {
		t.Fatal(err)
	}
	b.do(t, "replace the button", 10*time.Second, chromedp.Evaluate[chromedp.Void](`put()`))
	_, err = chromedp.Run(ctx, chromedp.MouseClickNode(nodes[0]))
	if err == nil || !staleNode(err) {
		t.Fatalf("click on a removed node: %v; want a stale node error", err)
	}
	if c := eval[string](t, b, `document.body.dataset.clicked || ''`); c != "" {
		t.Fatalf("the removed node's click reached %q", c)
	}

	// Four times a second: faster than the hub's page, slow enough for a
	// click to get through between two replacements on a busy machine.
	b.do(t, "replace the button again and again", 10*time.Second, chromedp.Evaluate[chromedp.Void](`setInterval(put, 250)`))
	b.click(t, "click the button", "#go", 60*time.Second)
	b.waitJS(t, "a button got the click", `!!document.body.dataset.clicked`, 10*time.Second)
}
