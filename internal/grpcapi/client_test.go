package grpcapi_test

import (
	"context"
	"net"
	"sync/atomic"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/zhisou/zhisou/internal/grpcapi"
	retrievalv1 "github.com/zhisou/zhisou/proto/retrieval/v1"
)

// flaky answers UNAVAILABLE to every other Search.
type flaky struct {
	retrievalv1.UnimplementedRetrievalServiceServer
	calls atomic.Int32
}

func (f *flaky) Search(context.Context, *retrievalv1.SearchRequest) (*retrievalv1.SearchResponse, error) {
	if f.calls.Add(1)%2 == 1 {
		return nil, status.Error(codes.Unavailable, "busy")
	}
	return &retrievalv1.SearchResponse{}, nil
}

func serveFake(t *testing.T, srv retrievalv1.RetrievalServiceServer) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer()
	retrievalv1.RegisterRetrievalServiceServer(gs, srv)
	go gs.Serve(lis)
	t.Cleanup(gs.Stop)
	return lis.Addr().String()
}

// TestDialRetriesAndSpreads: a call that gets UNAVAILABLE is tried again;
// with several addresses, one that does not answer is passed over and calls
// reach the others.
func TestDialRetriesAndSpreads(t *testing.T) {
	f := &flaky{}
	addr := serveFake(t, f)
	conn, c, err := grpcapi.Dial(addr, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for i := range 3 {
		if _, err := c.Search(t.Context(), &retrievalv1.SearchRequest{Collection: "kb", Query: "q"}); err != nil {
			t.Fatalf("search %d through a server that fails every other call: %v", i, err)
		}
	}
	if n := f.calls.Load(); n != 6 {
		t.Errorf("the server saw %d calls for 3 searches, want 6 (each retried once)", n)
	}

	a, b := &flaky{}, &flaky{}
	dead, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadAddr := dead.Addr().String()
	dead.Close()
	conn2, c2, err := grpcapi.Dial(serveFake(t, a)+","+deadAddr+","+serveFake(t, b), "", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer conn2.Close()
	for i := range 10 {
		if _, err := c2.Search(t.Context(), &retrievalv1.SearchRequest{Collection: "kb", Query: "q"}); err != nil {
			t.Fatalf("search %d over three addresses, one dead: %v", i, err)
		}
	}
	if a.calls.Load() == 0 || b.calls.Load() == 0 {
		t.Errorf("calls were not spread: %d and %d", a.calls.Load(), b.calls.Load())
	}
	if _, _, err := grpcapi.Dial("a:1,,b:2", "", nil); err == nil {
		t.Error("an empty address in the list was accepted")
	}
}
