package natslog

import (
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// ServerConfig describes a NATS server embedded in zhisou: one with
// JetStream, alone or one of a cluster of such servers (each zhisou node
// embedding one), so that a replicated install is three copies of one binary.
type ServerConfig struct {
	// Name names the server in its cluster; it must differ between the
	// cluster's servers and stay the same across restarts.
	Name string
	// Listen is the HOST:PORT clients (the zhisou node itself) connect to.
	Listen string
	// Dir holds JetStream's files.
	Dir string
	// Cluster is the HOST:PORT the cluster's servers connect to each other
	// on; empty for a server alone.
	Cluster string
	// Routes are the cluster's servers (nats://HOST:PORT of their Cluster
	// addresses); this server's own may be among them.
	Routes []string
	// Token, when set, is required of every client (the zhisou nodes
	// connect with it: Config.Token) and of the cluster's servers among
	// themselves. StartServer refuses an address beyond loopback without
	// one: whoever may publish to the log writes every collection.
	Token string
	// Logger receives the server's warnings and errors (its notices at
	// debug level).
	Logger *slog.Logger
}

// StartServer starts an embedded NATS server with JetStream and waits until it
// takes connections. The caller shuts it down (Server.Shutdown, then
// WaitForShutdown).
func StartServer(cfg ServerConfig) (*server.Server, error) {
	host, port, err := splitHostPort(cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("embedded NATS server: listen address %q: %w", cfg.Listen, err)
	}
	if cfg.Token == "" {
		for _, a := range []string{cfg.Listen, cfg.Cluster} {
			if h, _, err := net.SplitHostPort(a); err == nil && a != "" && !isLoopbackHost(h) {
				return nil, fmt.Errorf("embedded NATS server: %s is not a loopback address, and anyone who reaches it could write to the log: give the nodes a shared secret with -nats-token (or ZHISOU_NATS_TOKEN)", a)
			}
		}
	}
	o := &server.Options{
		ServerName: cfg.Name,
		Host:       host,
		Port:       port,
		JetStream:  true,
		StoreDir:   cfg.Dir,
		NoSigs:     true,
		// The server's own files are synced by JetStream's defaults; a
		// zhisou node acknowledges a write only once the stream has it.
	}
	if cfg.Cluster != "" {
		ch, cp, err := splitHostPort(cfg.Cluster)
		if err != nil {
			return nil, fmt.Errorf("embedded NATS server: cluster address %q: %w", cfg.Cluster, err)
		}
		o.Cluster = server.ClusterOpts{Name: "zhisou", Host: ch, Port: cp}
		o.Routes = server.RoutesFromStr(strings.Join(cfg.Routes, ","))
		if cfg.Token != "" {
			o.Cluster.Username, o.Cluster.Password = "zhisou", cfg.Token
			for _, r := range o.Routes {
				r.User = url.UserPassword("zhisou", cfg.Token)
			}
		}
	}
	if cfg.Token != "" {
		o.Authorization = cfg.Token
	}
	s, err := server.NewServer(o)
	if err != nil {
		return nil, fmt.Errorf("embedded NATS server: %w", err)
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	s.SetLoggerV2(serverLogger{logger.With("nats", cfg.Name)}, false, false, false)
	s.Start()
	if !s.ReadyForConnections(30 * time.Second) {
		s.Shutdown()
		return nil, fmt.Errorf("embedded NATS server did not take connections on %s within 30 s", cfg.Listen)
	}
	return s, nil
}

func splitHostPort(addr string) (string, int, error) {
	h, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, err
	}
	n, err := strconv.Atoi(p)
	if err != nil || n < 0 || n > 65535 {
		return "", 0, fmt.Errorf("port %q", p)
	}
	return h, n, nil
}

// serverLogger hands the server's log lines to slog.
type serverLogger struct{ l *slog.Logger }

func (s serverLogger) Noticef(f string, v ...any) { s.l.Debug(fmt.Sprintf(f, v...)) }
func (s serverLogger) Warnf(f string, v ...any)   { s.l.Warn(fmt.Sprintf(f, v...)) }
func (s serverLogger) Fatalf(f string, v ...any)  { s.l.Error(fmt.Sprintf(f, v...)) }
func (s serverLogger) Errorf(f string, v ...any)  { s.l.Error(fmt.Sprintf(f, v...)) }
func (s serverLogger) Debugf(string, ...any)      {}
func (s serverLogger) Tracef(string, ...any)      {}

func isLoopbackHost(h string) bool {
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}
