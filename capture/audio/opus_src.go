//go:build cgo && opussrc

package audio

// Links the libopus that scripts/libopus.sh builds from its release source
// for the target (make build, make test and the cross builds use -tags
// opussrc and run the script first): run-time CPU detection with the SIMD
// paths of each target, which the bundled library lacks.

/*
#cgo linux,amd64 LDFLAGS: ${SRCDIR}/../../build/opus/linux-amd64/lib/libopus.a -lm
#cgo linux,arm64 LDFLAGS: ${SRCDIR}/../../build/opus/linux-arm64/lib/libopus.a -lm
#cgo linux,arm LDFLAGS: ${SRCDIR}/../../build/opus/linux-armv7/lib/libopus.a -lm
*/
import "C"
