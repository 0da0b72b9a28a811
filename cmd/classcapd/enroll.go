package main

import (
	"errors"
	"log/slog"
	"os"

	"github.com/classcap/classcap/device/led"
	"github.com/classcap/classcap/provisioning/config"
	"github.com/classcap/classcap/provisioning/enroll"
)

// adoptIdentity makes an enrolled box use the device id its certificate
// names, whatever the configuration says. A damaged identity is logged and
// left alone: the box records without it.
func adoptIdentity(cfg *config.Box, log *slog.Logger) error {
	id, err := enroll.LoadIdentity(cfg.IdentityDir())
	switch {
	case errors.Is(err, enroll.ErrNotEnrolled):
		return nil
	case err != nil:
		log.Error("identity unusable: recording works, the hub link does not; move the identity folder aside and put a claim file on the boot partition", "err", err)
		return nil
	}
	if cfg.Device.ID != id.DeviceID {
		log.Info("enrolled: using the device id of the certificate", "device", id.DeviceID, "configured", cfg.Device.ID)
		cfg.Device.ID = id.DeviceID
	}
	return nil
}

// newEnroller returns the enroller of a box that is enrolled (it renews the
// certificate) or has a claim file to enroll with; nil when neither. A
// refusal is logged and shown on the LED while the box is idle.
func newEnroller(cfg *config.Box, show *led.Driver, log *slog.Logger) (*enroll.Enroller, error) {
	host, _ := os.Hostname()
	e, err := enroll.New(enroll.Config{
		Dir:       cfg.IdentityDir(),
		ClaimPath: cfg.Enroll.ClaimFile,
		Hostname:  host,
		OnChange: func(s enroll.Status) {
			if s.State == enroll.Refused {
				show.Replace(led.Idle, led.EnrollRefused)
			} else {
				show.Replace(led.EnrollRefused, led.Idle)
			}
			if s.State == enroll.Enrolled && s.DeviceID != cfg.Device.ID {
				log.Info("enrolled; the hub link uses this identity from the next start", "device", s.DeviceID)
			}
		},
	}, log)
	if err != nil {
		log.Error("enrollment off", "err", err)
		return nil, nil
	}
	if e.Identity() == nil && cfg.Enroll.ClaimFile == "" {
		return nil, nil
	}
	return e, nil
}
