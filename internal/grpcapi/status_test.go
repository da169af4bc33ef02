package grpcapi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/zhisou/zhisou/index"
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
