package fleet

import (
	"context"
	"fmt"

	"github.com/classcap/classcap/uplink/wire"
)

// PublishConfig publishes device's desired configuration, retained, on its
// config topic (QoS 1), and waits for the broker's acknowledgement.
func (f *Fleet) PublishConfig(ctx context.Context, device string, payload []byte) error {
	if !f.client.IsConnectionOpen() {
		return ErrNotConnected
	}
	tok := f.client.Publish(wire.ConfigTopic(device), wire.QoS, true, payload)
	select {
	case <-tok.Done():
		if err := tok.Error(); err != nil {
			return fmt.Errorf("config to %s: publish: %w", device, err)
		}
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
