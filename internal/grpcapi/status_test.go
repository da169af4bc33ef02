package grpcapi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/zhisou/zhisou/index"
	"github.com/zhisou/zhisou/ingest"
	"github.com/zhisou/zhisou/internal/service"
)

// TestToStatus: each kind of service error maps to its gRPC code, and the
// message is kept except for internal errors.
func TestToStatus(t *testing.T) {
	for _, tc := range []struct {
		err  error
		code codes.Code
	}{
		{nil, codes.OK},
		{context.Canceled, codes.Canceled},
		{context.DeadlineExceeded, codes.DeadlineExceeded},
		{service.Invalid("query", "query: empty"), codes.InvalidArgument},
		{fmt.Errorf("x: %w", service.ErrNotFound), codes.NotFound},
		{fmt.Errorf("x: %w", service.ErrExists), codes.AlreadyExists},
		{fmt.Errorf("x: %w", service.ErrClosed), codes.Unavailable},
		{fmt.Errorf("x: %w", service.ErrUnavailable), codes.Unavailable},
		{fmt.Errorf("x: %w", service.ErrResourceExhausted), codes.ResourceExhausted},
		{fmt.Errorf("x: %w", service.ErrUnauthenticated), codes.Unauthenticated},
		{fmt.Errorf("x: %w", service.ErrPermissionDenied), codes.PermissionDenied},
		{fmt.Errorf("x: %w: %w", service.ErrDataLoss, index.ErrDamaged), codes.DataLoss},
		{errors.New("secret detail"), codes.Internal},
	} {
		st := status.Convert(toStatus(slog.New(slog.DiscardHandler), tc.err))
		if st.Code() != tc.code {
			t.Errorf("toStatus(%v) = %v, want %v", tc.err, st.Code(), tc.code)
		}
		if tc.code == codes.Internal && st.Message() != "internal error" {
			t.Errorf("an internal error's detail reached the client: %q", st.Message())
		}
	}
}

// TestDeadlineUnary: a unary call without a deadline, or with a later one,
// runs under MaxCallTime; an earlier deadline is kept.
func TestDeadlineUnary(t *testing.T) {
	deadlineOf := func(ctx context.Context) time.Duration {
		var got time.Duration
		deadlineUnary(ctx, nil, nil, func(ctx context.Context, _ any) (any, error) {
			d, ok := ctx.Deadline()
			if !ok {
				t.Fatal("no deadline in the handler")
			}
			got = time.Until(d)
			return nil, nil
		})
		return got
	}
	if d := deadlineOf(t.Context()); d > MaxCallTime || d < MaxCallTime-time.Minute {
		t.Errorf("no deadline: the handler got %v, want about %v", d, MaxCallTime)
	}
	late, cancel := context.WithTimeout(t.Context(), time.Hour)
	defer cancel()
	if d := deadlineOf(late); d > MaxCallTime {
		t.Errorf("an hour's deadline: the handler got %v, want at most %v", d, MaxCallTime)
	}
	early, cancel2 := context.WithTimeout(t.Context(), time.Second)
	defer cancel2()
	if d := deadlineOf(early); d > time.Second {
		t.Errorf("a second's deadline: the handler got %v", d)
	}
}

// TestInvalidStatusNamesTheField: INVALID_ARGUMENT carries the offending
// field as a google.rpc.BadRequest detail, so clients need not parse the
// message.
func TestInvalidStatusNamesTheField(t *testing.T) {
	st := status.Convert(toStatus(slog.New(slog.DiscardHandler), service.Invalid("documents[2].id", "documents[2].id: empty")))
	var fields []string
	for _, d := range st.Details() {
		if br, ok := d.(*errdetails.BadRequest); ok {
			for _, v := range br.GetFieldViolations() {
				fields = append(fields, v.GetField())
			}
		}
	}
	if st.Code() != codes.InvalidArgument || len(fields) != 1 || fields[0] != "documents[2].id" {
		t.Errorf("status %v with fields %v; want INVALID_ARGUMENT naming documents[2].id", st, fields)
	}
}

// TestClientErr: what the command-line clients make of a server's codes; a
// server that refuses writes for now (RESOURCE_EXHAUSTED: its write budget,
// rate limits, or disk; UNAVAILABLE from its shared write log) is a busy sink, which ingest waits for, with the
// server's own message kept.
func TestClientErr(t *testing.T) {
	tests := []struct {
		code codes.Code
		want error
	}{
		{codes.ResourceExhausted, ingest.ErrSinkBusy},
		{codes.Unavailable, ingest.ErrSinkUnavailable},
		{codes.NotFound, index.ErrNotFound},
		{codes.InvalidArgument, index.ErrInvalid},
		{codes.DeadlineExceeded, context.DeadlineExceeded},
	}
	for _, tt := range tests {
		err := ClientErr("10.0.0.1:7700", status.Error(tt.code, "the server is busy writing; retry in a few seconds"))
		if !errors.Is(err, tt.want) {
			t.Errorf("%v: %v, want %v", tt.code, err, tt.want)
		}
		if tt.code == codes.ResourceExhausted && (!strings.Contains(err.Error(), "10.0.0.1:7700") || !strings.Contains(err.Error(), "busy writing")) {
			t.Errorf("%v: %q, want the server and its message", tt.code, err)
		}
	} // A replica whose shared log did not answer is a live server, busy for
	// now: ingest waits and sends again (the write is idempotent).
	err := ClientErr("10.0.0.1:7700", status.Error(codes.Unavailable, index.ErrUnavailable.Error()+": the NATS stream ZHISOU did not store upsert kb/a within 10s"))
	if !errors.Is(err, ingest.ErrSinkBusy) || !strings.Contains(err.Error(), "10.0.0.1:7700") || !strings.Contains(err.Error(), "NATS stream") {
		t.Errorf("UNAVAILABLE from a replica's log: %v; want a busy sink naming the server and the stream", err)
	}
}
