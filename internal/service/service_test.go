package service_test

import (
	"errors"
	"testing"

	"github.com/zhisou/zhisou/index/store/storetest"
	"github.com/zhisou/zhisou/ingest"
	"github.com/zhisou/zhisou/internal/service"
	"github.com/zhisou/zhisou/retrieve"
)

// TestErrors: every kind of failure matches one of the service's sentinels,
// and a refused field is named by a *FieldError, whichever layer refused it.
func TestErrors(t *testing.T) {
	svc, err := service.New(storetest.Open(t), service.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	if _, err := svc.CreateCollection(ctx, service.CollectionSpec{Name: "kb"}); err != nil {
		t.Fatal(err)
	}
	upsert := func(docs ...ingest.Input) error {
		_, err := svc.UpsertDocuments(ctx, service.UpsertRequest{Collection: "kb", Documents: docs})
		return err
	}
	tests := []struct {
		name  string
		err   error
		want  error
		field string // "" when no field is named
	}{
		{"empty document id", upsert(ingest.Input{Content: "x"}), service.ErrInvalid, "documents[0].id"},
		{"empty content", upsert(ingest.Input{ID: "e", Content: " "}), service.ErrInvalid, "documents[0]"},
		{"bad page token", func() error { _, _, err := svc.ListDocuments(ctx, "kb", 0, "!!"); return err }(), service.ErrInvalid, "page_token"},
		{"empty query", func() error {
			_, err := svc.Search(ctx, retrieve.Request{Collection: "kb", Query: " "})
			return err
		}(), service.ErrInvalid, "query"},
		{"top_k over the limit", func() error {
			_, err := svc.Search(ctx, retrieve.Request{Collection: "kb", Query: "价格", TopK: 1 << 20})
			return err
		}(), service.ErrInvalid, "top_k"},
		{"unknown collection", func() error { _, err := svc.GetCollection(ctx, "nope"); return err }(), service.ErrNotFound, ""},
		{"existing collection", func() error {
			_, err := svc.CreateCollection(ctx, service.CollectionSpec{Name: "kb"})
			return err
		}(), service.ErrExists, ""},
		{"rerank required without a reranker", func() error {
			_, err := svc.Search(ctx, retrieve.Request{Collection: "kb", Query: "价格", Rerank: retrieve.RerankRequired})
			return err
		}(), service.ErrUnavailable, ""},
		{"no lexicon", func() error { _, err := svc.ReplaceLexicon(ctx, "kb", nil); return err }(), service.ErrInvalid, "lexicon"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !errors.Is(tt.err, tt.want) {
				t.Fatalf("error %v does not match %v", tt.err, tt.want)
			}
			got := ""
			if fe, ok := errors.AsType[*service.FieldError](tt.err); ok {
				got = fe.Field
			}
			if got != tt.field {
				t.Errorf("error %v names field %q, want %q", tt.err, got, tt.field)
			}
		})
	}
	// The domain error stays in the chain: ingest.Build's reason is there.
	if err := upsert(ingest.Input{ID: "e", Content: " "}); !errors.Is(err, ingest.ErrEmpty) {
		t.Errorf("upsert of an empty document = %v, want it to match ingest.ErrEmpty too", err)
	}
}

// TestListCollectionsPages: the page token resumes after the last name.
func TestListCollectionsPages(t *testing.T) {
	svc, err := service.New(storetest.Open(t), service.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"a", "b", "c"} {
		if _, err := svc.CreateCollection(t.Context(), service.CollectionSpec{Name: n}); err != nil {
			t.Fatal(err)
		}
	}
	var names []string
	token := ""
	for range 4 {
		page, next, err := svc.ListCollections(t.Context(), 2, token)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range page {
			names = append(names, c.Name)
		}
		if token = next; token == "" {
			break
		}
	}
	if got := len(names); got != 3 || names[0] != "a" || names[2] != "c" {
		t.Errorf("ListCollections pages = %v, want [a b c]", names)
	}
}
