//go:build !linux

package main

import "errors"

func findControl(fd int, name string) (uint32, error) {
	return 0, errors.New("V4L2 controls need Linux")
}

func setControl(fd int, id uint32, v int32) error { return errors.New("V4L2 controls need Linux") }
