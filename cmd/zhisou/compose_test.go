package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/zhisou/zhisou/index/store"
	"github.com/zhisou/zhisou/internal/grpcapi"
	retrievalv1 "github.com/zhisou/zhisou/proto/retrieval/v1"
)

// TestCompose runs the services of ../../compose.yaml as processes on
// loopback: each service's command and environment (the NATS secret and the
// first admin key as its operator sets them), with its container's
// addresses moved to free loopback ports and the other services' host names
// to 127.0.0.1. The three must form the cluster, take the admin key, refuse a
// call without it, and replicate a write. The image itself is built by docker.
func TestCompose(t *testing.T) {
	if testing.Short() {
		t.Skip("starts child processes; skipped under -short")
	}
	b, err := os.ReadFile("../../compose.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var cf struct {
		Services map[string]struct {
			Command     []string          `yaml:"command"`
			Environment map[string]string `yaml:"environment"`
			Hostname    string            `yaml:"hostname"`
		} `yaml:"services"`
	}
	if err := yaml.Unmarshal(b, &cf); err != nil {
		t.Fatalf("compose.yaml: %v", err)
	}
	names := slices.Sorted(func(yield func(string) bool) {
		for n := range cf.Services {
			if !yield(n) {
				return
			}
		}
	})
	if len(names) != 3 {
		t.Fatalf("compose.yaml has services %v; want three nodes", names)
	}
	natsToken := "compose-test-secret"
	adminKey, err := store.NewKeyToken()
	if err != nil {
		t.Fatal(err)
	}
	// Each container's own ports, moved per service; host names to loopback.
	ports := map[string]map[string]string{} // service -> container port -> host address
	for _, n := range names {
		ports[n] = map[string]string{}
		for _, p := range []string{"7700", "7701", "4222", "6222"} {
			ports[n][p] = freeAddr(t)
		}
	}
	route := regexp.MustCompile(`nats://([a-z0-9]+):(\d+)`)
	root := t.TempDir()
	var addrs []string
	var procs []*child
	for _, n := range names {
		svc := cf.Services[n]
		var args []string
		for _, a := range svc.Command {
			if host, port, ok := strings.Cut(a, ":"); ok && host == "0.0.0.0" {
				a = ports[n][port]
			}
			a = route.ReplaceAllStringFunc(a, func(m string) string {
				sm := route.FindStringSubmatch(m)
				return "nats://" + ports[sm[1]][sm[2]]
			})
			args = append(args, a)
		}
		c := &child{stderr: &lockedBuffer{}, done: make(chan struct{})}
		c.cmd = exec.Command(zhisouBinary(t), append(args, "-log-level", "warn")...)
		c.cmd.Env = append(os.Environ(), "ZHISOU_STORE="+filepath.Join(root, n))
		for k, v := range svc.Environment {
			switch {
			case strings.Contains(v, "ZHISOU_NATS_TOKEN"):
				v = natsToken
			case strings.Contains(v, "ZHISOU_ADMIN_KEY"):
				v = adminKey
			}
			c.cmd.Env = append(c.cmd.Env, k+"="+v)
		}
		c.cmd.Stderr = c.stderr
		if err := c.cmd.Start(); err != nil {
			t.Fatal(err)
		}
		go func() { c.cmd.Wait(); close(c.done) }()
		t.Cleanup(c.kill)
		procs = append(procs, c)
		addrs = append(addrs, ports[n]["7700"])
	}
	for i, n := range names {
		node := &clusterNode{name: n, addr: addrs[i], proc: procs[i]}
		node.waitHealthy(t)
	}
	ctx := t.Context()
	_, anon, err := grpcapi.Dial(addrs[0], "", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := anon.ListCollections(ctx, &retrievalv1.ListCollectionsRequest{}); status.Code(err) != codes.Unauthenticated {
		t.Fatalf("a call without a key: %v; want UNAUTHENTICATED", err)
	}
	conn, c, err := grpcapi.Dial(strings.Join(addrs, ","), adminKey, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := c.CreateCollection(ctx, &retrievalv1.CreateCollectionRequest{Collection: &retrievalv1.Collection{Name: "kb"}}); err != nil {
		t.Fatal(err)
	}
	up, err := c.UpsertDocuments(ctx, &retrievalv1.UpsertDocumentsRequest{Collection: "kb", Documents: []*retrievalv1.Document{
		{Id: "a", Content: "# 价格异议\n\n客户说太贵时，先确认预算，再说明价值。"}}})
	if err != nil {
		t.Fatal(err)
	}
	for i, a := range addrs {
		_, one, err := grpcapi.Dial(a, adminKey, nil)
		if err != nil {
			t.Fatal(err)
		}
		sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		res, err := one.Search(sctx, &retrievalv1.SearchRequest{Collection: "kb", Query: "客户嫌贵", MinPosition: up.GetPosition()})
		cancel()
		if err != nil || len(res.GetHits()) == 0 {
			t.Fatalf("%s (%s): search at the write's position: %v, %d hits", names[i], a, err, len(res.GetHits()))
		}
	}
	keys, err := c.ListKeys(ctx, &retrievalv1.ListKeysRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(keys.GetKeys()); n != 1 {
		t.Fatalf("the cluster holds %d keys; want the one admin key every node adopted", n)
	}
}
