//go:build arm

package alsa

import "unsafe"

// Compile-time checks of the kernel structure sizes on 32-bit ARM (EABI:
// long and pointers are 4 bytes).
var (
	_ [unsafe.Sizeof(hwParams{}) - 604]byte
	_ [604 - unsafe.Sizeof(hwParams{})]byte
	_ [unsafe.Sizeof(swParams{}) - 104]byte
	_ [104 - unsafe.Sizeof(swParams{})]byte
	_ [unsafe.Sizeof(xferi{}) - 12]byte
	_ [12 - unsafe.Sizeof(xferi{})]byte
	_ [unsafe.Sizeof(pcmInfo{}) - 288]byte
	_ [288 - unsafe.Sizeof(pcmInfo{})]byte
	_ [unsafe.Offsetof(hwParams{}.FIFOSize) - 536]byte
	_ [536 - unsafe.Offsetof(hwParams{}.FIFOSize)]byte
	_ [unsafe.Offsetof(swParams{}.Boundary) - 36]byte
	_ [36 - unsafe.Offsetof(swParams{}.Boundary)]byte
)
