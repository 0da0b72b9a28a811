package ingest

import (
	"context"
	"sync"

	"github.com/tus/tusd/v2/pkg/handler"
)

// locker serialises the requests on one upload. Unlike tusd's memorylocker
// it never asks the holder to let go: a request that finds the upload
// locked waits until the holder ends (an interrupted PATCH ends as soon as
// its body read fails, at the latest after the handler's NetworkTimeout).
// tusd v2.9.1 races on the request body when a release is requested
// (handler/context.go reads it unsynchronised), which the race detector
// reports; waiting avoids that path, and keeps a newer request from
// cutting off the bytes an older one is still saving.
type locker struct {
	mu    sync.Mutex
	locks map[string]chan struct{}
}

func newLocker() *locker { return &locker{locks: map[string]chan struct{}{}} }

func (l *locker) UseIn(c *handler.StoreComposer) { c.UseLocker(l) }

func (l *locker) NewLock(id string) (handler.Lock, error) { return &lock{l: l, id: id}, nil }

type lock struct {
	l  *locker
	id string
}

func (k *lock) Lock(ctx context.Context, _ func()) error {
	for {
		k.l.mu.Lock()
		held, ok := k.l.locks[k.id]
		if !ok {
			k.l.locks[k.id] = make(chan struct{})
			k.l.mu.Unlock()
			return nil
		}
		k.l.mu.Unlock()
		select {
		case <-ctx.Done():
			return handler.ErrLockTimeout
		case <-held:
		}
	}
}

func (k *lock) Unlock() error {
	k.l.mu.Lock()
	if ch, ok := k.l.locks[k.id]; ok {
		delete(k.l.locks, k.id)
		close(ch)
	}
	k.l.mu.Unlock()
	return nil
}
