package mcpapi

import (
	"context"
	"errors"
	"log/slog"
	"net/http"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/zhisou/zhisou/internal/grpcapi"
	"github.com/zhisou/zhisou/internal/service"
)

// HTTPHandler serves the tools over MCP's streamable HTTP transport
// (stateless), in process over svc. Each tool call is authenticated from its
// request's Authorization (Bearer) or X-Api-Key header, as on every door.
func HTTPHandler(svc *service.Service, logger *slog.Logger, version string) http.Handler {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	s := NewServer(grpcapi.Handlers(svc, logger), serviceAuth(svc), version)
	return mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return s }, &mcp.StreamableHTTPOptions{Stateless: true})
}

// serviceAuth authenticates a tool call's key with svc.
func serviceAuth(svc *service.Service) Authenticator {
	return func(ctx context.Context, h http.Header) (context.Context, error) {
		tok, bad := service.TokenFromHeader(h)
		if bad != "" {
			return nil, errors.New(bad)
		}
		if tok == "" {
			return ctx, nil // the service refuses the call if it needs a key
		}
		k, err := svc.Authenticate(ctx, tok)
		if err != nil {
			return nil, err
		}
		return service.WithKey(ctx, k), nil
	}
}
