// Package grpcapi is the gRPC front door of the service: it converts between
// proto messages and the service's Go types, maps errors to status codes in
// one function, builds the server, and holds the client the command uses.
package grpcapi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	grpcprom "github.com/grpc-ecosystem/go-grpc-middleware/providers/prometheus"
	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/logging"
	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/recovery"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/reflection"
	"google.golang.org/grpc/status"

	"github.com/zhisou/zhisou/internal/service"
	retrievalv1 "github.com/zhisou/zhisou/proto/retrieval/v1"
)

// MaxRecvMsgSize bounds a message either way, on the server and the client.
const MaxRecvMsgSize = 64 << 20

// MaxConcurrentStreams bounds the calls one client connection has open.
const MaxConcurrentStreams = 128

// MaxCallTime bounds a unary call: one that brings no deadline, or a later
// one, gets this one, so that nothing a client forgets runs on. Streams (long
// ingests) are not bounded; keepalive ends those whose client is gone.
const MaxCallTime = 2 * time.Minute

// deadlineUnary gives each unary call at most MaxCallTime.
func deadlineUnary(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	if d, ok := ctx.Deadline(); !ok || time.Until(d) > MaxCallTime {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, MaxCallTime)
		defer cancel()
	}
	return handler(ctx, req)
}

// NewServer builds the whole gRPC server over svc: interceptors (metrics,
// logging, then recovery innermost so a panic becomes INTERNAL and is still
// logged and counted), message size limit, keepalive, health (hs) and
// reflection. The gRPC metrics are registered on reg. extra adds options
// (TLS credentials).
func NewServer(logger *slog.Logger, reg prometheus.Registerer, svc *service.Service, hs *health.Server, extra ...grpc.ServerOption) (*grpc.Server, error) {
	metrics := grpcprom.NewServerMetrics(grpcprom.WithServerHandlingTimeHistogram(
		grpcprom.WithHistogramBuckets([]float64{.0002, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}),
	))
	if err := reg.Register(metrics); err != nil {
		return nil, fmt.Errorf("register gRPC metrics: %w", err)
	}
	logOpts := []logging.Option{logging.WithLogOnEvents(logging.FinishCall), logging.WithLevels(func(c codes.Code) logging.Level {
		switch c {
		case codes.OK, codes.InvalidArgument, codes.NotFound, codes.AlreadyExists, codes.Canceled:
			return logging.LevelDebug
		case codes.Internal, codes.Unknown, codes.DataLoss:
			return logging.LevelError
		}
		return logging.LevelWarn
	})}
	recoverOpt := recovery.WithRecoveryHandler(func(p any) error {
		logger.Error("panic in handler", "panic", fmt.Sprint(p))
		return status.Error(codes.Internal, "internal error")
	})
	opts := append([]grpc.ServerOption{
		grpc.ChainUnaryInterceptor(
			metrics.UnaryServerInterceptor(),
			logging.UnaryServerInterceptor(interceptorLogger(logger), logOpts...),
			recovery.UnaryServerInterceptor(recoverOpt),
			deadlineUnary,
			authUnary(svc, logger),
		),
		grpc.ChainStreamInterceptor(
			metrics.StreamServerInterceptor(),
			logging.StreamServerInterceptor(interceptorLogger(logger), logOpts...),
			recovery.StreamServerInterceptor(recoverOpt),
			authStream(svc, logger),
		),
		grpc.MaxRecvMsgSize(MaxRecvMsgSize),
		// Each stream may hold a message of MaxRecvMsgSize: bound them.
		grpc.MaxConcurrentStreams(MaxConcurrentStreams),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 10 * time.Second, PermitWithoutStream: true}),
		// MaxConnectionAge: clients reconnect now and then, so that those
		// spreading calls over replicas (dns:/// and round_robin) see
		// replicas added since; calls under way get an hour to finish.
		grpc.KeepaliveParams(keepalive.ServerParameters{MaxConnectionIdle: 15 * time.Minute, Time: 2 * time.Minute, Timeout: 20 * time.Second,
			MaxConnectionAge: 5 * time.Minute, MaxConnectionAgeGrace: time.Hour}),
	}, extra...)
	s := grpc.NewServer(opts...)
	retrievalv1.RegisterRetrievalServiceServer(s, Handlers(svc, logger))
	healthpb.RegisterHealthServer(s, hs)
	reflection.Register(s)
	metrics.InitializeMetrics(s)
	return s, nil
}

// invalidStatus is INVALID_ARGUMENT with the offending field, when the
// service named one, as a google.rpc.BadRequest detail: clients read the
// field there instead of parsing the message.
func invalidStatus(err error) error {
	st := status.New(codes.InvalidArgument, err.Error())
	var fe *service.FieldError
	if errors.As(err, &fe) && fe.Field != "" {
		br := &errdetails.BadRequest{FieldViolations: []*errdetails.BadRequest_FieldViolation{{Field: fe.Field, Description: err.Error()}}}
		if d, derr := st.WithDetails(br); derr == nil {
			st = d
		}
	}
	return st.Err()
}

// Handlers returns the RetrievalService implementation over svc, for the
// gRPC server and for doors that call it in process (the HTTP/JSON gateway).
// The caller's key must already be in the context (service.WithKey).
func Handlers(svc *service.Service, logger *slog.Logger) retrievalv1.RetrievalServiceServer {
	return &server{svc: svc, logger: logger}
}

func interceptorLogger(l *slog.Logger) logging.Logger {
	return logging.LoggerFunc(func(ctx context.Context, lvl logging.Level, msg string, fields ...any) {
		l.Log(ctx, slog.Level(lvl), msg, fields...)
	})
}

// ToStatus maps the service's errors to gRPC status codes, for doors that
// answer with them (the HTTP upload).
func ToStatus(logger *slog.Logger, err error) error { return toStatus(logger, err) }

// toStatus maps the service's errors to gRPC status codes, in one place.
// Unknown errors are logged and returned as INTERNAL without detail.
func toStatus(logger *slog.Logger, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return status.FromContextError(err).Err()
	case errors.Is(err, service.ErrInvalid):
		return invalidStatus(err)
	case errors.Is(err, service.ErrNotFound):
		return status.Error(codes.NotFound, err.Error())
	case errors.Is(err, service.ErrExists):
		return status.Error(codes.AlreadyExists, err.Error())
	case errors.Is(err, service.ErrClosed):
		return status.Error(codes.Unavailable, "server is shutting down")
	case errors.Is(err, service.ErrUnavailable):
		return status.Error(codes.Unavailable, err.Error())
	case errors.Is(err, service.ErrResourceExhausted):
		return status.Error(codes.ResourceExhausted, err.Error())
	case errors.Is(err, service.ErrUnauthenticated):
		return status.Error(codes.Unauthenticated, err.Error())
	case errors.Is(err, service.ErrPermissionDenied):
		return status.Error(codes.PermissionDenied, err.Error())
	case errors.Is(err, service.ErrDataLoss):
		logger.Error("data directory damaged; run zhisou verify, then zhisou repair", "err", err)
		return status.Error(codes.DataLoss, "data directory damaged: "+err.Error())
	}
	logger.Error("internal error", "err", err)
	return status.Error(codes.Internal, "internal error")
}
