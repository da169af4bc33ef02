package grpcapi

import (
	"context"
	"log/slog"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	"github.com/zhisou/zhisou/internal/service"
	retrievalv1 "github.com/zhisou/zhisou/proto/retrieval/v1"
)

// The API key travels in the "authorization" metadata as "Bearer zsk_…"
// (or bare, in "x-api-key"). The interceptors authenticate it and put the
// key in the call's context; the service decides what the key may do. Calls
// of other services (health, reflection) need no key.

// tokenFrom returns the API key of an incoming call, "" when it has none.
func tokenFrom(ctx context.Context) string {
	md, _ := metadata.FromIncomingContext(ctx)
	for _, v := range md.Get("authorization") {
		if tok, ok := strings.CutPrefix(v, "Bearer "); ok {
			return strings.TrimSpace(tok)
		}
	}
	if v := md.Get("x-api-key"); len(v) > 0 {
		return strings.TrimSpace(v[0])
	}
	return ""
}

// authenticate puts the call's key in ctx when it has one; a key that is not
// valid fails the call (UNAUTHENTICATED) even where none is needed.
func authenticate(ctx context.Context, svc *service.Service, fullMethod string) (context.Context, error) {
	if !strings.HasPrefix(fullMethod, "/"+retrievalv1.RetrievalService_ServiceDesc.ServiceName+"/") {
		return ctx, nil
	}
	tok := tokenFrom(ctx)
	if tok == "" {
		return ctx, nil // the service refuses the call if it needs a key
	}
	k, err := svc.Authenticate(ctx, tok)
	if err != nil {
		return nil, err
	}
	return service.WithKey(ctx, k), nil
}

func authUnary(svc *service.Service, logger *slog.Logger) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		ctx, err := authenticate(ctx, svc, info.FullMethod)
		if err != nil {
			return nil, toStatus(logger, err)
		}
		return handler(ctx, req)
	}
}

func authStream(svc *service.Service, logger *slog.Logger) grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		ctx, err := authenticate(ss.Context(), svc, info.FullMethod)
		if err != nil {
			return toStatus(logger, err)
		}
		return handler(srv, &ctxStream{ServerStream: ss, ctx: ctx})
	}
}

// ctxStream is a server stream with the context the interceptor made.
type ctxStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s *ctxStream) Context() context.Context { return s.ctx }

// bearer sends an API key with every call.
type bearer string

func (b bearer) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + string(b)}, nil
}

// RequireTransportSecurity is false: loopback and private networks carry
// keys over plain connections; TLS is the transport's choice.
func (bearer) RequireTransportSecurity() bool { return false }
