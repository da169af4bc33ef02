// Package wal is the store's write log on disk: numbered entries in segment
// files of its own, apart from Badger's, each entry checksummed, so that a
// store whose Badger files are damaged can be rebuilt from it.
//
// # Format
//
// A log is a directory of segment files named by the sequence number of
// their first entry, %020d.wal. A segment starts with an 8-byte magic word
// and holds frames:
//
//	length  uint32 (big endian): bytes of payload
//	crc     uint32: CRC-32C (Castagnoli) of seq and payload
//	seq     uint64
//	payload [length]byte
//
// Sequence numbers are consecutive across segments. Appending writes a batch
// of frames with one write and then fsyncs, so an entry is durable when Append
// returns. A new segment starts when the current one has reached
// Options.SegmentBytes.
//
// # Faults
//
// Every read checks each frame's checksum, its sequence number, and that a
// segment ends where the next begins; a frame that fails is an error matching
// ErrCorrupt that names the file and offset. At Open the last segment is read
// whole: a frame cut short at the end of it (a write interrupted by a crash,
// never acknowledged) is cut off and reported through Options.Logger; any
// other fault there fails Open unless Options.Truncate is set. After a failed
// write or fsync the log refuses further appends until it is opened again,
// since what reached the disk is then unknown.
package wal

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// ErrCorrupt marks a log whose files fail their checks.
var ErrCorrupt = errors.New("write log damaged")

// ErrTruncated is returned by Replay when entries it should start from were
// dropped (DropBefore).
var ErrTruncated = errors.New("write log no longer holds the entries wanted")

// ErrBroken is returned by Append after an earlier write or fsync failed.
var ErrBroken = errors.New("write log refuses appends after a failed write; reopen it")

// MaxEntryBytes bounds an entry's payload. A larger length in a frame header
// is damage.
const MaxEntryBytes = 1 << 30

// DefaultSegmentBytes is the size at which a new segment starts.
const DefaultSegmentBytes = 64 << 20

const (
	headerLen = 16
	suffix    = ".wal"
)

var magic = [8]byte{'Z', 'H', 'S', 'W', 'A', 'L', '0', '1'}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Options configure Open.
type Options struct {
	// SegmentBytes is the size at which a new segment starts;
	// DefaultSegmentBytes when zero.
	SegmentBytes int64
	// Next is the sequence number of the first entry of a new, empty log;
	// 1 when zero. It is ignored when the directory holds segments.
	Next uint64
	// Truncate makes Open cut the last segment at its first bad frame,
	// whatever the fault, instead of failing: the operator's repair flag.
	Truncate bool
	// Logger reports what Open cut off. Nil discards.
	Logger *slog.Logger
}

// Log is an open write log. Its methods are safe for concurrent use.
type Log struct {
	dir     string
	segSize int64
	logger  *slog.Logger

	mu     sync.Mutex
	firsts []uint64 // first sequence number of each segment, ascending
	tail   *os.File // the last segment, open for appending
	size   int64    // bytes in the tail
	last   uint64   // last sequence number written; firsts[0]-1 when empty
	bytes  int64    // bytes in the sealed segments
	broken error
}

// Open opens the log in dir, creating the directory and a first segment when
// there is none.
func Open(dir string, o Options) (*Log, error) {
	l := &Log{dir: dir, segSize: o.SegmentBytes, logger: o.Logger}
	if l.segSize <= 0 {
		l.segSize = DefaultSegmentBytes
	}
	if l.logger == nil {
		l.logger = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("open write log: %w", err)
	}
	firsts, err := listSegments(dir)
	if err != nil {
		return nil, err
	}
	if len(firsts) == 0 {
		next := max(o.Next, 1)
		if err := l.create(next); err != nil {
			return nil, err
		}
		l.firsts, l.last = []uint64{next}, next-1
		return l, nil
	}
	l.firsts = firsts
	for _, f := range firsts[:len(firsts)-1] {
		fi, err := os.Stat(l.path(f))
		if err != nil {
			return nil, fmt.Errorf("open write log: %w", err)
		}
		l.bytes += fi.Size()
	}
	if err := l.openTail(o.Truncate); err != nil {
		return nil, err
	}
	return l, nil
}

func listSegments(dir string) ([]uint64, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("open write log: %w", err)
	}
	var firsts []uint64
	for _, e := range entries {
		name, ok := strings.CutSuffix(e.Name(), suffix)
		if !ok || e.IsDir() {
			continue
		}
		n, err := strconv.ParseUint(name, 10, 64)
		if err != nil || len(name) != 20 || n == 0 {
			return nil, fmt.Errorf("%w: %s is not a segment name", ErrCorrupt, filepath.Join(dir, e.Name()))
		}
		firsts = append(firsts, n)
	}
	slices.Sort(firsts)
	return firsts, nil
}

func (l *Log) path(first uint64) string {
	return filepath.Join(l.dir, fmt.Sprintf("%020d%s", first, suffix))
}

// create starts a new, empty tail segment whose first entry will be first.
func (l *Log) create(first uint64) error {
	p := l.path(first)
	f, err := os.OpenFile(p, os.O_CREATE|os.O_EXCL|os.O_RDWR, 0o644)
	if err != nil {
		return fmt.Errorf("write log: %w", err)
	}
	var h [headerLen]byte
	copy(h[:], magic[:])
	binary.BigEndian.PutUint64(h[8:], first)
	_, err = f.Write(h[:])
	if err == nil {
		err = f.Sync()
	}
	if err == nil {
		err = syncDir(l.dir)
	}
	if err != nil {
		return errors.Join(fmt.Errorf("write log: start segment %s: %w", p, err), f.Close(), os.Remove(p))
	}
	l.tail, l.size = f, headerLen
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	return errors.Join(d.Sync(), d.Close())
}

// openTail reads the last segment whole, cuts off an interrupted last write,
// and opens it for appending.
func (l *Log) openTail(truncate bool) error {
	first := l.firsts[len(l.firsts)-1]
	p := l.path(first)
	f, err := os.OpenFile(p, os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("open write log: %w", err)
	}
	r := newReader(f, p, first)
	var last uint64 = first - 1
	for {
		seq, _, err := r.next()
		if err == io.EOF {
			break
		}
		if err != nil {
			torn := errors.Is(err, errTorn)
			if !torn && !truncate {
				return errors.Join(err, f.Close())
			}
			cut := r.frameStart
			l.logger.Warn("write log: cutting off the end of the last segment", "file", p, "offset", cut, "err", err)
			if cut < headerLen {
				// Not even the segment header survived: write it again.
				if err := errors.Join(f.Close(), os.Remove(p)); err != nil {
					return fmt.Errorf("write log: %w", err)
				}
				l.last = first - 1
				return l.create(first)
			}
			if err := cutAt(f, cut); err != nil {
				return errors.Join(fmt.Errorf("write log: cut %s: %w", p, err), f.Close())
			}
			break
		}
		last = seq
	}
	if err := checkFollows(l, first); err != nil {
		return errors.Join(err, f.Close())
	}
	size, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		return errors.Join(fmt.Errorf("open write log: %w", err), f.Close())
	}
	l.tail, l.size, l.last = f, size, last
	return nil
}

// checkFollows checks that the tail segment's name follows its predecessor's:
// a missing segment leaves a gap that only a full read finds, so this is
// a cheap first check of the names alone.
func checkFollows(l *Log, first uint64) error {
	if len(l.firsts) > 1 && l.firsts[len(l.firsts)-2] >= first {
		return fmt.Errorf("%w: segments %s and %s overlap", ErrCorrupt, l.path(l.firsts[len(l.firsts)-2]), l.path(first))
	}
	return nil
}

func cutAt(f *os.File, off int64) error {
	if err := f.Truncate(off); err != nil {
		return err
	}
	return f.Sync()
}

// First is the sequence number of the oldest entry the log holds, or of the
// next one when it holds none.
func (l *Log) First() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.firsts[0]
}

// Last is the sequence number of the newest entry, First()-1 when empty.
func (l *Log) Last() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.last
}

// Bytes is the size of the log's files.
func (l *Log) Bytes() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.bytes + l.size
}

// Segments is the number of segment files.
func (l *Log) Segments() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.firsts)
}

// Append writes the payloads as consecutive entries, durably, and returns the
// sequence number of the first.
func (l *Log) Append(payloads [][]byte) (uint64, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.broken != nil {
		return 0, fmt.Errorf("%w (%w)", ErrBroken, l.broken)
	}
	if l.tail == nil {
		return 0, errors.New("write log closed")
	}
	if l.size >= l.segSize && l.last >= l.firsts[len(l.firsts)-1] {
		if err := l.rotate(); err != nil {
			return 0, err
		}
	}
	first := l.last + 1
	n := 0
	for _, p := range payloads {
		if len(p) > MaxEntryBytes {
			return 0, fmt.Errorf("write log: entry of %d bytes over the limit of %d", len(p), MaxEntryBytes)
		}
		n += 16 + len(p)
	}
	buf := make([]byte, 0, n)
	for i, p := range payloads {
		buf = appendFrame(buf, first+uint64(i), p)
	}
	if _, err := l.tail.Write(buf); err != nil {
		// Take back what part of the batch reached the file, so that no
		// half frame sits before later ones.
		if terr := cutAt(l.tail, l.size); terr != nil {
			l.broken = errors.Join(err, terr)
		}
		return 0, fmt.Errorf("write log: append to %s: %w", l.tail.Name(), err)
	}
	if err := l.tail.Sync(); err != nil {
		// After a failed fsync the kernel may have dropped the pages: what
		// is on disk is unknown, so nothing more is appended.
		l.broken = err
		return 0, fmt.Errorf("write log: sync %s: %w", l.tail.Name(), err)
	}
	l.size += int64(len(buf))
	l.last += uint64(len(payloads))
	return first, nil
}

func appendFrame(buf []byte, seq uint64, p []byte) []byte {
	var h [16]byte
	binary.BigEndian.PutUint32(h[0:], uint32(len(p)))
	binary.BigEndian.PutUint64(h[8:], seq)
	crc := crc32.Update(crc32.Checksum(h[8:16], castagnoli), castagnoli, p)
	binary.BigEndian.PutUint32(h[4:], crc)
	return append(append(buf, h[:]...), p...)
}

// rotate seals the tail and starts a new segment. Called with mu held.
func (l *Log) rotate() error {
	if err := l.tail.Close(); err != nil {
		l.broken = err
		return fmt.Errorf("write log: close %s: %w", l.tail.Name(), err)
	}
	l.tail = nil
	if err := l.create(l.last + 1); err != nil {
		l.broken = err
		return err
	}
	l.bytes += l.sizeOf(len(l.firsts) - 1)
	l.firsts = append(l.firsts, l.last+1)
	return nil
}

func (l *Log) sizeOf(i int) int64 {
	fi, err := os.Stat(l.path(l.firsts[i]))
	if err != nil {
		return 0
	}
	return fi.Size()
}

// Replay calls fn with each entry whose sequence number is above after, in
// order, checking every frame. The payload is valid only during the call.
// Entries appended while Replay runs may or may not be seen.
func (l *Log) Replay(after uint64, fn func(seq uint64, payload []byte) error) error {
	l.mu.Lock()
	firsts := slices.Clone(l.firsts)
	last := l.last
	l.mu.Unlock()
	if after+1 < firsts[0] && after < last {
		return fmt.Errorf("%w: entries from %d on are wanted, but the log starts at %d", ErrTruncated, after+1, firsts[0])
	}
	i, found := slices.BinarySearch(firsts, after+1)
	if !found {
		i = max(i-1, 0)
	}
	for ; i < len(firsts); i++ {
		end := last
		if i+1 < len(firsts) {
			end = firsts[i+1] - 1
		}
		if end <= after {
			continue
		}
		if err := l.replaySegment(firsts[i], end, after, fn); err != nil {
			return err
		}
	}
	return nil
}

// replaySegment reads the segment starting at first, which must hold the
// entries up to end.
func (l *Log) replaySegment(first, end, after uint64, fn func(uint64, []byte) error) error {
	p := l.path(first)
	f, err := os.Open(p)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("%w: segment %s is missing", ErrCorrupt, p)
		}
		return fmt.Errorf("write log: %w", err)
	}
	defer f.Close()
	r := newReader(f, p, first)
	for {
		seq, payload, err := r.next()
		if err == io.EOF || (err == nil && seq > end) {
			break
		}
		if err != nil {
			return err
		}
		if seq > after {
			if err := fn(seq, payload); err != nil {
				return err
			}
		}
		if seq == end {
			return nil
		}
	}
	return fmt.Errorf("%w: segment %s ends at entry %d, but should hold entries up to %d", ErrCorrupt, p, r.want-1, end)
}

// Check reads every segment whole and returns the number of entries.
func (l *Log) Check() (int64, error) {
	var n int64
	err := l.Replay(l.First()-1, func(uint64, []byte) error { n++; return nil })
	return n, err
}

// DropBefore deletes the segments whose entries all have sequence numbers up
// to upto. The tail segment is never deleted.
func (l *Log) DropBefore(upto uint64) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for len(l.firsts) > 1 && l.firsts[1]-1 <= upto {
		size := l.sizeOf(0)
		if err := os.Remove(l.path(l.firsts[0])); err != nil && !errors.Is(err, os.ErrNotExist) {
			return n, fmt.Errorf("write log: %w", err)
		}
		l.bytes -= size
		l.firsts = l.firsts[1:]
		n++
	}
	if n > 0 {
		if err := syncDir(l.dir); err != nil {
			return n, fmt.Errorf("write log: %w", err)
		}
	}
	return n, nil
}

// Close closes the log.
func (l *Log) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.tail == nil {
		return nil
	}
	err := l.tail.Close()
	l.tail = nil
	return err
}

// errTorn marks a frame cut short by the end of the file, or followed only by
// zero bytes: the trace of a write that a crash interrupted.
var errTorn = errors.New("cut short")

type reader struct {
	f          *os.File
	r          *bufio.Reader
	path       string
	want       uint64 // sequence number of the next frame
	off        int64  // offset of the next byte to read
	frameStart int64
	buf        []byte
	headerOK   bool
}

func newReader(f *os.File, path string, first uint64) *reader {
	return &reader{f: f, r: bufio.NewReaderSize(f, 1<<16), path: path, want: first}
}

func (r *reader) fail(cause error, format string, a ...any) error {
	return fmt.Errorf("%w: %s at offset %d: %s: %w", ErrCorrupt, r.path, r.frameStart, fmt.Sprintf(format, a...), cause)
}

// next reads the next frame. It returns io.EOF at a clean end of file.
func (r *reader) next() (uint64, []byte, error) {
	if !r.headerOK {
		var h [headerLen]byte
		n, err := io.ReadFull(r.r, h[:])
		r.off += int64(n)
		if err != nil {
			return 0, nil, r.fail(errTorn, "segment header cut short (%d bytes)", n)
		}
		if [8]byte(h[:8]) != magic {
			return 0, nil, r.fail(errBad, "not a zhisou write log segment")
		}
		if got := binary.BigEndian.Uint64(h[8:]); got != r.want {
			return 0, nil, r.fail(errBad, "header says the first entry is %d, the name %d", got, r.want)
		}
		r.headerOK = true
	}
	r.frameStart = r.off
	var h [16]byte
	n, err := io.ReadFull(r.r, h[:])
	r.off += int64(n)
	if err == io.EOF {
		return 0, nil, io.EOF
	}
	if err != nil {
		return 0, nil, r.fail(errTorn, "frame header cut short")
	}
	length := binary.BigEndian.Uint32(h[0:])
	sum := binary.BigEndian.Uint32(h[4:])
	seq := binary.BigEndian.Uint64(h[8:])
	if h == [16]byte{} {
		if r.restIsZero() {
			return 0, nil, r.fail(errTorn, "zero bytes to the end of the file")
		}
		return 0, nil, r.fail(errBad, "a zero frame header")
	}
	if length > MaxEntryBytes {
		return 0, nil, r.fail(errBad, "frame length %d over the limit", length)
	}
	if cap(r.buf) < int(length) {
		r.buf = make([]byte, length)
	}
	payload := r.buf[:length]
	n, err = io.ReadFull(r.r, payload)
	r.off += int64(n)
	if err != nil {
		return 0, nil, r.fail(errTorn, "frame of %d bytes cut short at %d", length, n)
	}
	if crc32.Update(crc32.Checksum(h[8:16], castagnoli), castagnoli, payload) != sum {
		return 0, nil, r.fail(errBad, "entry %d fails its checksum", seq)
	}
	if seq != r.want {
		return 0, nil, r.fail(errBad, "entry %d where %d was due", seq, r.want)
	}
	r.want++
	return seq, payload, nil
}

var errBad = errors.New("bad frame")

func (r *reader) restIsZero() bool {
	buf := make([]byte, 1<<16)
	for {
		n, err := r.r.Read(buf)
		for _, b := range buf[:n] {
			if b != 0 {
				return false
			}
		}
		if err != nil {
			return true
		}
	}
}
