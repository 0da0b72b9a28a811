package catalog

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"os"
)

// bbolt's file layout (v1.x): two meta pages at the start, each a 16-byte
// page header followed by the meta fields; integers in the machine's byte
// order (little-endian on every target we build for).
const (
	boltMagic      = 0xED0CDAED
	boltVersion    = 2
	pageHeaderSize = 16
	metaSize       = 64
)

type boltMeta struct {
	pageSize uint32
	root     uint64
	freelist uint64
	pgid     uint64 // high water mark
	txid     uint64
}

func parseMeta(b []byte) (boltMeta, bool) {
	if len(b) < pageHeaderSize+metaSize {
		return boltMeta{}, false
	}
	m := b[pageHeaderSize : pageHeaderSize+metaSize]
	le := binary.LittleEndian
	if le.Uint32(m[0:]) != boltMagic || le.Uint32(m[4:]) != boltVersion {
		return boltMeta{}, false
	}
	h := fnv.New64a()
	h.Write(m[:56])
	if h.Sum64() != le.Uint64(m[56:]) {
		return boltMeta{}, false
	}
	bm := boltMeta{pageSize: le.Uint32(m[8:]), root: le.Uint64(m[16:]), freelist: le.Uint64(m[32:]),
		pgid: le.Uint64(m[40:]), txid: le.Uint64(m[48:])}
	if bm.pageSize < 512 || bm.pageSize > 1<<20 || bm.pageSize&(bm.pageSize-1) != 0 {
		return boltMeta{}, false
	}
	return bm, true
}

// precheck refuses files that would make bbolt fault while opening them
// (bbolt maps the file and trusts its meta pages): a file shorter than its
// meta pages claim, or with no valid meta page at all.
func precheck(path string) error {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	if st.Size() == 0 {
		return nil // bbolt initialises an empty file
	}
	head := make([]byte, pageHeaderSize+metaSize)
	if _, err := io.ReadFull(f, head); err != nil {
		return fmt.Errorf("file too short (%d bytes)", st.Size())
	}
	var best boltMeta
	found := false
	candidates := []int64{0}
	if m0, ok := parseMeta(head); ok {
		candidates = append(candidates, int64(m0.pageSize))
	} else {
		candidates = append(candidates, 4096, 16384, 65536)
	}
	for _, off := range candidates {
		b := make([]byte, pageHeaderSize+metaSize)
		if _, err := f.ReadAt(b, off); err != nil {
			continue
		}
		if m, ok := parseMeta(b); ok && (!found || m.txid > best.txid) {
			best, found = m, true
		}
	}
	if !found {
		return errors.New("no valid meta page")
	}
	if need := int64(best.pgid) * int64(best.pageSize); need > st.Size() {
		return fmt.Errorf("file is %d bytes, its meta page needs %d (truncated)", st.Size(), need)
	}
	if best.root >= best.pgid || best.freelist >= best.pgid && best.freelist != ^uint64(0) {
		return errors.New("meta page points past the end of the data")
	}
	return nil
}
