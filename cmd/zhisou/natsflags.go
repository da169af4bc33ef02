package main

import (
	"cmp"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/zhisou/zhisou/index/natslog"
)

// natsServerFlags are serve's flags for a NATS server embedded in the
// process (natslog.StartServer).
type natsServerFlags struct {
	listen, cluster, routes, name string
}

func (f *natsServerFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.listen, "nats-listen", "", "run a NATS server with JetStream inside this process, taking clients on HOST:PORT, its files in the data directory's nats/ folder; the write log is then on it (or on -nats, when given)")
	fs.StringVar(&f.cluster, "nats-cluster", "", "with -nats-listen: HOST:PORT the embedded server meets the other servers of its cluster on (off when empty: a server alone)")
	fs.StringVar(&f.routes, "nats-routes", "", "with -nats-cluster: the cluster's servers, nats://HOST:PORT of their -nats-cluster addresses, comma-separated (this node's own may be listed)")
	fs.StringVar(&f.name, "nats-name", "", "with -nats-listen: the embedded server's name, unique in its cluster and the same at every restart (default: host name and -nats-listen's port)")
}

// start starts the embedded server, its files under the data directory dir.
func (f *natsServerFlags) start(dir, token string, logger *slog.Logger) (*server.Server, error) {
	if f.cluster == "" && f.routes != "" {
		return nil, errors.New("-nats-routes needs -nats-cluster, the address this server meets them on")
	}
	name := f.name
	if name == "" {
		host, _ := os.Hostname()
		_, port, err := net.SplitHostPort(f.listen)
		if err != nil {
			return nil, fmt.Errorf("-nats-listen %q: %w", f.listen, err)
		}
		name = strings.NewReplacer(".", "-", " ", "-").Replace(cmp.Or(host, "zhisou")) + "-" + port
	}
	var routes []string
	for _, r := range strings.Split(f.routes, ",") {
		if r = strings.TrimSpace(r); r != "" {
			routes = append(routes, r)
		}
	}
	s, err := natslog.StartServer(natslog.ServerConfig{Name: name, Listen: f.listen, Dir: filepath.Join(dir, "nats"),
		Cluster: f.cluster, Routes: routes, Token: token, Logger: logger})
	if err != nil {
		return nil, err
	}
	logger.Info("embedded NATS server started", "name", name, "clients", s.ClientURL(), "cluster", f.cluster, "routes", len(routes))
	return s, nil
}
