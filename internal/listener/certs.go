package listener

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/portico-gateway/portico/internal/config"
	"github.com/portico-gateway/portico/internal/staple"
)

// Source is a certificate that may change while it is served: renewed
// (ACME) or given a new OCSP staple. Certificate returns the one to
// serve now, nil while there is none yet (an ACME certificate not yet
// issued).
type Source interface {
	Certificate() *tls.Certificate
}

// Certificates are a TLS listener's certificates, indexed by the names
// they are for: a handshake gets the certificate of the exact name the
// client asked for (SNI), else of its one-label wildcard, else the
// default. Names obtained with ACME are served from their ACME
// certificate, before any file certificate. A Certificates is immutable;
// a reload builds a new one. The certificates behind it change in place:
// an ACME renewal or a new OCSP staple reaches the next handshake.
type Certificates struct {
	exact map[string]Source
	wild  map[string]Source // by the name after "*."
	def   Source
	all   []named
	files []*fileCert
}

// named is a source and the name it is reported under.
type named struct {
	name string
	src  Source
}

// fileCert is a certificate loaded from files, with its OCSP staple when
// its leaf names a responder.
type fileCert struct {
	cur    atomic.Pointer[tls.Certificate]
	staple *staple.State // nil: not stapled; owned by the listener's staple loop
}

func (f *fileCert) Certificate() *tls.Certificate { return f.cur.Load() }

// LoadCertificates reads every certificate of t and indexes it by the DNS
// names of its leaf. The first certificate, or the one marked default, is
// the default.
func LoadCertificates(t *config.TLS) (*Certificates, error) { return NewCertificates(t, nil) }

// NewCertificates reads the certificate files of t and adds acme, the
// sources of the names in t.acme.domains (by domain). Without files, the
// first ACME domain's certificate is the default.
func NewCertificates(t *config.TLS, acme []NamedSource) (*Certificates, error) {
	c := &Certificates{exact: make(map[string]Source), wild: make(map[string]Source)}
	for _, a := range acme {
		c.exact[a.Name] = a.Source
		c.all = append(c.all, named{a.Name, a.Source})
	}
	var def Source
	for _, f := range t.Files() {
		cert, err := loadPair(f.CertFile, f.KeyFile)
		if err != nil {
			return nil, err
		}
		fc := &fileCert{staple: staple.New(cert)}
		fc.cur.Store(cert)
		name, err := c.add(fc, cert)
		if err != nil {
			return nil, fmt.Errorf("certificate %s: %w", f.CertFile, err)
		}
		c.files = append(c.files, fc)
		c.all = append(c.all, named{name, fc})
		if def == nil || f.Default {
			def = fc
		}
	}
	if def == nil && len(acme) > 0 {
		def = acme[0].Source
	}
	if def == nil {
		return nil, errors.New("no certificate")
	}
	c.def = def
	return c, nil
}

// NamedSource is the source of one ACME domain.
type NamedSource struct {
	Name   string
	Source Source
}

func loadPair(certFile, keyFile string) (*tls.Certificate, error) {
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("load tls certificate %s: %w", certFile, err)
	}
	return &cert, nil
}

// add indexes src by the names of cert; the first source for a name
// keeps it. It returns the name the certificate is reported under.
func (c *Certificates) add(src Source, cert *tls.Certificate) (string, error) {
	leaf := cert.Leaf
	if leaf == nil {
		var err error
		if leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return "", fmt.Errorf("parse: %w", err)
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
				c.wild[rest] = src
			}
			continue
		}
		if _, taken := c.exact[n]; !taken {
			c.exact[n] = src
		}
	}
	if len(names) == 0 {
		return leaf.Subject.CommonName, nil
	}
	return names[0], nil
}

// source returns the source for a host name (no port), or nil when only
// the default would serve it.
func (c *Certificates) source(name string) Source {
	name = strings.ToLower(strings.TrimSuffix(name, "."))
	if s, ok := c.exact[name]; ok {
		return s
	}
	if i := strings.IndexByte(name, '.'); i > 0 {
		if s, ok := c.wild[name[i+1:]]; ok {
			return s
		}
	}
	return nil
}

// selectSource returns the source a handshake for name gets.
func (c *Certificates) selectSource(name string) Source {
	if s := c.source(name); s != nil {
		return s
	}
	return c.def
}

// ForName returns the certificate for a host name (no port), or nil when
// only the default would serve it (or its ACME certificate is not issued
// yet).
func (c *Certificates) ForName(name string) *tls.Certificate {
	if s := c.source(name); s != nil {
		return s.Certificate()
	}
	return nil
}

// Select returns the certificate a handshake for name gets; nil while it
// is an ACME certificate not issued yet.
func (c *Certificates) Select(name string) *tls.Certificate {
	return c.selectSource(name).Certificate()
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

// Each calls fn with each certificate served now and the name it is
// reported under (its first DNS name, or its ACME domain); ACME domains
// without a certificate yet are skipped.
func (c *Certificates) Each(fn func(name string, cert *tls.Certificate)) {
	for _, n := range c.all {
		if cert := n.src.Certificate(); cert != nil {
			fn(n.name, cert)
		}
	}
}

// adopt carries the OCSP staples of old over to the same certificates in
// c, so a reload does not fetch them again.
func (c *Certificates) adopt(old *Certificates) {
	if old == nil {
		return
	}
	for _, f := range c.files {
		if f.staple == nil {
			continue
		}
		for _, o := range old.files {
			if f.staple.Adopt(o.staple) {
				f.cur.Store(f.staple.Stapled(time.Now()))
				break
			}
		}
	}
}

// refreshStaples refreshes the staples that are due and returns when the
// next one is (zero when none).
func (c *Certificates) refreshStaples(ctx context.Context, hc *http.Client, log *slog.Logger) time.Time {
	var next time.Time
	for _, f := range c.files {
		s := f.staple
		if s == nil {
			continue
		}
		if !time.Now().Before(s.Next()) {
			if err := s.Refresh(ctx, hc, time.Now()); err != nil && ctx.Err() == nil {
				log.Warn("ocsp staple refresh failed", "certificate", f.cur.Load().Leaf.Subject.CommonName,
					"responder", s.Responder(), "error", err, "retry_at", s.Next())
			}
			f.cur.Store(s.Stapled(time.Now()))
		}
		if n := s.Next(); next.IsZero() || n.Before(next) {
			next = n
		}
	}
	return next
}
