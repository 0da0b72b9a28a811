//go:build cgo && !opussrc

package audio

// Links the static libopus 1.3.1 that mediadevices ships for linux
// amd64/arm64/armv7 (or the system one with -tags dynamic), so that a plain
// go build or go test works with nothing but a C compiler. The binaries make
// builds link the faster libopus of opus_src.go instead.
import _ "github.com/pion/mediadevices/pkg/codec/opus"
