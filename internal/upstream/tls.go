package upstream

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/portico-gateway/portico/internal/config"
)

// tlsSessionCacheSize is the number of TLS sessions a target remembers
// for resumption: one per server instance behind the target address is
// plenty.
const tlsSessionCacheSize = 64

// clientTLSConfig builds the TLS client config of a service's https
// targets from its tls block. A nil block means the system roots and TLS
// 1.2 at least. The config offers only HTTP/1.1 in ALPN: the upstream
// client speaks nothing else. Errors name the key ("ca_file") and the
// file and say what is wrong with it, never its contents; the caller adds
// the service and "tls".
func clientTLSConfig(c *config.UpstreamTLS) (*tls.Config, error) {
	cfg := &tls.Config{
		MinVersion: tls.VersionTLS12,
		NextProtos: []string{"http/1.1"},
	}
	if c == nil {
		return cfg, nil
	}
	switch c.MinVersion {
	case "", "1.2":
	case "1.3":
		cfg.MinVersion = tls.VersionTLS13
	default:
		return nil, fmt.Errorf("min_version %q: want 1.2 or 1.3", c.MinVersion)
	}
	cfg.ServerName = c.ServerName
	if c.CAFile != "" {
		pool, err := loadCAFile(c.CAFile)
		if err != nil {
			return nil, err
		}
		cfg.RootCAs = pool
	}
	switch {
	case c.CertFile != "" && c.KeyFile != "":
		cert, err := loadKeyPair(c.CertFile, c.KeyFile)
		if err != nil {
			return nil, err
		}
		cfg.Certificates = []tls.Certificate{cert}
	case c.CertFile != "" || c.KeyFile != "":
		return nil, errors.New("cert_file and key_file go together: set both or neither")
	}
	return cfg, nil
}

// ClientTLS returns the TLS client config that c describes, exactly as a
// service's https targets use it (c nil: the system roots, TLS 1.2 at
// least), for plugins that call other HTTPS services themselves
// (forward_auth). Errors are clientTLSConfig's.
func ClientTLS(c *config.UpstreamTLS) (*tls.Config, error) { return clientTLSConfig(c) }

// loadCAFile reads a PEM bundle of CA certificates.
func loadCAFile(path string) (*x509.CertPool, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("ca_file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(data) {
		return nil, fmt.Errorf("ca_file %s: no PEM certificate found", path)
	}
	return pool, nil
}

// loadKeyPair reads a client certificate and its key. The checks before
// tls.X509KeyPair say which file is wrong; its own errors (a key that does
// not match the certificate, one that does not parse) carry no key
// material.
func loadKeyPair(certFile, keyFile string) (tls.Certificate, error) {
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("cert_file: %w", err)
	}
	keyPEM, err := os.ReadFile(keyFile)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("key_file: %w", err)
	}
	if !hasPEMBlock(certPEM, func(t string) bool { return t == "CERTIFICATE" }) {
		return tls.Certificate{}, fmt.Errorf("cert_file %s: no PEM certificate found", certFile)
	}
	if !hasPEMBlock(keyPEM, func(t string) bool { return strings.HasSuffix(t, "PRIVATE KEY") }) {
		return tls.Certificate{}, fmt.Errorf("key_file %s: no PEM private key found", keyFile)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("cert_file %s and key_file %s: %w", certFile, keyFile, err)
	}
	return cert, nil
}

// hasPEMBlock reports whether data holds a PEM block whose type passes ok.
func hasPEMBlock(data []byte, ok func(typ string) bool) bool {
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			return false
		}
		if ok(b.Type) {
			return true
		}
	}
}
