package natslog_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/zhisou/zhisou/index"
	"github.com/zhisou/zhisou/index/natslog"
	"github.com/zhisou/zhisou/index/natslog/natstest"
)

func openLog(t *testing.T, srv *server.Server, cfg natslog.Config) *natslog.Log {
	t.Helper()
	l, err := natslog.Open(t.Context(), natstest.Conn(t, srv), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	return l
}

func deletes(coll string, ids ...string) []index.Record {
	var recs []index.Record
	for _, id := range ids {
		recs = append(recs, index.Record{Op: index.OpDelete, Collection: coll, DocID: id})
	}
	return recs
}

func replay(t *testing.T, l *natslog.Log, after uint64) []index.Record {
	t.Helper()
	var got []index.Record
	if err := l.Replay(t.Context(), after, func(r index.Record) error {
		got = append(got, r)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return got
}

// Two nodes append to one stream; each reads back every record, in order, with
// the positions Append gave, whether it reads a few (one by one) or many (a
// consumer).
func TestAppendReplay(t *testing.T) {
	srv := natstest.Server(t)
	a := openLog(t, srv, natslog.Config{})
	b := openLog(t, srv, natslog.Config{})
	if a.ID() != b.ID() || !strings.HasPrefix(a.ID(), "nats:ZHISOU@") {
		t.Fatalf("IDs %q and %q: want one stream's", a.ID(), b.ID())
	}
	var want []string
	for i := range 30 {
		l := a
		if i%3 == 0 {
			l = b
		}
		recs := deletes("c", fmt.Sprintf("d%d-0", i), fmt.Sprintf("d%d-1", i))
		last, err := l.Append(t.Context(), recs)
		if err != nil {
			t.Fatal(err)
		}
		if recs[0].Seq == 0 || recs[1].Seq <= recs[0].Seq || last != recs[1].Seq {
			t.Fatalf("append %d: positions %d, %d, last %d", i, recs[0].Seq, recs[1].Seq, last)
		}
		for _, r := range recs {
			want = append(want, fmt.Sprintf("%d:%s", r.Seq, r.DocID))
		}
	}
	if a.First() != 1 || b.Last() != 60 {
		t.Fatalf("First %d, Last %d; want 1 and 60", a.First(), b.Last())
	}
	for _, after := range []uint64{0, 50, 59, 60} {
		var got []string
		for _, r := range replay(t, b, after) {
			got = append(got, fmt.Sprintf("%d:%s", r.Seq, r.DocID))
		}
		if fmt.Sprint(got) != fmt.Sprint(want[after:]) {
			t.Fatalf("replay after %d = %v; want %v", after, got, want[after:])
		}
	}
}

// An Append is announced to the other nodes.
func TestChanged(t *testing.T) {
	srv := natstest.Server(t)
	a := openLog(t, srv, natslog.Config{})
	b := openLog(t, srv, natslog.Config{})
	if _, err := a.Append(t.Context(), deletes("c", "x")); err != nil {
		t.Fatal(err)
	}
	select {
	case <-b.Changed():
	case <-time.After(5 * time.Second):
		t.Fatal("no notice of another node's append in 5 s")
	}
}

// A stream of the same name made by another application is not taken over.
func TestForeignStream(t *testing.T) {
	srv := natstest.Server(t)
	js, err := jetstream.New(natstest.Conn(t, srv))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.CreateStream(t.Context(), jetstream.StreamConfig{Name: "ZHISOU", Subjects: []string{"orders.>"}}); err != nil {
		t.Fatal(err)
	}
	_, err = natslog.Open(t.Context(), natstest.Conn(t, srv), natslog.Config{})
	if !errors.Is(err, index.ErrInvalid) || !strings.Contains(err.Error(), "orders.>") || !strings.Contains(err.Error(), "-nats-stream") {
		t.Fatalf("Open on another application's stream = %v; want ErrInvalid naming its subjects and -nats-stream", err)
	}
	if _, err := natslog.Open(t.Context(), natstest.Conn(t, srv), natslog.Config{Stream: "ZHISOU2"}); err != nil {
		t.Fatalf("Open with a stream of its own: %v", err)
	}
}

// A record above the server's max_payload is refused before anything is
// published, naming the document and the limit.
func TestRecordTooLarge(t *testing.T) {
	srv := natstest.ServerOpts(t, &server.Options{MaxPayload: 8 << 10})
	l := openLog(t, srv, natslog.Config{})
	big := index.Document{ID: "big", Title: "t", Chunks: []index.Chunk{{ID: "big#0", DocID: "big", Text: strings.Repeat("很长的文字", 2000)}}}
	recs := append(deletes("c", "small"), index.Record{Op: index.OpUpsert, Collection: "c", Doc: &big})
	_, err := l.Append(t.Context(), recs)
	if !errors.Is(err, index.ErrInvalid) || !strings.Contains(err.Error(), "c/big") || !strings.Contains(err.Error(), "max_payload") {
		t.Fatalf("Append of a 30 KB record under an 8 KB max_payload = %v; want ErrInvalid naming c/big and max_payload", err)
	}
	if got := replay(t, l, 0); len(got) != 0 {
		t.Fatalf("the stream holds %d records after a refused append; want none", len(got))
	}
}

// With its server gone, Append fails with ErrUnavailable once its time is up,
// instead of hanging.
func TestAppendUnavailable(t *testing.T) {
	srv := natstest.Server(t)
	l := openLog(t, srv, natslog.Config{AppendTimeout: 700 * time.Millisecond})
	srv.Shutdown()
	start := time.Now()
	_, err := l.Append(context.Background(), deletes("c", "x"))
	if !errors.Is(err, index.ErrUnavailable) || !strings.Contains(err.Error(), "may still be applied") {
		t.Fatalf("Append with the server down = %v; want ErrUnavailable saying the write may still be applied", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("Append took %v with a 700 ms timeout", d)
	}
}

// A message on the log's subjects that is not a record (another program), or
// one of a newer schema, reaches the store as an op it does not know, to be set
// aside, rather than stopping the replay.
func TestUndecodable(t *testing.T) {
	srv := natstest.Server(t)
	l := openLog(t, srv, natslog.Config{})
	nc := natstest.Conn(t, srv)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(t.Context(), "zhisou.log.c", []byte("not json")); err != nil {
		t.Fatal(err)
	}
	newer := nats.NewMsg("zhisou.log.c")
	newer.Data = []byte(`{"op":"delete","collection":"c","doc_id":"x"}`)
	newer.Header.Set("Zhisou-Schema", "2")
	if _, err := js.PublishMsg(t.Context(), newer); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Append(t.Context(), deletes("c", "after")); err != nil {
		t.Fatal(err)
	}
	got := replay(t, l, 0)
	if len(got) != 3 || !strings.HasPrefix(string(got[0].Op), "undecodable") || got[0].Seq != 1 ||
		!strings.Contains(string(got[1].Op), "schema 2") || got[1].DocID != "" || got[2].DocID != "after" {
		t.Fatalf("replay = %+v; want an undecodable op at 1, a newer schema's at 2 (not applied as a delete), then the delete", got)
	}
}
