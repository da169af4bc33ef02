package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/zhisou/zhisou/index"
	"github.com/zhisou/zhisou/index/natslog"
	"github.com/zhisou/zhisou/index/store"
	"github.com/zhisou/zhisou/ingest"
	"github.com/zhisou/zhisou/internal/console"
	"github.com/zhisou/zhisou/internal/grpcapi"
	"github.com/zhisou/zhisou/internal/httpapi"
	"github.com/zhisou/zhisou/internal/mcpapi"
	"github.com/zhisou/zhisou/internal/service"
	"github.com/zhisou/zhisou/retrieve"
)

func cmdServe(ctx context.Context, env *cmdEnv, args []string) error {
	fs := flag.NewFlagSet("zhisou serve", flag.ContinueOnError)
	var c common
	c.register(fs)
	demo := fs.String("demo", "", "folder to ingest into -collection when that collection is empty (the README uses testdata/courses)")
	grace := fs.Duration("shutdown-grace", 10*time.Second, "how long in-flight calls may finish after SIGTERM")
	httpAddr := fs.String("http-addr", defaultHTTPAddr, "serve the HTTP/JSON API (docs/openapi.swagger.yaml) and /healthz, /readyz on ADDR (off when empty); the default is skipped with a warning when its port is taken")
	metricsAddr := fs.String("metrics-addr", "", "also serve Prometheus metrics and /backup on a listener of their own, http://ADDR (off when empty; with keys, an admin key is needed); the HTTP port serves /metrics too")
	maxWrite := fs.Int64("max-write-mb", service.DefaultMaxWriteBytes>>20, "MiB of document text written at once, all calls together (building a document takes some hundred times its text in memory); a write that cannot get its share within 10 s is refused with RESOURCE_EXHAUSTED")
	keyRate := fs.Float64("key-rate", 0, "calls a second each API key may make (0: no limit); over it, RESOURCE_EXHAUSTED with the time to retry")
	keyBurst := fs.Int("key-burst", 20, "calls an API key may make at once within -key-rate")
	learnRate := fs.Float64("learn-rate", service.DefaultLearnRate, "labelled pairs a second each API key (without keys, each collection) may send to Learn, in bursts of 2000; over it, RESOURCE_EXHAUSTED with the time to retry (negative: no limit)")
	keyWrite := fs.Float64("key-write-mb", 0, "MiB of document text a second each API key may write (0: no limit); over it, RESOURCE_EXHAUSTED with the time to retry")
	keyWriteBurst := fs.Int("key-write-burst-mb", 64, "MiB of document text an API key may write at once within -key-write-mb")
	tlsClientCA := fs.String("tls-client-ca", "", "with -tls-cert: require client certificates signed by the CA(s) in this PEM file (mTLS)")
	var memory memoryBudget
	fs.Var(&memory, "memory", "the memory the server may use, such as 1GiB (sets the Go runtime's soft limit, GOMEMLIMIT); a data directory whose collections need more than 70% of it once open is refused at start, naming what they need")
	adminKey := fs.String("admin-key", "", "a key token (zhisou keys token makes one) that becomes the first admin key of a store that never had a key; better given as ZHISOU_ADMIN_KEY, which ps does not show. For containers and clusters, where no one can run keys create before the servers are up")
	insecureAddr := fs.Bool("insecure", false, "serve a non-loopback -addr without API keys: anyone who reaches it may read, write and delete every collection")
	var nf natsServerFlags
	nf.register(fs)
	snapEvery := fs.Duration("snapshot-every", 0, "with -nats: store a snapshot of this replica in the log's object store this often (0: never), and let the log drop the records the previous one held; a new replica starts from the latest (one node is enough; others skip when it is newer)")
	maxLag := fs.Uint64("max-lag", 1000, "with -nats: the health check says NOT_SERVING while this node is more than this many log records behind (catching up), so that load balancers send reads elsewhere")
	var rf rerankFlags
	rf.register(fs)
	var ef enrichFlags
	ef.register(fs)
	fs.Usage = func() {
		fmt.Fprintf(env.stderr, "usage: zhisou serve [-addr 127.0.0.1:7700] [-store DIR] [-demo FOLDER]\n\n")
		fs.PrintDefaults()
	}
	if err := env.parse(fs, args); err != nil {
		return err
	}
	logger, err := env.logger(&c)
	if err != nil {
		return err
	}
	reranker, err := rf.build(env.getenv)
	if err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	enricher, err := ef.build(env.getenv, logger)
	if err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	c.enricher = storeEnricher(enricher)
	start := time.Now()
	// Listen first: a busy port is reported before seconds of loading.
	lis, err := net.Listen("tcp", c.addr)
	if err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	defer lis.Close()
	hl, err := listenHTTP(*httpAddr, isSet(fs, "http-addr"), logger)
	if err != nil {
		return err
	}
	if hl != nil {
		defer hl.Close()
	}
	memory.apply(logger)
	c.memoryBytes = memory.bytes
	if nf.listen != "" {
		ns, err := nf.start(c.store, c.natsToken, logger)
		if err != nil {
			return fmt.Errorf("serve: %w", err)
		}
		defer func() {
			ns.Shutdown()
			ns.WaitForShutdown()
		}()
		if c.nats == "" {
			c.nats = ns.ClientURL()
		}
	}
	st, err := env.openStore(ctx, &c, logger)
	if err != nil {
		return err
	}
	defer func() {
		if err := st.Close(); err != nil {
			logger.Error("close store", "err", err)
		}
	}()
	if *demo != "" {
		if err := loadDemo(ctx, env, st, c.collection, *demo); err != nil {
			return err
		}
	}
	if err := memory.settle(logger); err != nil {
		return err
	}
	if *adminKey != "" {
		adopted, err := st.AdoptFirstKey(*adminKey, "admin (from -admin-key)")
		if err != nil {
			return fmt.Errorf("serve: -admin-key: %w", err)
		}
		if adopted {
			logger.Info("the store had no key: -admin-key is now its first admin key")
		}
	}
	requireAuth, err := authMode(st, lis.Addr(), *insecureAddr, logger)
	if err != nil {
		return err
	}
	if hl != nil {
		httpAuth, err := authMode(st, hl.Addr(), *insecureAddr, logger)
		if err != nil {
			return err
		}
		requireAuth = requireAuth || httpAuth
	}
	hs := health.NewServer()
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if enricher != nil {
		reg.MustRegister(enricher) // zhisou_enrich_*
	}
	svc, err := service.New(st, service.Options{Retrieve: retrieve.Options{Reranker: reranker}, Logger: logger, Registerer: reg, RequireAuth: requireAuth,
		MaxWriteBytes: *maxWrite << 20, KeyRate: *keyRate, KeyBurst: *keyBurst, LearnRate: *learnRate,
		KeyWriteBytes: *keyWrite * (1 << 20), KeyWriteBurst: *keyWriteBurst << 20})
	if err != nil {
		return err
	}
	var extra []grpc.ServerOption
	if c.tlsCert != "" || c.tlsKey != "" {
		stls, err := grpcapi.NewServerTLS(c.tlsCert, c.tlsKey, *tlsClientCA)
		if err != nil {
			return fmt.Errorf("serve: %w", err)
		}
		extra = append(extra, grpc.Creds(credentials.NewTLS(stls.Config())))
		if hl != nil {
			hl = tls.NewListener(hl, stls.Config())
		}
		go reloadOnHangup(ctx, stls, logger)
	} else if *tlsClientCA != "" {
		return errors.New("serve: -tls-client-ca needs -tls-cert and -tls-key")
	} else if requireAuth && !isLoopback(lis.Addr()) {
		logger.Warn("API keys travel in clear without TLS: serve with -tls-cert and -tls-key, or keep the network private", "addr", lis.Addr().String())
	}
	gs, err := grpcapi.NewServer(logger, reg, svc, hs, extra...)
	if err != nil {
		return err
	}
	if *metricsAddr != "" {
		hsrv, err := serveMetrics(*metricsAddr, reg, st, svc, logger)
		if err != nil {
			return err
		}
		defer hsrv.Close()
	}
	if hl != nil {
		h, err := httpapi.Handler(svc, hs, logger)
		if err != nil {
			return fmt.Errorf("serve: %w", err)
		}
		mux := http.NewServeMux()
		mux.Handle("/", h)
		mux.Handle("/mcp", http.MaxBytesHandler(mcpapi.HTTPHandler(svc, logger, version()), 1<<20))
		mux.Handle("GET /metrics", adminOnly(svc, promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg})))
		mux.Handle("GET /console/", http.StripPrefix("/console/", console.Handler()))
		mux.Handle("GET /{$}", http.RedirectHandler("/console/", http.StatusFound))
		hsrv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 5 * time.Minute}
		go hsrv.Serve(hl) // ends when hsrv is closed
		defer hsrv.Close()
		logger.Info("serving HTTP/JSON", "addr", hl.Addr().String())
	}
	// Collections that learned labelled questions build their models in the
	// background at open: health says SERVING once they are built (bounded,
	// so a failing build cannot keep the node out of service).
	wctx, cancel := context.WithTimeout(ctx, learnedWait)
	if err := st.WaitLearnedAll(wctx); err != nil && ctx.Err() == nil {
		logger.Warn("learned models not built yet; serving without them until they are", "waited", learnedWait, "err", err)
	}
	cancel()
	hs.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	hs.SetServingStatus("retrieval.v1.RetrievalService", healthpb.HealthCheckResponse_SERVING)
	if st.Shared() {
		lag := func() uint64 {
			last, pos := st.LogStats().Last, st.Pos()
			return last - min(last, pos)
		}
		go watchLag(ctx, lag, time.Second, hs, *maxLag, logger)
		if l, ok := st.SharedLog().(*natslog.Log); ok && *snapEvery > 0 {
			dict, err := dictID(c.dict)
			if err != nil {
				return err
			}
			go snapshotLoop(ctx, st, l, *snapEvery, dict, logger)
		}
	}

	logger.Info("serving", "addr", lis.Addr().String(), "store", c.store, "startup", time.Since(start).Round(time.Millisecond))
	httpShown := ""
	if hl != nil {
		httpShown = hl.Addr().String()
	}
	printTryHint(env.stderr, lis.Addr().String(), httpShown, c.store, c.collection, st.Collections())

	return serveUntilDone(ctx, gs, hs, lis, *grace, logger, env.writeMemProfile)
}

// defaultHTTPAddr is where the HTTP/JSON door listens unless -http-addr says.
const defaultHTTPAddr = "127.0.0.1:7701"

// listenHTTP listens for the HTTP/JSON door; nil when addr is empty, or when
// the default address (not set by the user) is taken.
func listenHTTP(addr string, explicit bool, logger *slog.Logger) (net.Listener, error) {
	if addr == "" {
		return nil, nil
	}
	l, err := net.Listen("tcp", addr)
	if err != nil && !explicit {
		logger.Warn("HTTP/JSON door off: its default address is taken; set -http-addr", "addr", addr, "err", err)
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("serve: -http-addr: %w", err)
	}
	return l, nil
}

// serveUntilDone serves on lis until ctx ends, then shuts down: health
// NOT_SERVING, GracefulStop, and Stop once grace has passed.
// atShutdown, when not nil, runs as the shutdown starts (the heap profile
// of -memprofile, while the store is still open).
func serveUntilDone(ctx context.Context, gs *grpc.Server, hs *health.Server, lis net.Listener, grace time.Duration, logger *slog.Logger, atShutdown func()) error {
	errc := make(chan error, 1)
	go func() { errc <- gs.Serve(lis) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	logger.Info("shutting down", "grace", grace)
	if atShutdown != nil {
		atShutdown()
	}
	hs.Shutdown() // NOT_SERVING, so load balancers stop sending
	stopped := make(chan struct{})
	go func() { gs.GracefulStop(); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(grace):
		gs.Stop()
		<-stopped
	}
	return nil
}

// serveMetrics serves reg's metrics on http://addr/metrics until the
// returned server is closed.
func serveMetrics(addr string, reg *prometheus.Registry, st *store.Store, svc *service.Service, logger *slog.Logger) (*http.Server, error) {
	ml, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("serve: metrics: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", adminOnly(svc, promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg})))
	mux.Handle("/backup", adminOnly(svc, backupHandler(st, svc)))
	hsrv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go hsrv.Serve(ml) // ends when the caller closes hsrv
	logger.Info("metrics", "addr", "http://"+ml.Addr().String()+"/metrics")
	return hsrv, nil
}

// authMode decides whether calls need API keys: when the store has keys, or
// the server listens beyond loopback. Beyond loopback without keys it
// refuses to start unless insecure is set.
func authMode(st *store.Store, addr net.Addr, insecure bool, logger *slog.Logger) (bool, error) {
	hasKeys, err := st.HasKeys()
	if err != nil {
		return false, fmt.Errorf("serve: read API keys: %w", err)
	}
	loopback := isLoopback(addr)
	switch {
	case hasKeys:
		logger.Info("API keys required", "addr", addr.String())
		return true, nil
	case loopback:
		return false, nil
	case insecure:
		logger.Warn("serving beyond loopback without API keys, as -insecure asks: anyone who reaches it may read, write and delete every collection", "addr", addr.String())
		return false, nil
	}
	return false, fmt.Errorf("serve: %s is not a loopback address and the store has no API keys: create one with 'zhisou keys create -store DIR -name NAME -role admin -collections \"*\"' and restart, or pass -insecure to serve it open", addr)
}

// isLoopback reports whether a listener's address is a loopback one.
func isLoopback(addr net.Addr) bool {
	ta, ok := addr.(*net.TCPAddr)
	return ok && ta.IP.IsLoopback()
}

// reloadOnHangup reads the TLS files again on every SIGHUP until ctx ends.
func reloadOnHangup(ctx context.Context, stls *grpcapi.ServerTLS, logger *slog.Logger) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
			if err := stls.Reload(); err != nil {
				logger.Error("TLS reload failed; the certificate in use stays", "err", err)
			} else {
				logger.Info("TLS certificate reloaded")
			}
		}
	}
}

// adminOnly serves h to callers with an admin key when the service requires
// keys (the key as "Authorization: Bearer zsk_…"), and to anyone otherwise.
func adminOnly(svc *service.Service, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if svc.AuthRequired() {
			tok, bad := service.TokenFromHeader(r.Header)
			if bad != "" {
				http.Error(w, bad, http.StatusUnauthorized)
				return
			}
			k, err := svc.Authenticate(r.Context(), tok)
			if err != nil {
				http.Error(w, err.Error(), http.StatusUnauthorized)
				return
			}
			if index.RoleRank(k.Role) < index.RoleRank(index.RoleAdmin) {
				http.Error(w, "metrics need an admin key", http.StatusForbidden)
				return
			}
		}
		h.ServeHTTP(w, r)
	})
}

// loadDemo ingests a folder into the collection when the collection is empty.
func loadDemo(ctx context.Context, env *cmdEnv, st *store.Store, collection, dir string) error {
	info, err := st.Collection(collection)
	if errors.Is(err, index.ErrNotFound) {
		if err := st.CreateCollection(ctx, index.DefaultCollection(collection)); err != nil {
			return err
		}
	} else if err != nil {
		return err
	} else if info.Stats.Docs > 0 {
		return nil
	}
	rep, err := ingest.Run(ctx, ingest.Local{Store: st}, []string{dir}, ingest.Options{Collection: collection})
	if err != nil {
		return fmt.Errorf("demo corpus %s: %w", dir, err)
	}
	fmt.Fprintf(env.stderr, "demo: ingested %d documents from %s into %q\n", rep.Added+rep.Updated, dir, collection)
	for _, f := range rep.Failed {
		fmt.Fprintf(env.stderr, "demo: %s\n", f)
	}
	return nil
}

// printTryHint prints how to query the server: with a collection that
// exists (preferred, the -collection flag, when it does), or how to fill
// one when there is none.
// httpAddr is the HTTP/JSON door's address, "" when it is off.
func printTryHint(w io.Writer, addr, httpAddr, storeDir, preferred string, colls []store.CollectionInfo) {
	if len(colls) == 0 {
		fmt.Fprintf(w, "zhisou is serving on %s (store %s), which has no collection yet. Try (after make build):\n  ./bin/zhisou ingest -addr %s -collection %s testdata/courses\n",
			addr, storeDir, addr, preferred)
		return
	}
	name := colls[0].Name
	for _, c := range colls {
		if c.Name == preferred {
			name = preferred
		}
	}
	fmt.Fprintf(w, "zhisou is serving on %s (store %s). Try (after make build):\n  ./bin/zhisou search -addr %s -collection %s '客户嫌价格太贵怎么办'\n",
		addr, storeDir, addr, name)
	if httpAddr != "" {
		fmt.Fprintf(w, "  curl -s http://%s/v1/collections/%s:search -H 'Content-Type: application/json' -d '{\"query\":\"第十二条\"}'\n", httpAddr, name)
	} else {
		fmt.Fprintf(w, "  grpcurl -plaintext -d '{\"collection\":\"%s\",\"query\":\"第十二条\"}' %s retrieval.v1.RetrievalService/Search\n", name, addr)
	}
}

// learnedWait bounds how long serve waits for the learned models before its
// health check says SERVING.
const learnedWait = 2 * time.Minute

// watchLag turns the health check to NOT_SERVING while the replica is more
// than maxLag records behind its shared log (lagOf, looked at every every),
// and back when it has caught up.
func watchLag(ctx context.Context, lagOf func() uint64, every time.Duration, hs *health.Server, maxLag uint64, logger *slog.Logger) {
	tick := time.NewTicker(every)
	defer tick.Stop()
	behind := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		lag := lagOf()
		if (lag > maxLag) == behind || ctx.Err() != nil {
			continue
		}
		behind = lag > maxLag
		status := healthpb.HealthCheckResponse_SERVING
		if behind {
			status = healthpb.HealthCheckResponse_NOT_SERVING
			logger.Warn("this replica is behind its write log: health says NOT_SERVING until it catches up", "lag", lag, "max_lag", maxLag)
		} else {
			logger.Info("this replica has caught up with its write log: serving", "lag", lag)
		}
		hs.SetServingStatus("", status)
		hs.SetServingStatus("retrieval.v1.RetrievalService", status)
	}
}
