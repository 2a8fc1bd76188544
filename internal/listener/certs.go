package listener

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"strings"

	"github.com/portico-gateway/portico/internal/config"
)

// Certificates are a TLS listener's certificates, indexed by the names
// they are for: a handshake gets the certificate of the exact name the
// client asked for (SNI), else of its one-label wildcard, else the
// default. A Certificates is immutable; a reload builds a new one.
type Certificates struct {
	exact map[string]*tls.Certificate
	wild  map[string]*tls.Certificate // by the name after "*."
	def   *tls.Certificate
	all   []*tls.Certificate
}

// LoadCertificates reads every certificate of t and indexes it by the DNS
// names of its leaf. The first certificate, or the one marked default, is
// the default.
func LoadCertificates(t *config.TLS) (*Certificates, error) {
	c := &Certificates{exact: make(map[string]*tls.Certificate), wild: make(map[string]*tls.Certificate)}
	for _, f := range t.Files() {
		cert, err := loadPair(f.CertFile, f.KeyFile)
		if err != nil {
			return nil, err
		}
		if err := c.add(cert, f.Default); err != nil {
			return nil, fmt.Errorf("certificate %s: %w", f.CertFile, err)
		}
	}
	if c.def == nil {
		return nil, errors.New("no certificate")
	}
	return c, nil
}

func loadPair(certFile, keyFile string) (*tls.Certificate, error) {
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("load tls certificate %s: %w", certFile, err)
	}
	return &cert, nil
}

// add indexes cert by its names; the first certificate for a name keeps it.
func (c *Certificates) add(cert *tls.Certificate, isDefault bool) error {
	leaf := cert.Leaf
	if leaf == nil {
		var err error
		if leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return fmt.Errorf("parse: %w", err)
		}
		cert.Leaf = leaf
	}
	names := leaf.DNSNames
	if len(names) == 0 && leaf.Subject.CommonName != "" && net.ParseIP(leaf.Subject.CommonName) == nil {
		names = []string{leaf.Subject.CommonName}
	}
	for _, ip := range leaf.IPAddresses {
		names = append(names, ip.String())
	}
	for _, n := range names {
		n = strings.ToLower(strings.TrimSuffix(n, "."))
		if rest, ok := strings.CutPrefix(n, "*."); ok {
			if _, taken := c.wild[rest]; !taken {
				c.wild[rest] = cert
			}
			continue
		}
		if _, taken := c.exact[n]; !taken {
			c.exact[n] = cert
		}
	}
	if c.def == nil || isDefault {
		c.def = cert
	}
	c.all = append(c.all, cert)
	return nil
}

// ForName returns the certificate for a host name (no port), or nil when
// only the default would serve it.
func (c *Certificates) ForName(name string) *tls.Certificate {
	name = strings.ToLower(strings.TrimSuffix(name, "."))
	if cert, ok := c.exact[name]; ok {
		return cert
	}
	if i := strings.IndexByte(name, '.'); i > 0 {
		if cert, ok := c.wild[name[i+1:]]; ok {
			return cert
		}
	}
	return nil
}

// Select returns the certificate a handshake for name gets.
func (c *Certificates) Select(name string) *tls.Certificate {
	if cert := c.ForName(name); cert != nil {
		return cert
	}
	return c.def
}

// Names returns the names the certificates are for, for logs and the
// admin API.
func (c *Certificates) Names() []string {
	out := make([]string, 0, len(c.exact)+len(c.wild))
	for n := range c.exact {
		out = append(out, n)
	}
	for n := range c.wild {
		out = append(out, "*."+n)
	}
	return out
}
