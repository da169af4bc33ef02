package service

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/zhisou/zhisou/index"
	"github.com/zhisou/zhisou/index/indextest"
	"github.com/zhisou/zhisou/index/natslog"
	"github.com/zhisou/zhisou/index/natslog/natstest"
	"github.com/zhisou/zhisou/index/store"
	"github.com/zhisou/zhisou/index/store/storetest"
	"github.com/zhisou/zhisou/ingest"
	"github.com/zhisou/zhisou/internal/promtest"
)

// TestStoreMetrics: after writes, the scrape reports the collection's
// documents and chunks, the documents written by outcome, the log position
// with no index lag, and the sizes of the log and Badger.
func TestStoreMetrics(t *testing.T) {
	st := storetest.WithCollections(t, "c")
	reg := prometheus.NewRegistry()
	svc, err := New(st, Options{Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	doc := func(id string) ingest.Input {
		return ingest.Input{ID: id, Format: ingest.Markdown, Content: "# 标题\n\n客户说价格太贵时，先确认预算。"}
	}
	for range 2 { // the second time: unchanged
		if _, err := svc.UpsertDocuments(t.Context(), UpsertRequest{Collection: "c", Documents: []ingest.Input{doc("a"), doc("b")}}); err != nil {
			t.Fatal(err)
		}
	}
	got := promtest.Values(t, reg)
	for key, want := range map[string]float64{
		"zhisou_collection_documents{c}":            2,
		"zhisou_collection_chunks{c}":               2,
		"zhisou_documents_written_total{added}":     2,
		"zhisou_documents_written_total{unchanged}": 2,
		"zhisou_index_lag_records{c}":               0,
		"zhisou_log_first_record":                   1,
	} {
		if got[key] != want {
			t.Errorf("%s = %v, want %v", key, got[key], want)
		}
	}
	for _, key := range []string{"zhisou_log_position", "zhisou_log_bytes"} {
		if got[key] <= 0 {
			t.Errorf("%s = %v, want more than 0", key, got[key])
		}
	}
	if _, ok := got["zhisou_badger_bytes{lsm}"]; !ok {
		t.Error("no zhisou_badger_bytes")
	}
}

// On a shared log the scrape adds the replica's lag in seconds (0 when
// caught up) and the latest snapshot's age.
func TestSharedLogMetrics(t *testing.T) {
	srv := natstest.Server(t)
	l, err := natslog.Open(t.Context(), natstest.Conn(t, srv), natslog.Config{})
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(t.Context(), t.TempDir(), indextest.Analyzer(t), store.Options{Log: l})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.CreateCollection(t.Context(), index.DefaultCollection("c")); err != nil {
		t.Fatal(err)
	}
	taken := time.Now().Add(-time.Hour)
	if _, err := l.PutSnapshot(t.Context(), natslog.Manifest{Position: st.Pos(), Format: 2, Dict: "embedded", Taken: taken}, strings.NewReader("x")); err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	if _, err := New(st, Options{Registerer: reg}); err != nil {
		t.Fatal(err)
	}
	got := promtest.Values(t, reg)
	if age := got["zhisou_snapshot_age_seconds"]; age < 3590 || age > 3700 {
		t.Errorf("zhisou_snapshot_age_seconds = %v; want about 3600", age)
	}
	for _, key := range []string{"zhisou_replica_lag_seconds", "zhisou_replica_lag_records"} {
		if v, ok := got[key]; !ok || v != 0 {
			t.Errorf("%s = %v (reported %v); want 0, caught up", key, v, ok)
		}
	}
}
