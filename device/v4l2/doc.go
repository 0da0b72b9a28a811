// Package v4l2 drives a USB (UVC) camera through the Linux V4L2 API with raw
// ioctls on golang.org/x/sys/unix, without cgo.
//
// List and Probe find capture devices and what they offer (formats, frame
// sizes, frame rates); Choose, a pure function, picks what to capture:
// H.264 from the camera (passed through untouched), else raw YUV near the
// requested size and rate (fed to our encoder), MJPEG only when nothing else
// exists. H264Camera and RawCamera then stream the choice with mmap buffers
// and stamp every frame with the kernel's capture time on the pipeline
// timeline. Raw pictures are converted to I420 in a reused image; MJPEG
// frames are decoded (image/jpeg, with the standard Huffman tables put in
// when a frame has none).
//
// OpenM2M drives a stateful memory-to-memory encoder (raw pictures in,
// coded packets out), generic over the coded format; H264Encoder builds the
// hardware H.264 encoder of the Pi 4 (bcm2835-codec) on it, and
// FindEncoder finds such a device.
//
// Off Linux the package builds but every device call returns ErrUnsupported.
package v4l2
