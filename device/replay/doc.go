// Package replay is the hardware of profile "replay": an H.264 Annex-B file
// stands in for a camera that delivers H.264 (passed through without
// re-encoding) and a WAV file stands in for the microphone array. Both loop
// forever and are paced in real time, or as fast as the consumer takes them.
package replay
