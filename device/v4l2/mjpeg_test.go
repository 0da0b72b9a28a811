package v4l2

import (
	"bytes"
	"context"
	"errors"
	"image"
	"image/jpeg"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/classcap/classcap/capture/media"
)

// The JPEGs in testdata were made by ffmpeg from its testsrc2 pattern,
// 160x120:
//
//	mjpeg422.jpg        -pix_fmt yuvj422p -huffman default (as UVC cameras send)
//	mjpeg420.jpg        -pix_fmt yuvj420p (optimised Huffman tables)
//	mjpeg422-nodht.jpg  mjpeg422.jpg with its DHT segment cut out, as many
//	                    UVC cameras send every frame

func readTestdata(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// ffmpegI420 decodes a JPEG with ffmpeg into I420 planes.
func ffmpegI420(t *testing.T, path string) []byte {
	t.Helper()
	out, err := exec.Command("ffmpeg", "-v", "error", "-i", path, "-f", "rawvideo", "-pix_fmt", "yuv420p", "-").Output()
	if err != nil {
		t.Fatalf("ffmpeg decode %s: %v", path, err)
	}
	return out
}

// meanAbsDiff compares a w x h plane of img with ref.
func meanAbsDiff(plane []byte, stride int, ref []byte, w, h int) float64 {
	var sum int
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			d := int(plane[y*stride+x]) - int(ref[y*w+x])
			if d < 0 {
				d = -d
			}
			sum += d
		}
	}
	return float64(sum) / float64(w*h)
}

func TestDecodeMJPEGMatchesFFmpeg(t *testing.T) {
	const w, h = 160, 120
	ref := ffmpegI420(t, filepath.Join("testdata", "mjpeg422.jpg"))
	for _, name := range []string{"mjpeg422.jpg", "mjpeg420.jpg", "mjpeg422-nodht.jpg"} {
		t.Run(name, func(t *testing.T) {
			img, err := decodeMJPEG(nil, readTestdata(t, name))
			if err != nil {
				t.Fatal(err)
			}
			if img.Rect != image.Rect(0, 0, w, h) || img.SubsampleRatio != image.YCbCrSubsampleRatio420 {
				t.Fatalf("got %v %v", img.Rect, img.SubsampleRatio)
			}
			refs := []struct {
				ref  []byte
				what string
			}{{ffmpegI420(t, filepath.Join("testdata", name)), "itself"}}
			if name == "mjpeg422-nodht.jpg" {
				refs = append(refs, struct {
					ref  []byte
					what string
				}{ref, "mjpeg422.jpg"})
			}
			for _, r := range refs {
				if len(r.ref) != w*h*3/2 {
					t.Fatalf("ffmpeg gave %d bytes", len(r.ref))
				}
				// IDCTs and chroma filters differ a little between decoders;
				// both scale JPEG's full range to video's limited range.
				y := meanAbsDiff(img.Y, img.YStride, r.ref, w, h)
				cb := meanAbsDiff(img.Cb, img.CStride, r.ref[w*h:], w/2, h/2)
				cr := meanAbsDiff(img.Cr, img.CStride, r.ref[w*h+w*h/4:], w/2, h/2)
				if y > 1.5 || cb > 2.5 || cr > 2.5 {
					t.Errorf("vs ffmpeg's decode of %s: mean differences Y %.2f Cb %.2f Cr %.2f", r.what, y, cb, cr)
				}
			}
		})
	}
}

func TestDecodeMJPEGWithoutDHT(t *testing.T) {
	with, err := decodeMJPEG(nil, readTestdata(t, "mjpeg422.jpg"))
	if err != nil {
		t.Fatal(err)
	}
	without, err := decodeMJPEG(nil, readTestdata(t, "mjpeg422-nodht.jpg"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(with.Y, without.Y) || !bytes.Equal(with.Cb, without.Cb) || !bytes.Equal(with.Cr, without.Cr) {
		t.Fatal("a frame without DHT decodes differently from the same frame with the standard tables")
	}
	// Go's encoder writes the standard tables too: without them the frame
	// must come out the same.
	src := image.NewYCbCr(image.Rect(0, 0, 64, 32), image.YCbCrSubsampleRatio420)
	for i := range src.Y {
		src.Y[i] = uint8(i * 7)
	}
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, src, &jpeg.Options{Quality: 90}); err != nil {
		t.Fatal(err)
	}
	a, err := decodeMJPEG(nil, buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	b, err := decodeMJPEG(nil, stripDHT(t, buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.Y, b.Y) || !bytes.Equal(a.Cb, b.Cb) {
		t.Fatal("Go-encoded frame without DHT decodes differently")
	}
	// Without our tables the standard library refuses such a frame: the
	// insertion is what makes it work.
	if _, err := jpeg.Decode(bytes.NewReader(readTestdata(t, "mjpeg422-nodht.jpg"))); err == nil {
		t.Fatal("image/jpeg decoded a frame without Huffman tables by itself; the test proves nothing")
	}
}

func stripDHT(t *testing.T, d []byte) []byte {
	t.Helper()
	out := append([]byte(nil), d[:2]...)
	i := 2
	for i+4 <= len(d) {
		m := d[i+1]
		if m == 0xda {
			return append(out, d[i:]...)
		}
		n := int(d[i+2])<<8 | int(d[i+3])
		if m != 0xc4 {
			out = append(out, d[i:i+2+n]...)
		}
		i += 2 + n
	}
	t.Fatal("no SOS")
	return nil
}

func TestDecodeMJPEGGreyAndReuse(t *testing.T) {
	g := image.NewGray(image.Rect(0, 0, 33, 17)) // odd size: cropped to 32x16
	for i := range g.Pix {
		g.Pix[i] = 200
	}
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, g, nil); err != nil {
		t.Fatal(err)
	}
	img, err := decodeMJPEG(nil, buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if img.Rect.Dx() != 32 || img.Rect.Dy() != 16 {
		t.Fatalf("size %v", img.Rect)
	}
	// 200 in full range is 16+200*219/255 = 188 in limited range.
	if c := img.YCbCrAt(5, 5); absDiff(c.Y, 188) > 2 || c.Cb != 128 || c.Cr != 128 {
		t.Errorf("grey pixel %v", c)
	}
	again, err := decodeMJPEG(img, buf.Bytes())
	if err != nil || again != img {
		t.Errorf("picture not reused (err %v)", err)
	}
}

func absDiff(a, b uint8) uint8 {
	if a > b {
		return a - b
	}
	return b - a
}

func TestDecodeMJPEGErrors(t *testing.T) {
	good := readTestdata(t, "mjpeg422-nodht.jpg")
	for name, data := range map[string][]byte{
		"empty":              nil,
		"not a JPEG":         []byte("\x00\x00\x00\x01\x67 not jpeg"),
		"SOI only":           {0xff, 0xd8},
		"truncated header":   good[:40],
		"truncated scan":     good[:len(good)/2],
		"zero length marker": {0xff, 0xd8, 0xff, 0xe0, 0x00, 0x00, 0xff, 0xda},
		"EOI before scan":    {0xff, 0xd8, 0xff, 0xd9, 0, 0},
	} {
		if _, err := decodeMJPEG(nil, data); err == nil {
			t.Errorf("%s: decoded", name)
		}
	}
}

func TestRawCameraMJPEG(t *testing.T) {
	l := frameLayout{Format: FormatMJPEG, Width: 160, Height: 120}
	src := newFake(l, errUnplugged,
		frame{index: 0, data: readTestdata(t, "mjpeg422-nodht.jpg"), mono: 10 * time.Millisecond},
		frame{index: 1, data: []byte{0xff, 0xd8, 0xff}, mono: 20 * time.Millisecond}, // broken: skipped
		frame{index: 2, data: readTestdata(t, "mjpeg420.jpg"), mono: 30 * time.Millisecond},
	)
	cam := &RawCamera{
		cfg:  CameraConfig{Device: "/dev/video3", Choice: Choice{Format: FormatMJPEG}, StallTimeout: time.Second},
		log:  slog.New(slog.DiscardHandler),
		open: opener(src),
	}
	var pts []time.Duration
	err := cam.Run(context.Background(), func(f media.RawFrame) {
		if f.Image.Rect.Dx() != 160 || f.Image.Rect.Dy() != 120 {
			t.Errorf("frame %v", f.Image.Rect)
		}
		pts = append(pts, f.PTS)
	})
	if !errors.Is(err, ErrDeviceLost) {
		t.Fatalf("Run = %v", err)
	}
	if len(pts) != 2 || pts[0] != 10*time.Millisecond || pts[1] != 30*time.Millisecond {
		t.Fatalf("frames at %v, want 10ms and 30ms", pts)
	}
	if _, err := NewRawCamera(CameraConfig{Device: "/dev/video3", Choice: Choice{Format: FormatMJPEG, Width: 160, Height: 120}}, nil); err != nil {
		t.Errorf("NewRawCamera(MJPEG): %v", err)
	}
}

func FuzzDecodeMJPEG(f *testing.F) {
	for _, name := range []string{"mjpeg422.jpg", "mjpeg420.jpg", "mjpeg422-nodht.jpg"} {
		f.Add(readTestdata(f, name))
	}
	f.Add([]byte{0xff, 0xd8, 0xff, 0xda, 0x00, 0x02})
	f.Fuzz(func(t *testing.T, data []byte) {
		img, err := decodeMJPEG(nil, data)
		if err != nil {
			return
		}
		w, h := img.Rect.Dx(), img.Rect.Dy()
		if w <= 0 || h <= 0 || w%2 != 0 || h%2 != 0 || len(img.Cb) < (h/2-1)*img.CStride+w/2 {
			t.Fatalf("bad picture %v stride %d", img.Rect, img.CStride)
		}
	})
}
