// Package natstest runs a NATS server with JetStream inside a test.
package natstest

import (
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// Server starts a single NATS server with JetStream on a loopback port, its
// files in a test directory, and stops it when the test ends.
func Server(tb testing.TB) *server.Server {
	tb.Helper()
	return ServerOpts(tb, &server.Options{})
}

// ServerOpts is Server with options (Host, Port, JetStream and StoreDir are
// set unless given).
func ServerOpts(tb testing.TB, o *server.Options) *server.Server {
	tb.Helper()
	if o.Host == "" {
		o.Host = "127.0.0.1"
	}
	if o.Port == 0 {
		o.Port = -1
	}
	o.JetStream = true
	if o.StoreDir == "" {
		o.StoreDir = tb.TempDir()
	}
	o.NoSigs = true
	s, err := server.NewServer(o)
	if err != nil {
		tb.Fatalf("nats server: %v", err)
	}
	s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		tb.Fatal("nats server did not start in 10 s")
	}
	tb.Cleanup(s.Shutdown)
	return s
}

// Conn connects to s, and closes the connection when the test ends.
func Conn(tb testing.TB, s *server.Server) *nats.Conn {
	tb.Helper()
	nc, err := nats.Connect(s.ClientURL(), nats.MaxReconnects(-1))
	if err != nil {
		tb.Fatalf("connect to nats: %v", err)
	}
	tb.Cleanup(nc.Close)
	return nc
}
