package eval

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/zhisou/zhisou/ingest"
)

// Set is a labelled set: queries, judgements, and the corpus to search.
type Set struct {
	Queries []Query
	// Qrels maps a query id to its relevant documents' ids and relevance
	// (1 or more).
	Qrels map[string]map[string]int
	// Corpus is the file or folder to ingest.
	Corpus string
}

// Query is one query of a set.
type Query struct {
	ID, Text string
	// Kind groups queries in the per-kind report (paraphrase, keyword, ...).
	Kind string
}

// LoadSet reads a set folder: queries.jsonl and qrels.tsv, and the corpus at
// corpus (default: DIR/corpus.jsonl). Every query must have a relevant
// document.
func LoadSet(dir, corpus string) (*Set, error) {
	set := &Set{Qrels: map[string]map[string]int{}, Corpus: corpus}
	if set.Corpus == "" {
		set.Corpus = filepath.Join(dir, "corpus.jsonl")
	}
	var err error
	if set.Queries, err = LoadQueries(filepath.Join(dir, "queries.jsonl")); err != nil {
		return nil, fmt.Errorf("eval set: %w", err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "qrels.tsv"))
	if err != nil {
		return nil, fmt.Errorf("eval set: %w", err)
	}
	if err := set.parseQrels(string(b)); err != nil {
		return nil, fmt.Errorf("eval set: %w", err)
	}
	for _, q := range set.Queries {
		if len(set.Qrels[q.ID]) == 0 {
			return nil, fmt.Errorf("eval set: query %s has no relevant document in qrels.tsv", q.ID)
		}
	}
	return set, nil
}

// parseQrels reads qrels.tsv (see ScanQrels); a bad line fails the set.
func (set *Set) parseQrels(text string) error {
	return ScanQrels(strings.NewReader(text), func(line int, qid, docID string, rel int, bad error) error {
		if bad != nil {
			return fmt.Errorf("qrels.tsv line %d: %w", line, bad)
		}
		if set.Qrels[qid] == nil {
			set.Qrels[qid] = map[string]int{}
		}
		set.Qrels[qid][docID] = rel
		return nil
	})
}

// ScanQrels reads qrels.tsv lines, query_id<TAB>doc_id<TAB>relevance, with an
// optional header, calling fn with each judgement (a relevance below 1 is
// not one, and is skipped) or with what is wrong with the line; fn's error
// stops the scan.
func ScanQrels(r io.Reader, fn func(line int, qid, docID string, rel int, bad error) error) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimRight(sc.Text(), "\r")
		if strings.TrimSpace(line) == "" {
			continue
		}
		parts := strings.Split(line, "\t")
		if len(parts) != 3 {
			if err := fn(n, "", "", 0, errors.New("want query_id<TAB>doc_id<TAB>relevance")); err != nil {
				return err
			}
			continue
		}
		rel, err := strconv.Atoi(parts[2])
		if err != nil {
			if n == 1 {
				continue // a header line
			}
			if err := fn(n, "", "", 0, fmt.Errorf("relevance %q: %w", parts[2], err)); err != nil {
				return err
			}
			continue
		}
		if rel < 1 {
			continue
		}
		if err := fn(n, parts[0], parts[1], rel, nil); err != nil {
			return err
		}
	}
	return sc.Err()
}

// LoadQueries reads a queries.jsonl file: {"id", "text", "kind"} per line.
func LoadQueries(path string) ([]Query, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []Query
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for n := 1; sc.Scan(); n++ {
		if strings.TrimSpace(sc.Text()) == "" {
			continue
		}
		var q struct{ ID, Text, Kind string }
		if err := json.Unmarshal(sc.Bytes(), &q); err != nil {
			return nil, fmt.Errorf("%s line %d: %w", filepath.Base(path), n, err)
		}
		if q.ID == "" || strings.TrimSpace(q.Text) == "" {
			return nil, fmt.Errorf("%s line %d: needs id and text", filepath.Base(path), n)
		}
		out = append(out, Query{q.ID, q.Text, q.Kind})
	}
	return out, sc.Err()
}

// checkQrels fails when a judged document is not in the corpus.
func checkQrels(set *Set, inputs []ingest.Input) error {
	ids := map[string]bool{}
	for _, in := range inputs {
		ids[in.ID] = true
	}
	for q, rels := range set.Qrels {
		for d := range rels {
			if !ids[d] {
				return fmt.Errorf("eval set: qrels.tsv judges document %q for query %s, but the corpus has no such document", d, q)
			}
		}
	}
	return nil
}
