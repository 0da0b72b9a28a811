// Package alsa captures a microphone array through the Linux kernel's ALSA
// PCM interface (/dev/snd/pcmC<card>D<device>c) without cgo or alsa-lib: it
// negotiates hardware parameters with the HW_REFINE/HW_PARAMS ioctls, reads
// interleaved S16_LE or S32_LE frames with READI_FRAMES, converts them to
// float32 PCM stamped on the pipeline timeline, and recovers from overruns.
//
// Device names follow alsa-lib's hw plugin: "hw:1,0", "hw:1,0,0",
// "hw:Loopback,1,0" and "hw:CARD=Loopback,DEV=1,SUBDEV=0". Card names are
// resolved through /proc/asound.
//
// The ioctl structures are laid out for linux/amd64, linux/arm64 and
// linux/arm (where C long and pointers are 32 bits); other platforms get a
// stub whose New fails with ErrUnsupported.
package alsa
