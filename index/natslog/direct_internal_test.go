package natslog

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/zhisou/zhisou/index"
)

// gappyStream is a stream whose leader cannot find record missing (a leader
// just elected that has not applied it yet, or a purged head), and whose
// head is first.
type gappyStream struct {
	jetstream.Stream // not called
	first, last      uint64
	missing          uint64
}

func (s *gappyStream) GetMsg(_ context.Context, seq uint64, _ ...jetstream.GetMsgOpt) (*jetstream.RawStreamMsg, error) {
	if seq == s.missing || seq < s.first {
		return nil, jetstream.ErrMsgNotFound
	}
	b, _ := json.Marshal(index.Record{Op: index.OpDelete, Collection: "kb", DocID: "d"})
	return &jetstream.RawStreamMsg{Sequence: seq, Data: b}, nil
}

func (s *gappyStream) Info(context.Context, ...jetstream.StreamInfoOpt) (*jetstream.StreamInfo, error) {
	return &jetstream.StreamInfo{State: jetstream.StreamState{FirstSeq: s.first, LastSeq: s.last}}, nil
}

// TestDirectNeverSkipsACommittedRecord: a record the stream's leader cannot
// find is skipped only when the stream's head was purged past it; otherwise
// reading stops there (unavailable, to be tried again), and no later record
// is delivered before it.
func TestDirectNeverSkipsACommittedRecord(t *testing.T) {
	for _, tt := range []struct {
		name      string
		first     uint64
		wantErr   bool
		delivered []uint64
	}{
		{"not applied yet", 1, true, []uint64{1, 2, 3, 4}},
		{"purged", 6, false, []uint64{6, 7, 8, 9, 10}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			l := &Log{stream: &gappyStream{first: tt.first, last: 40, missing: 5}, cfg: Config{AppendTimeout: DefaultAppendTimeout}}
			var got []uint64
			err := l.direct(context.Background(), 1, 40, func(r index.Record) error {
				got = append(got, r.Seq)
				return nil
			})
			if tt.wantErr != (err != nil) || (err != nil && !errors.Is(err, index.ErrUnavailable)) {
				t.Fatalf("direct = %v, want an error: %v (unavailable)", err, tt.wantErr)
			}
			if len(got) < len(tt.delivered) || !slices.Equal(got[:len(tt.delivered)], tt.delivered) || (tt.wantErr && len(got) != len(tt.delivered)) {
				t.Errorf("delivered %v, want %v first", got, tt.delivered)
			}
		})
	}
}
