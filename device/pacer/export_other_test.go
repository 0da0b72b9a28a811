//go:build !linux

package pacer

const timerfdExpected = false
