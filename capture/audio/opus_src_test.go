//go:build cgo && opussrc

package audio

import (
	"strings"
	"testing"
)

// TestOpusFromSource checks that -tags opussrc links the libopus that
// scripts/libopus.sh builds, not the older one mediadevices bundles.
func TestOpusFromSource(t *testing.T) {
	if v := OpusVersion(); !strings.HasPrefix(v, "libopus 1.5.") {
		t.Fatalf("linked %q, want libopus 1.5.x from scripts/libopus.sh", v)
	}
}
