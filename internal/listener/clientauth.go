package listener

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/portico-gateway/portico/internal/config"
)

// Client certificates (tls.client_auth). A handshake on a listener with a
// ClientAuth gets a copy of the listener's tls.Config that asks for a
// certificate: Go verifies it (chain to a CA of ca_files, validity, the
// client-auth key usage), and VerifyConnection then refuses it when a CRL
// of its issuer lists it. VerifyConnection runs on resumed sessions too,
// and Go re-checks a resumed session's chain against the current CAs, so
// a reload that revokes a certificate or drops a CA also closes the door
// to resumption. A connection opened before such a reload is checked
// again on each request (Accepts) and answered 421, so the client opens a
// new one.
//
// A CRL past its next update fails closed: certificates of the CA that
// signed it are refused until a current CRL is in place (the file watcher
// reloads when it is replaced). The same CRL refuses to load.

var (
	errNoChain        = errors.New("the client certificate was not verified")
	errUntrusted      = errors.New("the client certificate no longer chains to a CA of client_auth.ca_files")
	errRevoked        = errors.New("the client certificate is revoked")
	errCRLExpired     = errors.New("the CRL of the client certificate's issuer is past its next update")
	errCertOutOfRange = errors.New("the client certificate is expired or not yet valid")
)

// ClientAuth is a TLS listener's client certificate policy: the mode, the
// CAs and the revocation lists, loaded from config.ClientAuth. It is
// immutable; a reload loads a new one.
type ClientAuth struct {
	mode    tls.ClientAuthType
	pool    *x509.CertPool
	anchors map[string]bool // the DER of every CA certificate
	crls    map[string]*crl // by issuerKey of the CA that signed it
	now     func() time.Time
}

// crl is what the CRLs of one CA say.
type crl struct {
	file    string
	next    time.Time       // the earliest next update; zero for none
	revoked map[string]bool // serial numbers, big-endian bytes
}

// issuerKey identifies a CA by its subject and public key.
func issuerKey(c *x509.Certificate) string {
	return string(c.RawSubject) + "\x00" + string(c.RawSubjectPublicKeyInfo)
}

// LoadClientAuth reads the CA and CRL files of c; nil c gives nil (no
// client certificates). Errors are located at p (the listener's
// tls.client_auth) and its ca_files[i] or crl_files[i]: a file that cannot
// be read or holds no certificate or CRL, a CRL that no CA of ca_files
// signed, or a CRL past its next update.
func LoadClientAuth(c *config.ClientAuth, p config.Path) (*ClientAuth, error) {
	return loadClientAuth(c, p, time.Now)
}

func loadClientAuth(c *config.ClientAuth, p config.Path, now func() time.Time) (*ClientAuth, error) {
	if c == nil {
		return nil, nil
	}
	a := &ClientAuth{mode: tls.RequireAndVerifyClientCert, pool: x509.NewCertPool(),
		anchors: make(map[string]bool), crls: make(map[string]*crl), now: now}
	if !c.Required() {
		a.mode = tls.VerifyClientCertIfGiven
	}
	var cas []*x509.Certificate
	for i, f := range c.CAFiles {
		certs, err := readCAs(f)
		if err != nil {
			return nil, p.Index("ca_files", i).Errorf("%s", err.Error())
		}
		for _, cert := range certs {
			a.pool.AddCert(cert)
			a.anchors[string(cert.Raw)] = true
		}
		cas = append(cas, certs...)
	}
	if len(cas) == 0 {
		return nil, p.Key("ca_files").Errorf("no CA certificate")
	}
	for i, f := range c.CRLFiles {
		if err := a.addCRLs(f, cas, now()); err != nil {
			return nil, p.Index("crl_files", i).Errorf("%s", err.Error())
		}
	}
	return a, nil
}

// readCAs reads the PEM certificates of a CA file.
func readCAs(file string) ([]*x509.Certificate, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("read CA file: %w", err)
	}
	var out []*x509.Certificate
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("CA file %s: parse certificate: %w", file, err)
		}
		out = append(out, cert)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("CA file %s: no PEM certificate found", file)
	}
	return out, nil
}

// addCRLs reads the CRLs of file (one DER CRL, or PEM "X509 CRL" blocks)
// and adds each to the CA of cas that signed it.
func (a *ClientAuth) addCRLs(file string, cas []*x509.Certificate, now time.Time) error {
	data, err := os.ReadFile(file)
	if err != nil {
		return fmt.Errorf("read CRL file: %w", err)
	}
	var ders [][]byte
	if bytes.Contains(data, []byte("-----BEGIN")) {
		for {
			var block *pem.Block
			block, data = pem.Decode(data)
			if block == nil {
				break
			}
			if block.Type == "X509 CRL" {
				ders = append(ders, block.Bytes)
			}
		}
		if len(ders) == 0 {
			return fmt.Errorf("CRL file %s: no PEM X509 CRL found", file)
		}
	} else {
		ders = [][]byte{data}
	}
	for _, der := range ders {
		rl, err := x509.ParseRevocationList(der)
		if err != nil {
			return fmt.Errorf("CRL file %s: parse: %w", file, err)
		}
		issuer := signerOf(rl, cas)
		if issuer == nil {
			return fmt.Errorf("CRL file %s: not signed by a CA of ca_files (issuer %s)", file, rl.Issuer.String())
		}
		if !rl.NextUpdate.IsZero() && now.After(rl.NextUpdate) {
			return fmt.Errorf("CRL file %s: expired at %s (its next update); install a current CRL from %s",
				file, rl.NextUpdate.UTC().Format(time.RFC3339), rl.Issuer.String())
		}
		k := issuerKey(issuer)
		c := a.crls[k]
		if c == nil {
			c = &crl{file: file, revoked: make(map[string]bool)}
			a.crls[k] = c
		}
		if !rl.NextUpdate.IsZero() && (c.next.IsZero() || rl.NextUpdate.Before(c.next)) {
			c.next, c.file = rl.NextUpdate, file
		}
		for _, e := range rl.RevokedCertificateEntries {
			c.revoked[string(e.SerialNumber.Bytes())] = true
		}
	}
	return nil
}

// signerOf returns the CA of cas that issued and signed rl, or nil.
func signerOf(rl *x509.RevocationList, cas []*x509.Certificate) *x509.Certificate {
	for _, ca := range cas {
		if bytes.Equal(rl.RawIssuer, ca.RawSubject) && rl.CheckSignatureFrom(ca) == nil {
			return ca
		}
	}
	return nil
}

// check reports whether the verified chains of a connection are still
// accepted: at least one chain ends at a CA of the policy, every
// certificate of it is within its validity, and no certificate of any
// chain is listed by a CRL of its issuer (nor is that CRL past its next
// update: revocation unknown fails closed).
func (a *ClientAuth) check(chains [][]*x509.Certificate) error {
	if len(chains) == 0 {
		return errNoChain
	}
	now := a.now()
	accepted, err := false, errUntrusted
	for _, chain := range chains {
		if len(chain) == 0 || !a.anchors[string(chain[len(chain)-1].Raw)] {
			continue
		}
		switch e := a.checkChain(chain, now); {
		case e == nil:
			accepted = true
		case errors.Is(e, errCertOutOfRange):
			err = e
		default:
			return e // revoked, or revocation unknown: by any chain
		}
	}
	if accepted {
		return nil
	}
	return err
}

func (a *ClientAuth) checkChain(chain []*x509.Certificate, now time.Time) error {
	for i, cert := range chain {
		if now.Before(cert.NotBefore) || now.After(cert.NotAfter) {
			return errCertOutOfRange
		}
		if i == len(chain)-1 {
			break
		}
		c := a.crls[issuerKey(chain[i+1])]
		if c == nil {
			continue
		}
		if !c.next.IsZero() && now.After(c.next) {
			return fmt.Errorf("%w (%s, %s)", errCRLExpired, c.file, c.next.UTC().Format(time.RFC3339))
		}
		if c.revoked[string(cert.SerialNumber.Bytes())] {
			return errRevoked
		}
	}
	return nil
}

// verifyConnection is the tls.Config hook: connections without a client
// certificate pass (the mode decides whether there are such), the others
// must pass check.
func (a *ClientAuth) verifyConnection(cs tls.ConnectionState) error {
	if len(cs.PeerCertificates) == 0 {
		return nil
	}
	return a.check(cs.VerifiedChains)
}

// Accepts reports whether a request on a connection with state cs may be
// served under the policy a (nil: the listener takes no client
// certificates now): a connection without a client certificate always
// may; one with a certificate only while a still accepts it, so that a
// reload that revokes the certificate or drops its CA reaches the
// connections already open.
func (a *ClientAuth) Accepts(cs *tls.ConnectionState) bool {
	if cs == nil || len(cs.PeerCertificates) == 0 {
		return true
	}
	return a != nil && a.check(cs.VerifiedChains) == nil
}

// installClientAuth makes cfg hand each handshake, while the listener has
// a client certificate policy, a copy of cfg that asks for a certificate
// with the policy's mode, CAs and revocation check. The copy is made per
// handshake so that it carries the current session ticket keys and ALPN
// protocols of cfg.
func (l *Listener) installClientAuth(cfg *tls.Config) {
	cfg.GetConfigForClient = func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
		a := l.clientAuth.Load()
		if a == nil || isACMEValidation(hello) {
			// An ACME server validating TLS-ALPN-01 has no client
			// certificate; its handshake serves no request.
			return nil, nil
		}
		c := cfg.Clone()
		c.GetConfigForClient = nil
		if len(c.NextProtos) == 0 { // PORTICO_HTTP_SERVER=std sets them on its own copy of cfg
			c.NextProtos = []string{"h2", "http/1.1"}
		}
		c.ClientAuth = a.mode
		c.ClientCAs = a.pool
		c.VerifyConnection = a.verifyConnection
		return c, nil
	}
}

// SetClientAuth replaces the listener's client certificate policy (nil:
// no certificates asked for). New handshakes get it at once; requests on
// connections already open are checked against it (see Accepts).
func (l *Listener) SetClientAuth(a *ClientAuth) { l.clientAuth.Store(a) }
