package sim

import (
	"context"
	"testing"
	"time"

	"github.com/classcap/classcap/device/button"
)

func TestButtonPressGivesTapAndHold(t *testing.T) {
	for _, tc := range []struct {
		hold time.Duration
		want button.Kind
	}{
		{0, button.Tap},
		{2100 * time.Millisecond, button.Hold},
	} {
		b := NewButton()
		c := button.NewClassifier(20*time.Millisecond, 2*time.Second)
		got := make(chan button.Event, 4)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error)
		go func() { done <- c.Run(ctx, b.Edges(), func(e button.Event) { got <- e }) }()
		if err := b.Press(ctx, tc.hold); err != nil {
			t.Fatal(err)
		}
		select {
		case e := <-got:
			if e.Kind != tc.want {
				t.Fatalf("hold %v: got %v, want %v", tc.hold, e.Kind, tc.want)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("hold %v: no gesture", tc.hold)
		}
		cancel()
		<-done
	}
}
