package service

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/zhisou/zhisou/index"
	"github.com/zhisou/zhisou/index/indextest"
	"github.com/zhisou/zhisou/index/store/storetest"
	"github.com/zhisou/zhisou/ingest"
)

// TestWriteBudget: a write waits for its share of the bytes in flight and,
// when it does not get it in time, is refused with ErrResourceExhausted;
// once the budget is free, it goes through.
func TestWriteBudget(t *testing.T) {
	st := storetest.WithCollections(t, "c")
	svc, err := New(st, Options{MaxWriteBytes: 1 << 10})
	if err != nil {
		t.Fatal(err)
	}
	svc.writeWait = 50 * time.Millisecond
	req := UpsertRequest{Collection: "c", Documents: []ingest.Input{{ID: "d", Format: ingest.Markdown, Content: "# 标题\n\n客户说价格太贵时，先确认预算。"}}}
	if err := svc.writes.Acquire(t.Context(), svc.writeBudget); err != nil { // the budget taken by other writes
		t.Fatal(err)
	}
	_, err = svc.UpsertDocuments(t.Context(), req)
	if !errors.Is(err, ErrResourceExhausted) || !strings.Contains(err.Error(), "retry") {
		t.Fatalf("UpsertDocuments with the budget taken = %v; want ErrResourceExhausted with a retry hint", err)
	}
	svc.writes.Release(svc.writeBudget)
	if _, err := svc.UpsertDocuments(t.Context(), req); err != nil {
		t.Fatalf("UpsertDocuments with the budget free: %v", err)
	}
	// A write larger than the whole budget takes all of it, alone.
	req.Documents[0].Content += strings.Repeat("培训的目标是安全生产。", 200)
	if _, err := svc.UpsertDocuments(t.Context(), req); err != nil {
		t.Fatalf("UpsertDocuments larger than the budget: %v", err)
	}
}

// TestKeyRate: a key over its rate is refused with ErrResourceExhausted and
// a retry delay; another key is not affected.
func TestKeyRate(t *testing.T) {
	st := storetest.WithCollections(t, "c")
	svc, err := New(st, Options{RequireAuth: true, KeyRate: 0.5, KeyBurst: 2})
	if err != nil {
		t.Fatal(err)
	}
	_, k1, _ := st.CreateKey("one", index.RoleRead, []string{"*"})
	_, k2, _ := st.CreateKey("two", index.RoleRead, []string{"*"})
	ctx1, ctx2 := WithKey(t.Context(), &k1), WithKey(t.Context(), &k2)
	for i := range 2 {
		if _, err := svc.GetCollection(ctx1, "c"); err != nil {
			t.Fatalf("call %d within the burst: %v", i+1, err)
		}
	}
	_, err = svc.GetCollection(ctx1, "c")
	if !errors.Is(err, ErrResourceExhausted) || !strings.Contains(err.Error(), "retry after") {
		t.Fatalf("call over the rate = %v; want ErrResourceExhausted with a retry delay", err)
	}
	if _, err := svc.GetCollection(ctx2, "c"); err != nil {
		t.Errorf("another key's call: %v", err)
	}
	// Listing checks each collection's visibility, but counts as one call.
	if _, _, err := svc.ListCollections(ctx2, 0, ""); err != nil {
		t.Errorf("another key's second call: %v", err)
	}
}

// TestKeyWriteBytes: a key over its rate of bytes written is refused with
// ErrResourceExhausted and a retry delay, before its write takes any of the
// budget; another key is not affected; a write larger than the burst is
// refused, saying to split it.
func TestKeyWriteBytes(t *testing.T) {
	st := storetest.WithCollections(t, "c")
	svc, err := New(st, Options{RequireAuth: true, KeyWriteBytes: 100, KeyWriteBurst: 4 << 10})
	if err != nil {
		t.Fatal(err)
	}
	_, k1, _ := st.CreateKey("one", index.RoleWrite, []string{"*"})
	_, k2, _ := st.CreateKey("two", index.RoleWrite, []string{"*"})
	ctx1, ctx2 := WithKey(t.Context(), &k1), WithKey(t.Context(), &k2)
	doc := func(id string, n int) UpsertRequest {
		return UpsertRequest{Collection: "c", Documents: []ingest.Input{{ID: id, Format: ingest.Markdown, Content: "# 标题\n\n" + strings.Repeat("培训", n)}}}
	}
	if _, err := svc.UpsertDocuments(ctx1, doc("a", 500)); err != nil { // 3 KB of the 4 KiB burst
		t.Fatal(err)
	}
	_, err = svc.UpsertDocuments(ctx1, doc("b", 500))
	if !errors.Is(err, ErrResourceExhausted) || !strings.Contains(err.Error(), "retry after") || !strings.Contains(err.Error(), "bytes a second") {
		t.Fatalf("a second 3 KB write at 100 B/s = %v; want ErrResourceExhausted with a retry delay", err)
	}
	if _, err := svc.UpsertDocuments(ctx2, doc("c", 500)); err != nil {
		t.Fatalf("another key's write: %v", err)
	}
	_, err = svc.UpsertDocuments(ctx2, doc("d", 2000))
	if !errors.Is(err, ErrResourceExhausted) || !strings.Contains(err.Error(), "split it") {
		t.Fatalf("a 12 KB write over the 4 KiB burst = %v; want it refused, saying to split it", err)
	}
	if svc.writes.TryAcquire(svc.writeBudget) {
		svc.writes.Release(svc.writeBudget)
	} else {
		t.Error("a refused write kept part of the write budget")
	}
}

// TestLearnRate: pairs sent to Learn count against the key's allowance (on a
// server without keys, the collection's): a flood from one client is refused
// with a retry delay, another client is not affected.
func TestLearnRate(t *testing.T) {
	st := storetest.WithCollections(t, "c", "d")
	docs := []index.Document{indextest.Doc("a", "劳动合同法", "用人单位未及时足额支付劳动报酬的，劳动者可以解除劳动合同。")}
	for _, c := range []string{"c", "d"} {
		if _, err := st.Upsert(t.Context(), c, docs); err != nil {
			t.Fatal(err)
		}
	}
	svc, err := New(st, Options{LearnRate: 1})
	if err != nil {
		t.Fatal(err)
	}
	pair := []index.Pair{{Question: "老板不给钱怎么办", ChunkID: "a"}}
	// The burst is two full calls' worth: 2000 pairs at once pass, then
	// the allowance is spent.
	big := make([]index.Pair, 1000)
	for i := range big {
		big[i] = index.Pair{Question: fmt.Sprintf("第%d问：老板不给钱怎么办", i), ChunkID: "a"}
	}
	for i := range 2 {
		if _, err := svc.Learn(t.Context(), "c", big, false, true); err != nil {
			t.Fatalf("call %d within the burst: %v", i+1, err)
		}
	}
	_, err = svc.Learn(t.Context(), "c", pair, false, false)
	if !errors.Is(err, ErrResourceExhausted) || !strings.Contains(err.Error(), "collection c is over its rate of 1 pairs a second; retry after") {
		t.Fatalf("a flood = %v; want ErrResourceExhausted naming the collection and a retry delay", err)
	}
	if _, err := svc.Learn(t.Context(), "d", pair, false, false); err != nil {
		t.Errorf("another collection: %v", err)
	}
	// With no limit (negative), the same flood passes.
	open, err := New(st, Options{LearnRate: -1})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if _, err := open.Learn(t.Context(), "c", big, false, true); err != nil {
			t.Fatalf("unlimited, call %d: %v", i+1, err)
		}
	}
}
