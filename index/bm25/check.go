package bm25

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"

	segment "github.com/blevesearch/scorch_segment_api/v2"

	"github.com/blevesearch/bleve/v2/index/scorch"

	"github.com/zhisou/zhisou/index"
)

// CheckFiles verifies every segment file the index reads against the CRC-32
// in its last 4 bytes, which zap computes over all the bytes before it
// (zapx persistFooter). Bleve itself never checks it: a flipped byte in a
// segment reads as other postings. A file that fails is an error matching
// index.ErrDamaged that names it.
func (t *Index) CheckFiles() error {
	r, err := t.reader()
	if err != nil {
		return err
	}
	defer r.Close()
	snap, ok := r.(*scorch.IndexSnapshot)
	if !ok {
		return fmt.Errorf("check files: index reader is %T, not a scorch snapshot", r)
	}
	for _, ss := range snap.Segments() {
		seg, ok := ss.Segment().(interface{ Path() string })
		if !ok || seg.Path() == "" {
			continue // in memory, not yet persisted
		}
		if err := checkSegmentFile(seg.Path()); err != nil {
			return fmt.Errorf("%w: bleve segment %s: %w", index.ErrDamaged, seg.Path(), err)
		}
	}
	return nil
}

func checkSegmentFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if fi.Size() < 4 {
		return fmt.Errorf("%d bytes, shorter than its checksum", fi.Size())
	}
	h := crc32.NewIEEE()
	if _, err := io.Copy(h, io.NewSectionReader(f, 0, fi.Size()-4)); err != nil {
		return err
	}
	var want [4]byte
	if _, err := f.ReadAt(want[:], fi.Size()-4); err != nil {
		return err
	}
	if got := h.Sum32(); got != binary.BigEndian.Uint32(want[:]) {
		return errors.New("fails its checksum")
	}
	return nil
}

// HasTerms reports, for each term, whether any chunk holds it (in its
// title, heading or body, or the bigram field for a bigram): a look-up in
// each segment's term dictionary, without reading postings.
func (t *Index) HasTerms(terms []index.QueryTerm) ([]bool, error) {
	r, err := t.reader()
	if err != nil {
		return nil, err
	}
	defer r.Close()
	snap, ok := r.(*scorch.IndexSnapshot)
	if !ok {
		return nil, fmt.Errorf("has terms: index reader is %T, not a scorch snapshot", r)
	}
	has := make([]bool, len(terms))
	for _, ss := range snap.Segments() {
		dicts := map[string]segment.TermDictionary{}
		for _, f := range []string{fieldTitle, fieldHeading, fieldBody, fieldGram} {
			d, err := ss.Segment().Dictionary(f)
			if err != nil {
				return nil, err
			}
			dicts[f] = d
		}
		for i, qt := range terms {
			if has[i] {
				continue
			}
			fields := []string{fieldBody, fieldHeading, fieldTitle}
			if qt.Gram {
				fields = []string{fieldGram}
			}
			for _, f := range fields {
				if dicts[f] == nil {
					continue
				}
				if ok, err := dicts[f].Contains([]byte(qt.Term)); err != nil {
					return nil, err
				} else if ok {
					has[i] = true
					break
				}
			}
		}
	}
	return has, nil
}
