package natslog_test

import (
	"log/slog"
	"strings"
	"testing"

	"github.com/nats-io/nats.go"

	"github.com/zhisou/zhisou/index/natslog"
)

// The embedded server refuses an address beyond loopback without a token;
// with one, a client without it is turned away and one with it gets the log.
func TestEmbeddedServerToken(t *testing.T) {
	_, err := natslog.StartServer(natslog.ServerConfig{Name: "a", Listen: "0.0.0.0:0", Dir: t.TempDir()})
	if err == nil || !strings.Contains(err.Error(), "-nats-token") {
		t.Fatalf("embedded server beyond loopback without a token: %v; want refused, naming -nats-token", err)
	}
	s, err := natslog.StartServer(natslog.ServerConfig{Name: "a", Listen: "127.0.0.1:0", Dir: t.TempDir(), Token: "s3cret", Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { s.Shutdown(); s.WaitForShutdown() }()
	if nc, err := nats.Connect(s.ClientURL(), nats.MaxReconnects(0)); err == nil {
		nc.Close()
		t.Fatal("a client without the token connected")
	}
	l, err := natslog.Connect(t.Context(), s.ClientURL(), natslog.Config{Token: "s3cret"})
	if err != nil {
		t.Fatalf("a client with the token: %v", err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
}
