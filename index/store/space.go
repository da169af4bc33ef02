package store

import (
	"fmt"

	"golang.org/x/sys/unix"

	"github.com/zhisou/zhisou/index"
)

// Disk space. Badger writes its value log and memtables through memory maps
// of sparse files: on a full disk such a write does not fail, the process
// dies of SIGBUS (seen with a 20 MB filesystem). So the store checks the free
// space before each write, and refuses the write with index.ErrNoSpace, naming
// the directory and what is free, while less than the write's estimated size
// and a reserve would be left; the reserve covers what Badger writes besides
// (memtable flushes and compactions write whole tables). Reads go on. Open
// refuses the same way, since catching up from the log writes too; it opens
// again once space is freed.

// DefaultMinFreeBytes is the free space a write must leave on the data
// directory's filesystem (Options.MinFreeBytes).
const DefaultMinFreeBytes = 128 << 20

// freeBytes is the space an unprivileged process may still use on the
// filesystem of dir.
func freeBytes(dir string) (uint64, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return 0, fmt.Errorf("free space of %s: %w", dir, err)
	}
	return st.Bavail * uint64(st.Bsize), nil
}

// checkSpace fails with index.ErrNoSpace unless need bytes, and the reserve
// after them, are free.
func (s *Store) checkSpace(what string, need uint64) error {
	free, err := freeBytes(s.dir)
	if err != nil {
		return err
	}
	if free >= need+s.minFree {
		return nil
	}
	return fmt.Errorf("%w: %s needs about %s and %s kept in reserve, but %s has %s free; free some space (nothing acknowledged is lost)",
		index.ErrNoSpace, what, mib(need), mib(s.minFree), s.dir, mib(free))
}

func mib(n uint64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }

// writeSize estimates what applying records writes: the log record, the
// chunks in Badger and in bleve, each about the size of the text and its
// analysis.
func writeSize(recs []index.Record) uint64 {
	var n uint64
	for i := range recs {
		n += 4 << 10
		if d := recs[i].Doc; d != nil {
			n += uint64(len(d.Title))
			for j := range d.Chunks {
				n += 4*uint64(len(d.Chunks[j].Text)) + 512
			}
		}
	}
	return n
}
