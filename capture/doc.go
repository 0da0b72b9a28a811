// Package capture is the box's media path. Its sub-packages, in data-flow
// order:
//
//	camera (device/sim, device/replay, V4L2 later; the simulated and replayed
//	sources sleep on device/pacer)
//	   |  raw pictures                     H.264 from the camera
//	   v                                        |
//	videoenc (openh264) ---- access units ------+
//	                                             \
//	mic array --> audio (resample, meter, mixdown, Opus) --> pipeline --> live.Tap --> stream (fan-out)
//	              array (beam, denoise, AGC) replaces the mixdown when the     (keeps the last
//	              microphone matches the configured geometry                    group of pictures)
//	                                                                        |        \
//	                                                                   recorder   live (WebRTC, one lossy
//	                                                                        |      reader per viewer)
//	                                                  segment (fMP4, fsync per fragment)
//	                                                                        |
//	                                            lesson (folders, lesson.json, HLS playlist)
//	mic array, as captured (with [audio] keep_raw) --> recorder --> rawaudio (WAV beside each segment)
//	                                                                        |
//	                                                    catalog (bbolt index, upload states)
//
// array is the microphone-array processing (with room, its measurement
// bench); media holds the types that flow between them, durable the crash-safe
// file writes, h264 the bitstream helpers, and mediatest the ffmpeg-judged
// test helpers.
package capture
