package registrar

import (
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// File is a bbolt database opened for each transaction and closed after
// it, so that the hub and its command-line verbs (claim create, device
// revoke) share one file without talking to each other: bbolt's file lock
// makes one wait for the other. Enrollment and revocation are rare; the cost
// is an open per call.
type File struct {
	Path    string
	Timeout time.Duration // how long to wait for the lock; 0 means 10 s
}

// Update runs fn in a read-write transaction.
func (f *File) Update(fn func(*bolt.Tx) error) error {
	db, err := f.open(false)
	if err != nil {
		return err
	}
	defer db.Close()
	return db.Update(fn)
}

// View runs fn in a read-only transaction (a shared lock: readers do not
// wait for each other).
func (f *File) View(fn func(*bolt.Tx) error) error {
	db, err := f.open(true)
	if err != nil {
		return err
	}
	defer db.Close()
	return db.View(fn)
}

func (f *File) open(readOnly bool) (*bolt.DB, error) {
	t := f.Timeout
	if t == 0 {
		t = 10 * time.Second
	}
	db, err := bolt.Open(f.Path, 0o600, &bolt.Options{Timeout: t, ReadOnly: readOnly})
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", f.Path, err)
	}
	return db, nil
}
