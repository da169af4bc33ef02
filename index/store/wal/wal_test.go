package wal

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func open(t *testing.T, dir string, o Options) *Log {
	t.Helper()
	l, err := Open(dir, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

func payload(seq uint64) []byte {
	return []byte(strings.Repeat(fmt.Sprintf("entry %d;", seq), int(seq%7)+1))
}

// appendN appends n entries, in batches of up to 3.
func appendN(t *testing.T, l *Log, n int) {
	t.Helper()
	for n > 0 {
		k := min(n, 3)
		var batch [][]byte
		next := l.Last() + 1
		for i := range k {
			batch = append(batch, payload(next+uint64(i)))
		}
		first, err := l.Append(batch)
		if err != nil {
			t.Fatal(err)
		}
		if first != next {
			t.Fatalf("Append returned %d, want %d", first, next)
		}
		n -= k
	}
}

// replayAll checks that the entries after `after` are exactly after+1..last,
// with their payloads.
func replayAll(t *testing.T, l *Log, after uint64) {
	t.Helper()
	want := after + 1
	err := l.Replay(after, func(seq uint64, p []byte) error {
		if seq != want {
			return fmt.Errorf("entry %d, want %d", seq, want)
		}
		if !bytes.Equal(p, payload(seq)) {
			return fmt.Errorf("entry %d: payload %q", seq, p)
		}
		want++
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if want != l.Last()+1 {
		t.Fatalf("replay after %d ended at %d, log's last is %d", after, want-1, l.Last())
	}
}

func TestAppendReplayAcrossSegments(t *testing.T) {
	dir := t.TempDir()
	l := open(t, dir, Options{SegmentBytes: 512})
	appendN(t, l, 100)
	if l.Segments() < 5 {
		t.Fatalf("%d segments for 100 entries of 512-byte segments", l.Segments())
	}
	for _, after := range []uint64{0, 1, 37, 99, 100} {
		replayAll(t, l, after)
	}
	if n, err := l.Check(); err != nil || n != 100 {
		t.Fatalf("Check = %d, %v", n, err)
	}
	l.Close()

	l = open(t, dir, Options{SegmentBytes: 512})
	if l.First() != 1 || l.Last() != 100 {
		t.Fatalf("reopened: first %d last %d", l.First(), l.Last())
	}
	appendN(t, l, 10)
	replayAll(t, l, 0)
}

func TestNextStartsANewLog(t *testing.T) {
	l := open(t, t.TempDir(), Options{Next: 42})
	if l.First() != 42 || l.Last() != 41 {
		t.Fatalf("first %d last %d", l.First(), l.Last())
	}
	appendN(t, l, 3)
	replayAll(t, l, 41)
	if err := l.Replay(10, func(uint64, []byte) error { return nil }); !errors.Is(err, ErrTruncated) {
		t.Fatalf("replay from before the log's start: %v", err)
	}
}

func TestDropBefore(t *testing.T) {
	dir := t.TempDir()
	l := open(t, dir, Options{SegmentBytes: 256})
	appendN(t, l, 60)
	segs, size := l.Segments(), l.Bytes()
	n, err := l.DropBefore(30)
	if err != nil || n == 0 {
		t.Fatalf("DropBefore = %d, %v", n, err)
	}
	if l.First() > 31 || l.Segments() != segs-n || l.Bytes() >= size {
		t.Fatalf("after dropping %d segments: first %d, %d segments, %d bytes (was %d)", n, l.First(), l.Segments(), l.Bytes(), size)
	}
	replayAll(t, l, 30)
	if _, err := l.DropBefore(1 << 40); err != nil || l.Segments() != 1 {
		t.Fatalf("the tail must stay: %d segments, %v", l.Segments(), err)
	}
	l.Close()
	l = open(t, dir, Options{SegmentBytes: 256})
	appendN(t, l, 1)
	replayAll(t, l, l.First()-1)
}

func lastSegment(t *testing.T, dir string) string {
	t.Helper()
	m, _ := filepath.Glob(filepath.Join(dir, "*.wal"))
	if len(m) == 0 {
		t.Fatal("no segments")
	}
	return m[len(m)-1]
}

func TestTornTailIsCutOff(t *testing.T) {
	for _, tc := range []struct {
		name string
		tear func(t *testing.T, path string)
	}{
		{"half a frame", func(t *testing.T, p string) {
			fi, _ := os.Stat(p)
			if err := os.Truncate(p, fi.Size()-5); err != nil {
				t.Fatal(err)
			}
		}},
		{"half a header", func(t *testing.T, p string) {
			fi, _ := os.Stat(p)
			if err := os.Truncate(p, fi.Size()-int64(len(payload(10)))-9); err != nil {
				t.Fatal(err)
			}
		}},
		{"zeros after the last frame", func(t *testing.T, p string) {
			f, _ := os.OpenFile(p, os.O_APPEND|os.O_WRONLY, 0)
			f.Write(make([]byte, 4096))
			f.Close()
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			l := open(t, dir, Options{})
			appendN(t, l, 10)
			l.Close()
			tc.tear(t, lastSegment(t, dir))
			l = open(t, dir, Options{})
			if tc.name == "zeros after the last frame" {
				if l.Last() != 10 {
					t.Fatalf("last %d, want 10", l.Last())
				}
			} else if l.Last() != 9 {
				t.Fatalf("last %d, want 9 (the torn entry cut off)", l.Last())
			}
			appendN(t, l, 5)
			replayAll(t, l, 0)
		})
	}
}

func TestTornSegmentHeader(t *testing.T) {
	dir := t.TempDir()
	l := open(t, dir, Options{SegmentBytes: 64})
	appendN(t, l, 4)
	l.Close()
	// A crash right after a new segment file was created.
	p := filepath.Join(dir, fmt.Sprintf("%020d.wal", 5))
	if err := os.WriteFile(p, magic[:5], 0o644); err != nil {
		t.Fatal(err)
	}
	l = open(t, dir, Options{SegmentBytes: 64})
	appendN(t, l, 2)
	replayAll(t, l, 0)
}

func flip(t *testing.T, path string, off int64) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var b [1]byte
	if _, err := f.ReadAt(b[:], off); err != nil {
		t.Fatal(err)
	}
	b[0] ^= 0x20
	if _, err := f.WriteAt(b[:], off); err != nil {
		t.Fatal(err)
	}
}

func TestDamageIsAnError(t *testing.T) {
	t.Run("flipped byte in a sealed segment", func(t *testing.T) {
		dir := t.TempDir()
		l := open(t, dir, Options{SegmentBytes: 256})
		appendN(t, l, 40)
		first := filepath.Join(dir, fmt.Sprintf("%020d.wal", 1))
		flip(t, first, headerLen+20)
		_, err := l.Check()
		if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), first) {
			t.Fatalf("Check = %v, want ErrCorrupt naming %s", err, first)
		}
		// Entries past the damage still replay.
		replayAll(t, l, l.Last()-3)
	})
	t.Run("flipped byte in the last frame", func(t *testing.T) {
		dir := t.TempDir()
		l := open(t, dir, Options{})
		appendN(t, l, 10)
		l.Close()
		p := lastSegment(t, dir)
		fi, _ := os.Stat(p)
		flip(t, p, fi.Size()-2)
		if _, err := Open(dir, Options{}); !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "checksum") {
			t.Fatalf("Open = %v, want ErrCorrupt for a failed checksum", err)
		}
		l = open(t, dir, Options{Truncate: true})
		if l.Last() != 9 {
			t.Fatalf("with Truncate, last %d, want 9", l.Last())
		}
	})
	t.Run("missing middle segment", func(t *testing.T) {
		dir := t.TempDir()
		l := open(t, dir, Options{SegmentBytes: 256})
		appendN(t, l, 40)
		m, _ := filepath.Glob(filepath.Join(dir, "*.wal"))
		if len(m) < 3 {
			t.Fatalf("%d segments", len(m))
		}
		l.Close()
		os.Remove(m[1])
		l = open(t, dir, Options{SegmentBytes: 256})
		if _, err := l.Check(); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("Check = %v, want ErrCorrupt for the gap", err)
		}
	})
	t.Run("not a segment", func(t *testing.T) {
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, "junk.wal"), []byte("x"), 0o644)
		if _, err := Open(dir, Options{}); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("Open = %v", err)
		}
	})
}

func TestFailedWriteBreaksTheLog(t *testing.T) {
	l := open(t, t.TempDir(), Options{})
	appendN(t, l, 2)
	l.mu.Lock()
	l.tail.Close() // the next write and the cut after it both fail
	l.mu.Unlock()
	if _, err := l.Append([][]byte{[]byte("x")}); err == nil {
		t.Fatal("append to a closed file succeeded")
	}
	if _, err := l.Append([][]byte{[]byte("y")}); !errors.Is(err, ErrBroken) {
		t.Fatalf("second append: %v, want ErrBroken", err)
	}
	if l.Last() != 2 {
		t.Fatalf("last %d after failed appends", l.Last())
	}
}
