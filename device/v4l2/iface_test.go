//go:build cgo

// The pipeline links the cgo encoder, so this check needs cgo.

package v4l2

import "github.com/classcap/classcap/capture/pipeline"

// The cameras fit the capture pipeline.
var (
	_ pipeline.RawCamera  = (*RawCamera)(nil)
	_ pipeline.H264Camera = (*H264Camera)(nil)
)

// The hardware encoder fits the pipeline's encoder interface.
var _ pipeline.Encoder = (*H264Encoder)(nil)
