package cors

import (
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/portico-gateway/portico/internal/config"
	"github.com/portico-gateway/portico/internal/pipeline"
)

// Defaults of the cors settings.
var (
	// DefaultMethods are the methods allowed when allow_methods is not set.
	DefaultMethods = []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}
	// DefaultHeaders are the request headers allowed when allow_headers is
	// not set.
	DefaultHeaders = []string{"Accept", "Accept-Language", "Content-Language", "Content-Type", "Authorization", "X-Request-ID"}
)

// DefaultMaxAge is how long browsers may cache a preflight answer when
// max_age is not set.
const DefaultMaxAge = 10 * time.Minute

// MaxMaxAge is the largest max_age accepted: browsers cap the value at 24
// hours (Chromium at 2 hours), so a larger one only misleads.
const MaxMaxAge = 24 * time.Hour

// Spec configures cors.
type Spec struct {
	// AllowOrigins lists the origins whose pages may call the route:
	// exact origins ("https://app.example.com", scheme://host[:port] with
	// no path), wildcard subdomain patterns ("https://*.example.com",
	// matching one or more labels in front of the domain), or "*" alone
	// for any origin. Required.
	AllowOrigins []string `yaml:"allow_origins"`
	// AllowMethods are the methods a preflight may ask for, upper case.
	// Default GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS.
	AllowMethods []string `yaml:"allow_methods"`
	// AllowHeaders are the request headers a preflight may ask for
	// (compared case-insensitively). Default Accept, Accept-Language,
	// Content-Language, Content-Type, Authorization, X-Request-ID. "*"
	// allows any header, and only without AllowCredentials.
	AllowHeaders []string `yaml:"allow_headers"`
	// ExposeHeaders are the response headers scripts may read beyond the
	// CORS-safelisted ones. Default none. "*" exposes all, and only
	// without AllowCredentials.
	ExposeHeaders []string `yaml:"expose_headers"`
	// AllowCredentials lets pages send cookies and HTTP authentication
	// (Access-Control-Allow-Credentials: true). Default false; cannot be
	// combined with the "*" origin.
	AllowCredentials bool `yaml:"allow_credentials"`
	// MaxAge is how long a browser may cache a preflight answer, sent in
	// whole seconds. Default 10m; 0 omits Access-Control-Max-Age; at most
	// 24h.
	MaxAge config.Duration `yaml:"max_age"`
	// PrivateNetwork answers preflights that carry
	// Access-Control-Request-Private-Network: true with
	// Access-Control-Allow-Private-Network: true, letting public pages call
	// a gateway on a private network. Default false.
	PrivateNetwork bool `yaml:"private_network"`
}

var _ pipeline.Spec = (*Spec)(nil)

// newSpec returns a Spec holding the defaults.
func newSpec() *Spec {
	return &Spec{
		AllowMethods: append([]string(nil), DefaultMethods...),
		AllowHeaders: append([]string(nil), DefaultHeaders...),
		MaxAge:       config.Duration(DefaultMaxAge),
	}
}

const originSyntax = `write scheme://host[:port] such as "https://app.example.com", a subdomain pattern such as "https://*.example.com", or "*" alone`

// Validate checks every list entry and the combinations browsers refuse.
func (s *Spec) Validate(p config.Path) error {
	var errs []error
	errs = append(errs, s.validateOrigins(p)...)

	if len(s.AllowMethods) == 0 {
		errs = append(errs, p.Key("allow_methods").Errorf("must list at least one method, such as GET"))
	}
	seen := make(map[string]bool)
	for i, m := range s.AllowMethods {
		switch {
		case m == "*":
			errs = append(errs, p.Index("allow_methods", i).Errorf(`"*" is not supported; list the methods, such as GET, POST`))
		case !isMethod(m):
			if isMethod(strings.ToUpper(m)) {
				errs = append(errs, p.Index("allow_methods", i).Errorf("%q: methods are case-sensitive; write %q", m, strings.ToUpper(m)))
			} else {
				errs = append(errs, p.Index("allow_methods", i).Errorf("%q is not a method: use upper-case letters, digits, - and _ (such as GET)", m))
			}
		case seen[m]:
			errs = append(errs, p.Index("allow_methods", i).Errorf("%q is listed twice", m))
		}
		seen[m] = true
	}

	errs = append(errs, validateHeaders(p, "allow_headers", s.AllowHeaders, s.AllowCredentials)...)
	errs = append(errs, validateHeaders(p, "expose_headers", s.ExposeHeaders, s.AllowCredentials)...)

	switch d := s.MaxAge.D(); {
	case d < 0:
		errs = append(errs, p.Key("max_age").Errorf("must not be negative; 0 omits Access-Control-Max-Age"))
	case d > 0 && d < time.Second:
		errs = append(errs, p.Key("max_age").Errorf("must be 0 (header omitted) or at least 1s: it is sent in whole seconds"))
	case d > MaxMaxAge:
		errs = append(errs, p.Key("max_age").Errorf("must be at most 24h: browsers cap it there (Chromium at 2h)"))
	}
	return errors.Join(errs...)
}

// validateOrigins checks allow_origins.
func (s *Spec) validateOrigins(p config.Path) []error {
	var errs []error
	if len(s.AllowOrigins) == 0 {
		return []error{p.Key("allow_origins").Errorf("must list at least one origin: %s", originSyntax)}
	}
	seen := make(map[string]bool)
	for i, o := range s.AllowOrigins {
		ip := p.Index("allow_origins", i)
		if o == "*" {
			switch {
			case len(s.AllowOrigins) > 1:
				errs = append(errs, ip.Errorf(`"*" allows every origin and must be the only entry`))
			case s.AllowCredentials:
				errs = append(errs, ip.Errorf(`"*" cannot be combined with allow_credentials: true: browsers refuse a wildcard origin on credentialed requests; list the origins instead`))
			}
			continue
		}
		key, why := checkOrigin(o)
		if why != "" {
			errs = append(errs, ip.Errorf("%q %s; %s", o, why, originSyntax))
			continue
		}
		if seen[key] {
			errs = append(errs, ip.Errorf("%q is listed twice", o))
		}
		seen[key] = true
	}
	return errs
}

// checkOrigin returns the normalised form of an allow_origins entry (an
// exact origin or a "*." pattern), or why it is not one.
func checkOrigin(o string) (key, why string) {
	if o == "" {
		return "", "is empty"
	}
	if o == "null" {
		return "", `is refused: the "null" origin is sent by sandboxed frames and local files, and any page can produce it`
	}
	i := strings.Index(o, "://")
	if i < 0 {
		return "", "has no scheme"
	}
	if !isScheme(o[:i]) {
		return "", "has an invalid scheme"
	}
	rest := o[i+3:]
	if j := strings.IndexAny(rest, "/?#"); j >= 0 {
		switch rest[j] {
		case '?':
			return "", "must not have a query"
		case '#':
			return "", "must not have a fragment"
		}
		if j == len(rest)-1 {
			return "", "must not end with a slash"
		}
		return "", "must not have a path"
	}
	if strings.Contains(rest, "@") {
		return "", "must not have a user name or password"
	}
	pattern := strings.HasPrefix(rest, "*.")
	if pattern {
		rest = rest[2:]
	}
	if strings.Contains(rest, "*") {
		return "", `may hold "*" only as the whole first label, as in "https://*.example.com"`
	}
	var parts origin
	var ok bool
	if pattern {
		parts, ok = splitOrigin(o[:i+3] + "x." + rest)
	} else {
		parts, ok = splitOrigin(o)
	}
	if !ok {
		return "", "is not a valid origin (host or port)"
	}
	if pattern && strings.Count(parts.host, ".") < 2 {
		return "", `is too broad: a pattern needs a domain of at least two labels after "*.", as in "https://*.example.com"`
	}
	key = parts.key()
	if pattern {
		key = strings.Replace(key, "://x.", "://*.", 1)
	}
	return key, ""
}

// validateHeaders checks a list of header names at p.key.
func validateHeaders(p config.Path, key string, names []string, credentials bool) []error {
	var errs []error
	seen := make(map[string]bool)
	for i, h := range names {
		ip := p.Index(key, i)
		switch {
		case h == "*":
			if credentials {
				errs = append(errs, ip.Errorf(`"*" cannot be combined with allow_credentials: true: browsers read it as a header named "*" on credentialed requests; list the headers`))
			}
		case !config.IsHeaderName(h):
			errs = append(errs, ip.Errorf("%q is not a header name: use 1 to 128 letters, digits, - and _", h))
		case seen[strings.ToLower(h)]:
			errs = append(errs, ip.Errorf("%q is listed twice", h))
		}
		seen[strings.ToLower(h)] = true
	}
	return errs
}

// isMethod reports whether m is an upper-case method token.
func isMethod(m string) bool {
	for i := 0; i < len(m); i++ {
		c := m[i]
		if !(c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return m != "" && len(m) <= 32
}

// isScheme reports whether s is a URI scheme (RFC 3986).
func isScheme(s string) bool {
	if s == "" || len(s) > 32 || !isLetter(s[0]) {
		return false
	}
	for i := 1; i < len(s); i++ {
		c := s[i]
		if !(isLetter(c) || c >= '0' && c <= '9' || c == '+' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}

func isLetter(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }

// origin is an origin split into its parts, which alias the parsed string.
// port is "" for the scheme's default port.
type origin struct {
	scheme, host, port string
}

// key returns the normalised origin: lower-case scheme and host, default
// port left out.
func (o origin) key() string {
	k := strings.ToLower(o.scheme) + "://" + strings.ToLower(o.host)
	if o.port != "" {
		k += ":" + o.port
	}
	return k
}

// splitOrigin parses s as scheme://host[:port] without allocating. The host
// is a DNS name (letters, digits, - and _, in non-empty labels), an IPv4
// address or a bracketed IPv6 address; a default port (80 for http and ws,
// 443 for https and wss) is returned as "".
func splitOrigin(s string) (origin, bool) {
	i := strings.Index(s, "://")
	if i <= 0 || !isScheme(s[:i]) {
		return origin{}, false
	}
	o := origin{scheme: s[:i]}
	rest := s[i+3:]
	if strings.HasPrefix(rest, "[") {
		j := strings.IndexByte(rest, ']')
		if j < 0 || !isIPv6(rest[1:j]) {
			return origin{}, false
		}
		o.host, rest = rest[:j+1], rest[j+1:]
		if rest != "" {
			if rest[0] != ':' || !isPort(rest[1:]) {
				return origin{}, false
			}
			o.port = rest[1:]
		}
	} else {
		o.host = rest
		if j := strings.LastIndexByte(rest, ':'); j >= 0 {
			o.host, o.port = rest[:j], rest[j+1:]
			if !isPort(o.port) {
				return origin{}, false
			}
		}
		if !isHostName(o.host) {
			return origin{}, false
		}
	}
	if o.port != "" && o.port == defaultPort(o.scheme) {
		o.port = ""
	}
	return o, true
}

// defaultPort returns the default port of scheme, or "".
func defaultPort(scheme string) string {
	switch {
	case strings.EqualFold(scheme, "https"), strings.EqualFold(scheme, "wss"):
		return "443"
	case strings.EqualFold(scheme, "http"), strings.EqualFold(scheme, "ws"):
		return "80"
	}
	return ""
}

// isPort reports whether s is a decimal port 1-65535 without leading zeros.
func isPort(s string) bool {
	if s == "" || len(s) > 5 || s[0] == '0' {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	n, err := strconv.Atoi(s)
	return err == nil && n <= 65535
}

// isHostName reports whether s is a DNS name or IPv4 address: non-empty
// labels of letters, digits, - and _, at most 253 bytes.
func isHostName(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	label := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '.':
			if label == 0 {
				return false
			}
			label = 0
		case isLetter(c) || c >= '0' && c <= '9' || c == '-' || c == '_':
			label++
			if label > 63 {
				return false
			}
		default:
			return false
		}
	}
	return label > 0
}

// isIPv6 reports whether s looks like an IPv6 address (hex digits, colons
// and dots); the browser has already checked it.
func isIPv6(s string) bool {
	if len(s) < 2 || !strings.Contains(s, ":") {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F' || c == ':' || c == '.') {
			return false
		}
	}
	return true
}
