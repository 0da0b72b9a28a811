// Package sim is the simulated hardware of profile "sim": a synthetic camera
// (moving test pattern with a burned-in frame counter), a synthetic
// microphone array (speech-like signal plus noise, a different delay per
// channel), a virtual button and a virtual LED. The daemon drives them
// through the same recorder, encoder, muxer and store code as real hardware.
package sim
