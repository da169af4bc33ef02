package grpcapi

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"sync/atomic"
)

// TLS. The server reads its certificate and key (and, for mTLS, the CA that
// signs client certificates) from files, and reads them again on Reload
// (the command calls it on SIGHUP), so a renewed certificate takes effect
// without a restart; connections already open keep theirs.

// ServerTLS is the server's TLS configuration, reloadable.
type ServerTLS struct {
	certFile, keyFile, clientCAFile string
	cur                             atomic.Pointer[tls.Config]
}

// NewServerTLS reads the files; clientCAFile "" means clients need no
// certificate (TLS), otherwise they must present one it signs (mTLS).
func NewServerTLS(certFile, keyFile, clientCAFile string) (*ServerTLS, error) {
	if certFile == "" || keyFile == "" {
		return nil, errors.New("TLS needs both a certificate file and a key file")
	}
	s := &ServerTLS{certFile: certFile, keyFile: keyFile, clientCAFile: clientCAFile}
	if err := s.Reload(); err != nil {
		return nil, err
	}
	return s, nil
}

// Reload reads the files again; on an error the configuration in use stays.
func (s *ServerTLS) Reload() error {
	cert, err := tls.LoadX509KeyPair(s.certFile, s.keyFile)
	if err != nil {
		return fmt.Errorf("load TLS certificate %s and key %s: %w", s.certFile, s.keyFile, err)
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if s.clientCAFile != "" {
		pool, err := certPool(s.clientCAFile)
		if err != nil {
			return err
		}
		cfg.ClientCAs, cfg.ClientAuth = pool, tls.RequireAndVerifyClientCert
	}
	s.cur.Store(cfg)
	return nil
}

// Config is the tls.Config to serve with: each new connection gets the
// configuration loaded last.
func (s *ServerTLS) Config() *tls.Config {
	return &tls.Config{
		MinVersion:         tls.VersionTLS12,
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) { return s.cur.Load(), nil },
	}
}

// ClientTLS is the client side: trust the CA in caFile ("" for the
// system's roots), present the certificate in certFile and keyFile when
// given (mTLS), and expect serverName when not "" (else the address's host).
func ClientTLS(caFile, certFile, keyFile, serverName string) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: serverName}
	if caFile != "" {
		pool, err := certPool(caFile)
		if err != nil {
			return nil, err
		}
		cfg.RootCAs = pool
	}
	if certFile != "" || keyFile != "" {
		cert, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return nil, fmt.Errorf("load TLS client certificate %s and key %s: %w", certFile, keyFile, err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}

func certPool(file string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("read CA file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("CA file %s holds no PEM certificate", file)
	}
	return pool, nil
}
