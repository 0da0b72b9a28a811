//go:build amd64 || arm64

package alsa

import "unsafe"

// Compile-time checks of the kernel structure sizes on 64-bit targets.
var (
	_ [unsafe.Sizeof(hwParams{}) - 608]byte
	_ [608 - unsafe.Sizeof(hwParams{})]byte
	_ [unsafe.Sizeof(swParams{}) - 136]byte
	_ [136 - unsafe.Sizeof(swParams{})]byte
	_ [unsafe.Sizeof(xferi{}) - 24]byte
	_ [24 - unsafe.Sizeof(xferi{})]byte
	_ [unsafe.Sizeof(pcmInfo{}) - 288]byte
	_ [288 - unsafe.Sizeof(pcmInfo{})]byte
	_ [unsafe.Offsetof(hwParams{}.FIFOSize) - 536]byte
	_ [536 - unsafe.Offsetof(hwParams{}.FIFOSize)]byte
	_ [unsafe.Offsetof(swParams{}.Boundary) - 64]byte
	_ [64 - unsafe.Offsetof(swParams{}.Boundary)]byte
)
