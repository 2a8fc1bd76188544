// Package mtlsauth implements the mtls_auth plugin: a caller is identified
// by the client certificate its TLS connection presented, verified by the
// listener (tls.client_auth: CAs, validity, client-auth key usage,
// revocation). The certificate is mapped to a consumer by the fields of
// match, tried in order (fingerprint, URI and DNS subject alternative
// names, subject common name), among the consumers' certificate
// credentials.
//
// Only a certificate the listener verified counts (the connection's
// verified chains): on a listener without client_auth no certificate is
// ever asked for, and the plugin fails every request; the compiler
// refuses a route with mtls_auth that only such listeners serve.
//
// Like every authentication plugin, mtls_auth only records what it found;
// the auth gate that follows it admits or refuses the request. With
// forward it tells the upstream about the certificate, in headers that
// the gateway removes from every client request first, on every route.
package mtlsauth

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"net/http"
	"strings"

	"github.com/portico-gateway/portico/internal/config"
	"github.com/portico-gateway/portico/internal/consumer"
	"github.com/portico-gateway/portico/internal/pipeline"
)

// Name is the plugin's config key.
const Name = "mtls_auth"

// Challenge is the WWW-Authenticate value sent with a 401. No registered
// HTTP authentication scheme names TLS client certificates; the scheme
// says what the client must do (connect with a certificate), as key_auth's
// APIKey does.
const Challenge = `MutualTLS realm="portico"`

// The headers forward sets, in canonical form.
const (
	HeaderSubject     = "X-Client-Cert-Subject"
	HeaderIssuer      = "X-Client-Cert-Issuer"
	HeaderSerial      = "X-Client-Cert-Serial"
	HeaderFingerprint = "X-Client-Cert-Fingerprint"
	HeaderSANURI      = "X-Client-Cert-San-Uri"
	HeaderSANDNS      = "X-Client-Cert-San-Dns"
	HeaderCert        = "Client-Cert"       // RFC 9440
	HeaderCertChain   = "Client-Cert-Chain" // RFC 9440
)

// IdentityHeaders are every header forward may set. They are declared
// whatever forward says, so the gateway strips client-sent copies of all
// of them on every route: an upstream that reads them can never get the
// client's own.
var IdentityHeaders = []string{HeaderSubject, HeaderIssuer, HeaderSerial, HeaderFingerprint,
	HeaderSANURI, HeaderSANDNS, HeaderCert, HeaderCertChain}

// Registration declares the mtls_auth pipeline.
func Registration() pipeline.Registration {
	return pipeline.Registration{
		Name:            Name,
		Phase:           pipeline.PhaseAuthenticate,
		Spec:            func() pipeline.Spec { return DefaultSpec() },
		Build:           build,
		IdentityHeaders: func(pipeline.Spec) []string { return IdentityHeaders },
	}
}

var (
	missing = pipeline.AuthFailure{Status: http.StatusUnauthorized, Challenge: Challenge,
		Detail: "a client certificate is required"}
	unknown = pipeline.AuthFailure{Status: http.StatusUnauthorized, Challenge: Challenge,
		Detail: "the client certificate is not registered to any consumer", Presented: true}
	ambiguous = pipeline.AuthFailure{Status: http.StatusUnauthorized, Challenge: Challenge,
		Detail: "the client certificate matches more than one consumer", Presented: true}
)

var errAmbiguous = errors.New("more than one consumer")

type mtlsAuth struct {
	match     []string
	forward   string
	consumers *consumer.Registry
}

func build(s pipeline.Spec, env *pipeline.BuildEnv) (pipeline.Middleware, error) {
	spec := s.(*Spec)
	if err := reachable(env); err != nil {
		return nil, err
	}
	m := &mtlsAuth{match: spec.Match, forward: spec.Forward, consumers: env.Consumers}
	return m.middleware, nil
}

// reachable refuses a route that takes requests only from listeners
// without tls.client_auth: no request of it could ever pass.
func reachable(env *pipeline.BuildEnv) error {
	if env.Listeners == nil {
		return nil
	}
	names := make([]string, 0, len(env.Listeners))
	for _, l := range env.Listeners {
		if l.TLS != nil && l.TLS.ClientAuth != nil {
			return nil
		}
		names = append(names, l.Name)
	}
	return errors.New("route " + quote(env.Route) + " takes requests only from listeners without tls.client_auth (" +
		strings.Join(names, ", ") + "), where no client certificate is ever verified; set tls.client_auth on one of them, " +
		"or name a listener that has it in the route's listeners")
}

func quote(s string) string { return `"` + s + `"` }

func (m *mtlsAuth) middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ex := pipeline.FromContext(r.Context())
		if ex == nil {
			next.ServeHTTP(w, r)
			return
		}
		chain := verifiedChain(r)
		if chain == nil {
			ex.AuthFailed(missing)
			next.ServeHTTP(w, r)
			return
		}
		leaf := chain[0]
		d := sha256.Sum256(leaf.Raw)
		c, err := m.lookup(leaf, d)
		switch {
		case errors.Is(err, errAmbiguous):
			ex.AuthFailed(ambiguous)
		case c == nil:
			ex.AuthFailed(unknown)
		default:
			ex.AuthPassed(c, CredentialID(d))
		}
		switch m.forward {
		case ForwardHeaders:
			setHeaders(r.Header, leaf, d)
		case ForwardRFC9440:
			setRFC9440(r.Header, chain)
		}
		next.ServeHTTP(w, r)
	})
}

// verifiedChain returns the first chain the listener verified for the
// connection's client certificate, leaf first, or nil when there is none
// (no certificate, or a listener that does not verify them).
func verifiedChain(r *http.Request) []*x509.Certificate {
	if r.TLS == nil || len(r.TLS.VerifiedChains) == 0 || len(r.TLS.VerifiedChains[0]) == 0 {
		return nil
	}
	return r.TLS.VerifiedChains[0]
}

// lookup tries the fields of match in order and returns the consumer the
// first field with a credential names; errAmbiguous when the values of
// one field (several SANs) name different consumers.
func (m *mtlsAuth) lookup(leaf *x509.Certificate, d [sha256.Size]byte) (*consumer.Consumer, error) {
	for _, field := range m.match {
		var found *consumer.Consumer
		try := func(value string) error {
			c, ok := m.consumers.ByCertificate(field, value)
			switch {
			case !ok:
			case found == nil:
				found = c
			case found != c:
				return errAmbiguous
			}
			return nil
		}
		var err error
		switch field {
		case config.CertSHA256:
			err = try(hex.EncodeToString(d[:]))
		case config.CertSANURI:
			for _, u := range leaf.URIs {
				if err = try(u.String()); err != nil {
					break
				}
			}
		case config.CertSANDNS:
			for _, n := range leaf.DNSNames {
				if err = try(config.NormalizeDNSName(n)); err != nil {
					break
				}
			}
		case config.CertSubjectCN:
			if cn := leaf.Subject.CommonName; cn != "" {
				err = try(cn)
			}
		}
		if err != nil || found != nil {
			return found, err
		}
	}
	return nil, nil
}

// setHeaders sets the X-Client-Cert-* headers of the leaf certificate.
func setHeaders(h http.Header, leaf *x509.Certificate, d [sha256.Size]byte) {
	h[HeaderSubject] = []string{escapeDN(leaf.Subject.String())}
	h[HeaderIssuer] = []string{escapeDN(leaf.Issuer.String())}
	h[HeaderSerial] = []string{strings.ToUpper(leaf.SerialNumber.Text(16))}
	h[HeaderFingerprint] = []string{hex.EncodeToString(d[:])}
	if len(leaf.URIs) > 0 {
		uris := make([]string, len(leaf.URIs))
		for i, u := range leaf.URIs {
			uris[i] = escapeListItem(u.String())
		}
		h[HeaderSANURI] = []string{strings.Join(uris, ", ")}
	}
	if len(leaf.DNSNames) > 0 {
		names := make([]string, len(leaf.DNSNames))
		for i, n := range leaf.DNSNames {
			names[i] = escapeListItem(n)
		}
		h[HeaderSANDNS] = []string{strings.Join(names, ", ")}
	}
}

// setRFC9440 sets Client-Cert to the leaf and Client-Cert-Chain to the
// certificates between it and the trust anchor, each a Structured Field
// byte sequence (RFC 9440 §2). The anchor, a CA of ca_files, is left out
// (§2.3 allows it); without intermediates there is no Client-Cert-Chain.
func setRFC9440(h http.Header, chain []*x509.Certificate) {
	h[HeaderCert] = []string{byteSequence(chain[0].Raw)}
	if len(chain) > 2 {
		items := make([]string, 0, len(chain)-2)
		for _, c := range chain[1 : len(chain)-1] {
			items = append(items, byteSequence(c.Raw))
		}
		h[HeaderCertChain] = []string{strings.Join(items, ", ")}
	}
}

// byteSequence is b as a Structured Field byte sequence (RFC 8941 §3.3.5).
func byteSequence(b []byte) string {
	out := make([]byte, 0, base64.StdEncoding.EncodedLen(len(b))+2)
	out = append(out, ':')
	out = base64.StdEncoding.AppendEncode(out, b)
	return string(append(out, ':'))
}

// escapeDN makes an RFC 4514 distinguished name safe as a header value:
// bytes outside printable ASCII become \XX escapes, which RFC 4514 reads
// as the same bytes.
func escapeDN(s string) string {
	return escapeBytes(s, '\\', func(c byte) bool { return c < 0x20 || c >= 0x7f })
}

// escapeListItem makes a SAN safe as an item of a comma-separated header
// value: commas and bytes outside visible ASCII become %XX.
func escapeListItem(s string) string {
	return escapeBytes(s, '%', func(c byte) bool { return c <= 0x20 || c >= 0x7f || c == ',' })
}

func escapeBytes(s string, mark byte, escape func(byte) bool) string {
	n := 0
	for i := 0; i < len(s); i++ {
		if escape(s[i]) {
			n++
		}
	}
	if n == 0 {
		return s
	}
	const digits = "0123456789ABCDEF"
	var b strings.Builder
	b.Grow(len(s) + 2*n)
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !escape(c) {
			b.WriteByte(c)
			continue
		}
		b.WriteByte(mark)
		b.WriteByte(digits[c>>4])
		b.WriteByte(digits[c&0xf])
	}
	return b.String()
}

// CredentialID is the credential id of a certificate whose SHA-256 is d:
// "mtls:" and the fingerprint's first 12 hex digits. It never carries the
// certificate.
func CredentialID(d [sha256.Size]byte) string {
	var buf [len("mtls:") + 12]byte
	n := copy(buf[:], "mtls:")
	hex.Encode(buf[n:], d[:6])
	return string(buf[:])
}
