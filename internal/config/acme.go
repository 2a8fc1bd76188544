package config

import (
	"net/url"
	"slices"
	"strings"
	"time"
)

// ACME obtains and renews a TLS listener's certificates from an ACME
// certificate authority (RFC 8555), such as Let's Encrypt. Each domain
// gets its own certificate; names listed here are served from those
// certificates, other names from the listener's certificate files.
type ACME struct {
	// Domains are the host names to obtain certificates for, one
	// certificate each. Required; no wildcards (they need DNS-01, which
	// Portico does not answer), no IP addresses.
	Domains []string `yaml:"domains"`
	// Email is the contact address of the ACME account (expiry and
	// policy notices). Optional.
	Email string `yaml:"email"`
	// Directory is the URL of the certificate authority's ACME directory.
	// Default: Let's Encrypt production
	// (https://acme-v02.api.letsencrypt.org/directory).
	Directory string `yaml:"directory"`
	// CAFile is a PEM bundle of the CA certificates that the ACME
	// server's own TLS certificate is verified against, instead of the
	// system roots: for a private ACME server. Optional.
	CAFile string `yaml:"ca_file"`
	// Challenges are the challenge types Portico answers, in order of
	// preference: "http-01" (on the plain listeners, which must be
	// reachable on port 80) and "tls-alpn-01" (on the TLS listeners, port
	// 443). Default: both.
	Challenges []string `yaml:"challenges"`
	// RenewBefore is how long before expiry a certificate is renewed;
	// certificates that live less than twice as long are renewed at half
	// their lifetime. Default 720h (30 days).
	RenewBefore Duration `yaml:"renew_before"`
	// Storage is where the account key and the certificates are kept
	// when no store.redis is configured.
	Storage ACMEStorage `yaml:"storage"`
}

// ACMEStorage configures where ACME state is kept on disk.
type ACMEStorage struct {
	// Dir is the directory of the account keys, certificates and
	// issuance locks. Default: $XDG_STATE_HOME/portico/acme, else
	// /var/lib/portico/acme when running as root, else
	// ~/.local/state/portico/acme. Ignored when store.redis is set:
	// the state is kept in Redis then.
	Dir string `yaml:"dir"`
}

// The ACME defaults.
const (
	// DefaultACMEDirectory is Let's Encrypt's production directory.
	DefaultACMEDirectory = "https://acme-v02.api.letsencrypt.org/directory"
	// DefaultACMERenewBefore is how long before expiry certificates are
	// renewed.
	DefaultACMERenewBefore = Duration(30 * 24 * time.Hour)
)

// The ACME challenge types Portico answers.
const (
	ChallengeHTTP01    = "http-01"
	ChallengeTLSALPN01 = "tls-alpn-01"
)

func (a *ACME) applyDefaults() {
	if a == nil {
		return
	}
	setDefault(&a.Directory, DefaultACMEDirectory)
	setDefault(&a.RenewBefore, DefaultACMERenewBefore)
	if len(a.Challenges) == 0 {
		a.Challenges = []string{ChallengeHTTP01, ChallengeTLSALPN01}
	}
	for i, d := range a.Domains {
		a.Domains[i] = strings.ToLower(strings.TrimSuffix(d, "."))
	}
}

// Has reports whether name (lowercase, no port) is one of the domains.
func (a *ACME) Has(name string) bool {
	return a != nil && slices.Contains(a.Domains, name)
}

// acme checks a listener's tls.acme.
func (v *validator) acme(p Path, a *ACME) {
	if len(a.Domains) == 0 {
		v.errf(p.Key("domains"), "is required: the host names to obtain certificates for")
	}
	seen := make(map[string]bool, len(a.Domains))
	for i, d := range a.Domains {
		dp := p.Index("domains", i)
		switch {
		case strings.HasPrefix(d, "*."):
			v.errf(dp, "wildcard names need the DNS-01 challenge, which Portico does not answer; list each name")
		case validIP(d):
			v.errf(dp, "must be a host name, not an IP address")
		case !validDNSName(d) || !strings.Contains(d, "."):
			v.errf(dp, "must be a fully qualified host name (letters, digits, '-', '.')")
		case seen[d]:
			v.errf(dp, "duplicate domain %s", v.q(dp, d))
		}
		seen[d] = true
	}
	if a.Email != "" && (!strings.Contains(a.Email, "@") || strings.ContainsAny(a.Email, " \t\r\n,<>")) {
		v.errf(p.Key("email"), "must be an email address")
	}
	if u, err := url.Parse(a.Directory); err != nil || u.Scheme != "https" || u.Host == "" {
		v.errf(p.Key("directory"), "must be an https URL (ACME requires TLS)")
	}
	if len(a.Challenges) > 2 {
		v.errf(p.Key("challenges"), `must list "http-01", "tls-alpn-01" or both`)
	}
	for i, c := range a.Challenges {
		if c != ChallengeHTTP01 && c != ChallengeTLSALPN01 {
			v.errf(p.Index("challenges", i), `must be "http-01" or "tls-alpn-01"`)
		} else if slices.Index(a.Challenges, c) != i {
			v.errf(p.Index("challenges", i), "duplicate challenge type")
		}
	}
	if d := a.RenewBefore.D(); d < time.Second || d > 365*24*time.Hour {
		v.errf(p.Key("renew_before"), "must be between 1s and 8760h")
	}
}

// acmeListeners checks what ACME needs from the listeners as a whole: a
// plain listener for http-01, and each domain on one listener only.
func (v *validator) acmeListeners(list []Listener) {
	type at struct {
		listener int
		p        Path
	}
	owner := make(map[string]at)
	plain := slices.ContainsFunc(list, func(l Listener) bool { return l.TLS == nil })
	for i := range list {
		l := &list[i]
		if l.TLS == nil || l.TLS.ACME == nil {
			continue
		}
		p := l.path.Key("tls").Key("acme")
		a := l.TLS.ACME
		if slices.Equal(a.Challenges, []string{ChallengeHTTP01}) && !plain {
			v.errf(p.Key("challenges"), "http-01 is answered on plain listeners and there is none: add one (port 80) or allow tls-alpn-01")
		}
		for j, d := range a.Domains {
			if o, ok := owner[d]; ok {
				if o.listener != i { // duplicates within a list are reported by acme
					v.errf(p.Index("domains", j), "is already obtained for %s", o.p)
				}
				continue
			}
			owner[d] = at{i, p.Index("domains", j)}
		}
	}
}
