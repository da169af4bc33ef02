package grpcapi_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"

	"github.com/zhisou/zhisou/index/store/storetest"
	"github.com/zhisou/zhisou/internal/grpcapi"
	"github.com/zhisou/zhisou/internal/service"
	retrievalv1 "github.com/zhisou/zhisou/proto/retrieval/v1"
)

// pki makes certificates for a test: a CA, and leaves it signs.
type pki struct {
	t    *testing.T
	dir  string
	ca   *x509.Certificate
	key  *ecdsa.PrivateKey
	next int64
}

func newPKI(t *testing.T) *pki {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"}, NotBefore: time.Now().Add(-time.Hour),
		NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(der)
	p := &pki{t: t, dir: t.TempDir(), ca: ca, key: key, next: 2}
	p.write("ca.pem", "CERTIFICATE", der)
	return p
}

func (p *pki) write(name, typ string, der []byte) string {
	path := filepath.Join(p.dir, name)
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		p.t.Fatal(err)
	}
	return path
}

// leaf writes a certificate for 127.0.0.1 (server or client use) and its
// key as name.pem and name-key.pem, and returns its serial number.
func (p *pki) leaf(name string, usage x509.ExtKeyUsage) int64 {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		p.t.Fatal(err)
	}
	serial := p.next
	p.next++
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: name}, NotBefore: time.Now().Add(-time.Hour),
		NotAfter: time.Now().Add(time.Hour), ExtKeyUsage: []x509.ExtKeyUsage{usage}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.ca, &key.PublicKey, p.key)
	if err != nil {
		p.t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		p.t.Fatal(err)
	}
	p.write(name+".pem", "CERTIFICATE", der)
	p.write(name+"-key.pem", "EC PRIVATE KEY", kder)
	return serial
}

func (p *pki) path(name string) string { return filepath.Join(p.dir, name) }

// serveTLS runs the gRPC server on a loopback port with stls.
func serveTLS(t *testing.T, stls *grpcapi.ServerTLS) string {
	svc, err := service.New(storetest.WithCollections(t, "c"), service.Options{})
	if err != nil {
		t.Fatal(err)
	}
	gs, err := grpcapi.NewServer(slog.New(slog.DiscardHandler), prometheus.NewRegistry(), svc, health.NewServer(), grpc.Creds(credentials.NewTLS(stls.Config())))
	if err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go gs.Serve(lis)
	t.Cleanup(gs.Stop)
	return lis.Addr().String()
}

func tlsCall(t *testing.T, addr string, cfg *tls.Config) error {
	conn, client, err := grpcapi.Dial(addr, "", cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_, err = client.GetCollection(t.Context(), &retrievalv1.GetCollectionRequest{Name: "c"})
	return err
}

// TestTLS: a client that trusts the CA gets through, one that does not is
// refused; with a client CA, only clients with a certificate it signed get
// through (mTLS); Reload serves a renewed certificate to new connections.
func TestTLS(t *testing.T) {
	p := newPKI(t)
	first := p.leaf("server", x509.ExtKeyUsageServerAuth)
	p.leaf("client", x509.ExtKeyUsageClientAuth)

	stls, err := grpcapi.NewServerTLS(p.path("server.pem"), p.path("server-key.pem"), "")
	if err != nil {
		t.Fatal(err)
	}
	addr := serveTLS(t, stls)
	trusting, err := grpcapi.ClientTLS(p.path("ca.pem"), "", "", "")
	if err != nil {
		t.Fatal(err)
	}
	if err := tlsCall(t, addr, trusting); err != nil {
		t.Errorf("TLS call trusting the CA: %v", err)
	}
	if err := tlsCall(t, addr, &tls.Config{MinVersion: tls.VersionTLS12}); err == nil {
		t.Error("a client that does not trust the CA got through")
	}
	if err := tlsCall(t, addr, nil); err == nil {
		t.Error("a plain-text client got through a TLS server")
	}

	// Renewal: new files, Reload, and a new connection sees the new serial.
	second := p.leaf("server", x509.ExtKeyUsageServerAuth)
	if err := stls.Reload(); err != nil {
		t.Fatal(err)
	}
	conn, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: trusting.RootCAs, NextProtos: []string{"h2"}})
	if err != nil {
		t.Fatal(err)
	}
	got := conn.ConnectionState().PeerCertificates[0].SerialNumber.Int64()
	conn.Close()
	if got != second || got == first {
		t.Errorf("certificate after Reload has serial %d, want the renewed %d (first %d)", got, second, first)
	}

	mtls, err := grpcapi.NewServerTLS(p.path("server.pem"), p.path("server-key.pem"), p.path("ca.pem"))
	if err != nil {
		t.Fatal(err)
	}
	maddr := serveTLS(t, mtls)
	if err := tlsCall(t, maddr, trusting); err == nil {
		t.Error("a client without a certificate got through an mTLS server")
	}
	withCert, err := grpcapi.ClientTLS(p.path("ca.pem"), p.path("client.pem"), p.path("client-key.pem"), "")
	if err != nil {
		t.Fatal(err)
	}
	if err := tlsCall(t, maddr, withCert); err != nil {
		t.Errorf("mTLS call with a client certificate: %v", err)
	}
	if _, err := grpcapi.NewServerTLS(p.path("missing.pem"), p.path("server-key.pem"), ""); err == nil {
		t.Error("NewServerTLS with a missing certificate file succeeded")
	}
}
