package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// dockerfile is what TestDockerfile reads from ../../Dockerfile: the runtime
// stage's user, environment, entrypoint, command and health check.
type dockerfile struct {
	user              uint32
	env               map[string]string
	entrypoint, cmd   []string
	healthcheck       []string
	firstKeyStep      []string // the "docker run ... zhisou keys create" line of its header
	volume, buildLine string
}

func readDockerfile(t *testing.T) dockerfile {
	t.Helper()
	f, err := os.Open("../../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	d := dockerfile{env: map[string]string{}}
	jsonArgs := func(s string) []string {
		var a []string
		if err := json.Unmarshal([]byte(s), &a); err != nil {
			t.Fatalf("Dockerfile: %q is not the JSON (exec) form: %v", s, err)
		}
		return a
	}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		word, rest, _ := strings.Cut(line, " ")
		rest = strings.TrimSpace(rest)
		switch word {
		case "#":
			if i := strings.Index(rest, " zhisou keys create "); i >= 0 && strings.HasPrefix(rest, "docker run") {
				d.firstKeyStep = strings.Fields(strings.ReplaceAll(rest[i+len(" zhisou "):], "'", ""))
			}
		case "USER":
			u, _, _ := strings.Cut(rest, ":")
			n, err := strconv.ParseUint(u, 10, 32)
			if err != nil {
				t.Fatalf("Dockerfile: USER %q is not numeric (Kubernetes' runAsNonRoot checks a numeric user)", rest)
			}
			d.user = uint32(n)
		case "ENV":
			k, v, _ := strings.Cut(rest, "=")
			d.env[k] = v
		case "VOLUME":
			d.volume = rest
		case "ENTRYPOINT":
			d.entrypoint = jsonArgs(rest)
		case "CMD":
			d.cmd = jsonArgs(rest)
		case "HEALTHCHECK":
			_, hc, ok := strings.Cut(rest, " CMD ")
			if !ok {
				t.Fatalf("Dockerfile: HEALTHCHECK without CMD: %q", line)
			}
			d.healthcheck = jsonArgs(hc)
		case "RUN":
			if strings.Contains(rest, "go build") {
				d.buildLine = rest
			}
		}
	}
	return d
}

// TestDockerfile runs what the container image runs, as its user: the key
// step its header documents, then its ENTRYPOINT+CMD against the data
// directory its ENV names, then its HEALTHCHECK until that passes. The
// addresses and the data directory are swapped for free ports and a
// temporary directory; the image is not built here (no Docker engine on the
// test machines), so the build stage is only checked to be static.
func TestDockerfile(t *testing.T) {
	d := readDockerfile(t)
	if d.user == 0 {
		t.Fatal("Dockerfile: the image must not run as root")
	}
	if !strings.Contains(d.buildLine, "CGO_ENABLED=0") {
		t.Errorf("Dockerfile: the build %q is not static (CGO_ENABLED=0), and distroless/static has no libc", d.buildLine)
	}
	dataDir := d.env["ZHISOU_STORE"]
	if dataDir == "" || d.volume != dataDir {
		t.Fatalf("Dockerfile: ZHISOU_STORE=%q should be the VOLUME %q", dataDir, d.volume)
	}
	if len(d.entrypoint) != 1 || len(d.cmd) == 0 || len(d.healthcheck) < 2 || d.healthcheck[0] != d.entrypoint[0] || len(d.firstKeyStep) == 0 {
		t.Fatalf("Dockerfile: entrypoint %q, cmd %q, healthcheck %q, key step %q", d.entrypoint, d.cmd, d.healthcheck, d.firstKeyStep)
	}

	bin := zhisouBinary(t)
	data := filepath.Join(t.TempDir(), "data")
	if err := os.Mkdir(data, 0o755); err != nil {
		t.Fatal(err)
	}
	grpcAddr, httpAddr := freeAddr(t), freeAddr(t)
	swap := func(args []string) []string {
		out := make([]string, len(args))
		for i, a := range args {
			a = strings.Replace(a, ":7700", ":"+portOf(grpcAddr), 1)
			out[i] = strings.Replace(a, ":7701", ":"+portOf(httpAddr), 1)
		}
		return out
	}
	asImageUser := func(args ...string) *exec.Cmd {
		c := exec.Command(bin, args...)
		c.Env = append(os.Environ(), "ZHISOU_STORE="+data)
		if os.Getuid() == 0 {
			// As root (CI), run as the image's user, as the image does: the
			// data directory is the user's, as the image's COPY --chown makes it.
			c.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: d.user, Gid: d.user}}
			for _, p := range []string{filepath.Dir(data), data} {
				if err := os.Chown(p, int(d.user), int(d.user)); err != nil {
					t.Fatal(err)
				}
			}
			for _, p := range []string{filepath.Dir(bin), filepath.Dir(filepath.Dir(data))} {
				if err := os.Chmod(p, 0o755); err != nil {
					t.Fatal(err)
				}
			}
		}
		return c
	}

	// Without a key the server refuses to listen beyond loopback, naming
	// the key step.
	out, err := asImageUser(swap(d.cmd)...).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "keys create") {
		t.Fatalf("CMD without a key: err %v, want a refusal naming 'zhisou keys create':\n%s", err, out)
	}
	out, err = asImageUser(d.firstKeyStep...).CombinedOutput()
	if err != nil {
		t.Fatalf("%q: %v\n%s", d.firstKeyStep, err, out)
	}

	srv := asImageUser(swap(d.cmd)...)
	var stderr bytes.Buffer
	srv.Stderr = &stderr
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { srv.Wait(); close(done) }()
	t.Cleanup(func() { srv.Process.Signal(syscall.SIGKILL); <-done })

	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	hc := swap(d.healthcheck[1:])
	for {
		out, err := asImageUser(hc...).CombinedOutput()
		if err == nil {
			if !strings.Contains(string(out), "SERVING") {
				t.Fatalf("health passed, printing %q", out)
			}
			break
		}
		select {
		case <-done:
			t.Fatalf("the server exited: %s", stderr.String())
		case <-ctx.Done():
			t.Fatalf("the HEALTHCHECK never passed: %v %s\nserver: %s", err, out, stderr.String())
		case <-time.After(200 * time.Millisecond):
		}
	}
	// The health check fails, with status 1, when nothing serves.
	srv.Process.Signal(syscall.SIGTERM)
	<-done
	if err := asImageUser(append(hc, "-timeout", "300ms")...).Run(); err == nil {
		t.Error("the HEALTHCHECK passed with the server stopped")
	}
}

func portOf(addr string) string {
	_, p, _ := strings.Cut(addr, ":")
	return p
}
