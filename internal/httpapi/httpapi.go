// Package httpapi is the HTTP/JSON door: every RPC of RetrievalService but
// the client stream at the routes of proto/retrieval/v1/retrieval_http.yaml
// (grpc-gateway, calling the gRPC handlers in process, so the JSON door runs
// the same validation and search as gRPC), the Dify External Knowledge API
// at POST /retrieval (dify.go), and /healthz and /readyz.
//
// JSON field names are the proto's (snake_case); unknown fields are an error.
// Errors are JSON: {"code": <gRPC code>, "message": "...", "details": [...]},
// with a google.rpc.BadRequest naming the offending field where there is one,
// and the HTTP status grpc-gateway maps the code to (400, 401, 403, 404, 409,
// 413, 429, 503, 500).
package httpapi

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"mime"
	"net/http"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/zhisou/zhisou/internal/grpcapi"
	"github.com/zhisou/zhisou/internal/service"
	retrievalv1 "github.com/zhisou/zhisou/proto/retrieval/v1"
)

// MaxBodyBytes bounds a request body, as grpcapi.MaxRecvMsgSize bounds a
// gRPC message.
const MaxBodyBytes = grpcapi.MaxRecvMsgSize

// Handler returns the HTTP/JSON door over svc; hs answers /readyz.
func Handler(svc *service.Service, hs *health.Server, logger *slog.Logger) (http.Handler, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	gw := runtime.NewServeMux(
		runtime.WithMarshalerOption(runtime.MIMEWildcard, &runtime.JSONPb{
			MarshalOptions:   protojson.MarshalOptions{UseProtoNames: true, EmitUnpopulated: true},
			UnmarshalOptions: protojson.UnmarshalOptions{DiscardUnknown: false},
		}),
	)
	if err := retrievalv1.RegisterRetrievalServiceHandlerServer(context.Background(), gw, grpcapi.Handlers(svc, logger)); err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.Handle("/v1/", Guard(svc, gw))
	mux.Handle("POST /v1/collections/{collection}/files", guard(svc, upload(svc, logger), false))
	mux.Handle("POST /retrieval", withDeadline(Dify(svc)))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		resp, err := hs.Check(r.Context(), &healthpb.HealthCheckRequest{})
		if err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			http.Error(w, "not serving\n", http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte("serving\n"))
	})
	return mux, nil
}

// Guard admits an HTTP call for h: a body within MaxBodyBytes, JSON when
// there is one, the caller's API key (Authorization: Bearer zsk_…, or
// X-Api-Key) authenticated into the context, and at most
// grpcapi.MaxCallTime to run. What the key may do is the service's to
// decide, as on every door.
func Guard(svc *service.Service, h http.Handler) http.Handler { return guard(svc, h, true) }

// guard is Guard; jsonBody says whether a body must be JSON.
func guard(svc *service.Service, h http.Handler, jsonBody bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength > MaxBodyBytes {
			WriteError(w, http.StatusRequestEntityTooLarge, codes.ResourceExhausted,
				"request body of "+mib(r.ContentLength)+" is over the limit of "+mib(MaxBodyBytes), "")
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, MaxBodyBytes)
		if jsonBody && r.ContentLength != 0 && (r.Method == http.MethodPost || r.Method == http.MethodPut || r.Method == http.MethodPatch) {
			if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
				WriteError(w, http.StatusUnsupportedMediaType, codes.InvalidArgument,
					"Content-Type must be application/json, not "+quote(r.Header.Get("Content-Type")), "")
				return
			}
		}
		ctx := r.Context()
		tok, bad := TokenFrom(r)
		if bad != "" {
			WriteError(w, http.StatusUnauthorized, codes.Unauthenticated, bad, "")
			return
		}
		if tok != "" {
			k, err := svc.Authenticate(ctx, tok)
			if err != nil {
				WriteError(w, http.StatusUnauthorized, codes.Unauthenticated, err.Error(), "")
				return
			}
			ctx = service.WithKey(ctx, k)
		}
		ctx, cancel := context.WithTimeout(ctx, grpcapi.MaxCallTime)
		defer cancel()
		h.ServeHTTP(w, r.WithContext(ctx))
	})
}

// withDeadline gives a call at most grpcapi.MaxCallTime.
func withDeadline(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), grpcapi.MaxCallTime)
		defer cancel()
		h.ServeHTTP(w, r.WithContext(ctx))
	})
}

// TokenFrom returns the API key of an HTTP request (service.TokenFromHeader).
func TokenFrom(r *http.Request) (token, bad string) { return service.TokenFromHeader(r.Header) }

// errorBody is the JSON of an error, as grpc-gateway writes a status.
type errorBody struct {
	Code    codes.Code `json:"code"`
	Message string     `json:"message"`
	Details []any      `json:"details"`
}

// WriteError writes an error as JSON with the HTTP status given; field,
// when not "", is the offending request field.
func WriteError(w http.ResponseWriter, httpStatus int, code codes.Code, msg, field string) {
	body := errorBody{Code: code, Message: msg, Details: []any{}}
	if field != "" {
		body.Details = append(body.Details, map[string]any{
			"@type":            "type.googleapis.com/google.rpc.BadRequest",
			"field_violations": []map[string]string{{"field": field, "description": msg}},
		})
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(httpStatus)
	json.NewEncoder(w).Encode(body) // a failed write to the client changes nothing
}

func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }

func quote(s string) string {
	if s == "" {
		return "none"
	}
	return `"` + s + `"`
}
