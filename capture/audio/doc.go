// Package audio is the audio stage of the capture pipeline, between the
// microphone and the fan-out: it downmixes a multichannel array to mono or
// stereo (Mixer), converts the capture rate to 48 kHz (Resampler), measures
// per-channel peak and RMS levels for the state report (Meter), and frames
// PCM of any block size into 20 ms Opus packets with exact timestamps
// (Encoder, libopus through cgo).
//
// Every per-block path reuses its buffers: a steady stream allocates
// nothing but the Opus packet payloads, which are carved from large slabs.
package audio
