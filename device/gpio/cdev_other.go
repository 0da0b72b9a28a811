//go:build !linux

package gpio

// OpenButton needs the Linux GPIO character device.
func OpenButton(cfg ButtonConfig) (*Button, error) { return nil, ErrUnsupported }

// OpenLED needs the Linux GPIO character device.
func OpenLED(cfg LEDConfig) (*LED, error) { return nil, ErrUnsupported }
