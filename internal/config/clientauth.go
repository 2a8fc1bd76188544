package config

import (
	"encoding/hex"
	"net/url"
	"strings"
)

// ClientAuth configures client certificates on a TLS listener
// (downstream mutual TLS): the listener asks every client for a
// certificate and verifies the one presented against CAFiles and
// CRLFiles. The mtls_auth plugin maps a verified certificate to a
// consumer.
type ClientAuth struct {
	// Mode is "require" (default: a handshake without a valid certificate
	// fails) or "request" (a certificate is asked for and, when presented,
	// must be valid; connections without one are admitted, and routes
	// decide with mtls_auth).
	Mode string `yaml:"mode"`
	// CAFiles are PEM files of the CA certificates a client certificate
	// must chain to. Required, at least one; read at start and on every
	// reload.
	CAFiles []string `yaml:"ca_files"`
	// CRLFiles are certificate revocation lists (PEM or DER), each signed
	// by a CA of CAFiles; a certificate one of them lists is refused.
	// Default: none (no revocation check). Read at start and on every
	// reload; a CRL past its next update fails closed.
	CRLFiles []string `yaml:"crl_files"`
}

// The values of tls.client_auth.mode.
const (
	ClientAuthRequire = "require"
	ClientAuthRequest = "request"
)

// Required reports whether a handshake without a client certificate
// fails (mode "require", the default).
func (c *ClientAuth) Required() bool { return c.Mode != ClientAuthRequest }

// Files returns the CA and CRL files, for the file watcher.
func (c *ClientAuth) Files() []string {
	return append(append([]string(nil), c.CAFiles...), c.CRLFiles...)
}

// The fields a certificate credential (and mtls_auth's match) names.
const (
	CertSHA256    = "sha256"
	CertSANURI    = "san_uri"
	CertSANDNS    = "san_dns"
	CertSubjectCN = "subject_cn"
)

// CertFields are the certificate fields, in mtls_auth's default order:
// the most specific first.
var CertFields = []string{CertSHA256, CertSANURI, CertSANDNS, CertSubjectCN}

// Field returns the field the credential names and its value as
// certificates are compared with it: a fingerprint in lower-case hex
// without colons, a DNS name in lower case without a trailing dot, a URI
// as Go prints it. ok is false when not exactly one field is set or the
// value is malformed (Validate says why).
func (c *CertificateCredential) Field() (field, value string, ok bool) {
	set := 0
	for _, v := range []string{c.SubjectCN, c.SANURI, c.SANDNS, c.SHA256} {
		if v != "" {
			set++
		}
	}
	if set != 1 {
		return "", "", false
	}
	switch {
	case c.SHA256 != "":
		v, ok := NormalizeFingerprint(c.SHA256)
		return CertSHA256, v, ok
	case c.SANURI != "":
		v, ok := NormalizeURI(c.SANURI)
		return CertSANURI, v, ok
	case c.SANDNS != "":
		return CertSANDNS, NormalizeDNSName(c.SANDNS), validSANDNS(c.SANDNS)
	}
	return CertSubjectCN, c.SubjectCN, !hasControl(c.SubjectCN)
}

// NormalizeFingerprint returns a SHA-256 fingerprint (64 hex digits, in
// either case, optionally colon-separated pairs) as 64 lower-case hex
// digits.
func NormalizeFingerprint(s string) (string, bool) {
	if len(s) == 95 && strings.Count(s, ":") == 31 {
		for i := 2; i < len(s); i += 3 {
			if s[i] != ':' {
				return "", false
			}
		}
		s = strings.ReplaceAll(s, ":", "")
	}
	if len(s) != 64 {
		return "", false
	}
	if _, err := hex.DecodeString(s); err != nil {
		return "", false
	}
	return strings.ToLower(s), true
}

// NormalizeURI returns an absolute URI as Go prints the URIs of a
// certificate's subject alternative names.
func NormalizeURI(s string) (string, bool) {
	u, err := url.Parse(s)
	if err != nil || u.Scheme == "" || hasControl(s) || strings.ContainsAny(s, " ") {
		return "", false
	}
	return u.String(), true
}

// NormalizeDNSName returns a DNS name in lower case without a trailing
// dot.
func NormalizeDNSName(s string) string { return strings.ToLower(strings.TrimSuffix(s, ".")) }

// validSANDNS reports whether s is a DNS name, or a one-label wildcard,
// as a certificate's DNS subject alternative name.
func validSANDNS(s string) bool {
	return validDNSName(strings.TrimPrefix(NormalizeDNSName(s), "*."))
}

func hasControl(s string) bool {
	return strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f })
}

// clientAuth checks a listener's tls.client_auth. The files are not read
// here (validation does no I/O); the listener reads them at start and on
// every reload.
func (v *validator) clientAuth(p Path, c *ClientAuth) {
	if c == nil {
		return
	}
	if c.Mode != "" && c.Mode != ClientAuthRequire && c.Mode != ClientAuthRequest {
		v.errf(p.Key("mode"), `must be "require" or "request"`)
	}
	if len(c.CAFiles) == 0 {
		v.errf(p.Key("ca_files"), "is required: PEM files of the CAs that issue the client certificates")
	}
	v.fileList(p, "ca_files", c.CAFiles)
	v.fileList(p, "crl_files", c.CRLFiles)
}

// fileList checks that the paths of list are set and listed once.
func (v *validator) fileList(p Path, key string, list []string) {
	seen := make(map[string]int, len(list))
	for i, f := range list {
		fp := p.Index(key, i)
		if f == "" {
			v.errf(fp, "must be a file path")
			continue
		}
		if j, dup := seen[f]; dup {
			v.errf(fp, "is already listed at %s", p.Index(key, j))
			continue
		}
		seen[f] = i
	}
}

// certificateCredential checks one consumer certificate and that no other
// credential names the same certificate field and value.
func (v *validator) certificateCredential(p Path, c *CertificateCredential, owner string, seen map[string]string) {
	field, value, ok := c.Field()
	if field == "" {
		v.errf(p, "set exactly one of subject_cn, san_uri, san_dns or sha256")
		return
	}
	fp := p.Key(field)
	if !ok {
		switch field {
		case CertSHA256:
			v.errf(fp, "must be the 64 hex digits of the certificate's SHA-256 fingerprint (colon-separated pairs allowed)")
		case CertSANURI:
			v.errf(fp, "must be an absolute URI like spiffe://example.org/ns/prod/sa/billing")
		case CertSANDNS:
			v.errf(fp, "must be a DNS name like client.example.com")
		default:
			v.errf(fp, "must not contain control characters")
		}
		return
	}
	key := field + "\x00" + value
	if other, dup := seen[key]; dup {
		v.errf(fp, "the same certificate %s is already used by consumer %s", field, other)
		return
	}
	seen[key] = owner
}
