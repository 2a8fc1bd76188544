package config

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/textproto"
	"net/url"
	"regexp"
	"regexp/syntax"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/portico-gateway/portico/internal/httpsyntax"
)

// Validate checks c for errors that decoding cannot see: address syntax,
// limits, names, references (a route naming a missing service), path and
// host syntax, and duplicate routes. It is pure (no I/O, files named in TLS
// are not read) and returns every problem, each a located *FieldError,
// joined and sorted by position; nil when c is valid. Plugin settings are
// checked by the plugin registry, not here. Call ApplyDefaults first.
func (c *Config) Validate() error {
	return errors.Join(c.validate()...)
}

func (c *Config) validate() []error {
	v := &validator{c: c}
	v.listeners()
	v.routeListeners()
	v.admin()
	v.server()
	v.trustedProxies()
	v.services()
	v.routes()
	v.resilience()
	v.consumers()
	v.rateLimits()
	for _, e := range v.errs {
		c.Locate(e)
	}
	sortErrors(v.errs)
	return v.errs
}

type validator struct {
	c    *Config
	errs []error
}

func (v *validator) errf(p Path, format string, args ...any) {
	v.errs = append(v.errs, p.Errorf(format, args...))
}

// q quotes s, the value at p, for a message, unless it came from the
// environment: such values are never echoed.
func (v *validator) q(p Path, s string) string {
	if v.c.envPaths[p.s] {
		return "(value from environment)"
	}
	return strconv.Quote(s)
}

// addr checks a listen address and reports whether it is valid.
func (v *validator) addr(p Path, s string) bool {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		v.errf(p, `must be host:port, like ":8080" or "127.0.0.1:8080"`)
		return false
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		v.errf(p, "port must be a number from 0 to 65535")
		return false
	}
	if host != "" && !validIP(host) && !validDNSName(strings.ToLower(host)) {
		v.errf(p, "host must be an IP address or a host name")
		return false
	}
	return true
}

func validIP(s string) bool {
	_, err := netip.ParseAddr(s)
	return err == nil
}

// sameListener reports whether two valid addresses would bind the same
// port: equal, or the same non-zero port where one binds all interfaces.
func sameListener(a, b string) bool {
	ha, pa, errA := net.SplitHostPort(a)
	hb, pb, errB := net.SplitHostPort(b)
	if errA != nil || errB != nil || pa != pb || pa == "0" {
		return false
	}
	all := func(h string) bool { return h == "" || h == "0.0.0.0" || h == "::" }
	return ha == hb || all(ha) || all(hb)
}

func (v *validator) server() {
	s, p := &v.c.Server, Path{}.Key("server")
	if s.MaxHeaderBytes < 1<<10 || s.MaxHeaderBytes > 1<<20 {
		v.errf(p.Key("max_header_bytes"), "must be between 1KiB and 1MiB")
	}
	if s.MaxConnections < 1 {
		v.errf(p.Key("max_connections"), "must be at least 1")
	}
	if d := s.ReadBodyTimeout.D(); d < 100*time.Millisecond || d > time.Hour {
		v.errf(p.Key("read_body_timeout"), "must be between 100ms and 1h")
	}
	if d := s.WriteTimeout.D(); d < 100*time.Millisecond || d > time.Hour {
		v.errf(p.Key("write_timeout"), "must be between 100ms and 1h")
	}
	if s.MinBodyRate < 0 || s.MinBodyRate > 1<<30 {
		v.errf(p.Key("min_body_rate"), "must be between 0 (off) and 1GiB a second")
	}
	hp, rp := p.Key("health_path"), p.Key("ready_path")
	okH, okR := v.probePath(hp, s.HealthPath), v.probePath(rp, s.ReadyPath)
	if okH && okR && s.HealthPath == s.ReadyPath && s.HealthPath != "off" {
		v.errf(rp, "must differ from health_path")
	}
	for i, h := range s.ProxyHeaders {
		if !httpsyntax.IsToken(h) {
			v.errf(p.Index("proxy_headers", i), "must be a header name")
		}
	}
	switch s.UnderscoresInHeaders {
	case UnderscoresProtected, UnderscoresDrop, UnderscoresAllow:
	default:
		v.errf(p.Key("underscores_in_headers"), `must be "protected", "drop" or "allow"`)
	}
}

// RestartOnlyDiffers reports whether the settings that need a restart
// differ between s and o: every server setting but the reloadable ones
// (the header rules and the request body limits, which the edge of each
// snapshot applies).
func (s *Server) RestartOnlyDiffers(o *Server) bool {
	return s.ReadHeaderTimeout != o.ReadHeaderTimeout || s.IdleTimeout != o.IdleTimeout || s.WriteTimeout != o.WriteTimeout ||
		s.MaxHeaderBytes != o.MaxHeaderBytes || s.MaxConnections != o.MaxConnections ||
		s.DrainTimeout != o.DrainTimeout || s.HealthPath != o.HealthPath || s.ReadyPath != o.ReadyPath
}

func (v *validator) probePath(p Path, s string) bool {
	if s == "off" {
		return true
	}
	if !strings.HasPrefix(s, "/") {
		v.errf(p, `must start with "/" or be "off"`)
		return false
	}
	return v.literalPath(p, s)
}

func (v *validator) trustedProxies() {
	for i, s := range v.c.TrustedProxies {
		if _, err := netip.ParsePrefix(s); err == nil {
			continue
		}
		if !validIP(s) {
			v.errf(Path{}.Index("trusted_proxies", i), `must be a CIDR like "10.0.0.0/8" or an IP address`)
		}
	}
}

// name checks a service or route name.
func (v *validator) name(p Path, s string) bool {
	if s == "" {
		v.errf(p, "is required")
		return false
	}
	if !validName(s) {
		v.errf(p, `must be 1 to 63 letters, digits, ".", "_" or "-", starting with a letter or digit`)
		return false
	}
	return true
}

// validName matches ^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$.
func validName(s string) bool {
	if len(s) == 0 || len(s) > 63 || !isAlpha(s[0]) && !isDigit(s[0]) {
		return false
	}
	for i := 1; i < len(s); i++ {
		if c := s[i]; !isAlpha(c) && !isDigit(c) && c != '.' && c != '_' && c != '-' {
			return false
		}
	}
	return true
}

func (v *validator) services() {
	seen := make(map[string]int)
	for i := range v.c.Services {
		s, p := &v.c.Services[i], Path{}.Index("services", i)
		if v.name(p.Key("name"), s.Name) {
			if j, dup := seen[s.Name]; dup {
				v.errf(p.Key("name"), "duplicate service name %q; services[%d] has it too", s.Name, j)
			} else {
				seen[s.Name] = i
			}
		}
		derived := s.URL != "" && len(s.Targets) == 1 && s.Targets[0].URL == s.URL
		switch {
		case s.URL == "" && len(s.Targets) == 0:
			v.errf(p, "one of url or targets is required")
		case s.URL != "" && len(s.Targets) > 0 && !derived:
			v.errf(p.Key("url"), "set url or targets, not both")
		case s.URL != "":
			v.targetURL(p.Key("url"), s.URL)
		default:
			for j, t := range s.Targets {
				tp := p.Index("targets", j)
				v.targetURL(tp.Key("url"), t.URL)
				if t.Weight < 1 || t.Weight > 1000 {
					v.errf(tp.Key("weight"), "must be between 1 and 1000")
				}
			}
		}
		if s.PreserveHost && s.HostHeader != "" {
			v.errf(p.Key("host_header"), "cannot be combined with preserve_host")
		}
		if s.HostHeader != "" && !validHostHeader(s.HostHeader) {
			v.errf(p.Key("host_header"), "must be a host name, optionally with :port")
		}
		if s.MaxIdleConns < 0 || s.MaxIdleConns > 100000 {
			v.errf(p.Key("max_idle_conns"), "must be between 0 and 100000")
		}
	}
}

// targetURL checks an upstream URL. The URL is never echoed: it may hold
// credentials from the environment.
func (v *validator) targetURL(p Path, raw string) {
	const want = `must be an absolute http or https URL, like "http://127.0.0.1:3001"`
	if raw == "" {
		v.errf(p, "is required")
		return
	}
	u, err := url.Parse(raw)
	if err != nil || u.Opaque != "" {
		v.errf(p, want)
		return
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		v.errf(p, want)
	case u.User != nil:
		v.errf(p, "must not contain user info (credentials)")
	case u.Hostname() == "":
		v.errf(p, "must have a host")
	case strings.HasSuffix(u.Host, ":") || u.Port() != "" && !validPort(u.Port()):
		v.errf(p, "port must be a number from 1 to 65535")
	case u.Path != "" && u.Path != "/":
		v.errf(p, `must not have a path (only "" or "/"); routes decide the upstream path`)
	case u.RawQuery != "" || u.ForceQuery:
		v.errf(p, "must not have a query")
	case u.Fragment != "" || strings.Contains(raw, "#"):
		v.errf(p, "must not have a fragment")
	}
}

func validPort(s string) bool {
	n, err := strconv.Atoi(s)
	return err == nil && n >= 1 && n <= 65535
}

func validHostHeader(s string) bool {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		host, port = s, ""
	} else if !validPort(port) {
		return false
	}
	return validIP(host) || validDNSName(strings.ToLower(host))
}

func (v *validator) routes() {
	services := make([]string, 0, len(v.c.Services))
	for _, s := range v.c.Services {
		services = append(services, s.Name)
	}
	slices.Sort(services)
	names := make(map[string]int)
	keys := make(map[string]int)
	for i := range v.c.Routes {
		r, p := &v.c.Routes[i], Path{}.Index("routes", i)
		if v.name(p.Key("name"), r.Name) {
			if j, dup := names[r.Name]; dup {
				v.errf(p.Key("name"), "duplicate route name %q; routes[%d] has it too", r.Name, j)
			} else {
				names[r.Name] = i
			}
		}
		v.serviceRef(p.Key("service"), r.Service, services)
		v.match(p.Key("match"), &r.Match)
		v.rewrite(p, r)
		v.duplicates(p, i, keys)
	}
}

func (v *validator) serviceRef(p Path, name string, services []string) {
	switch {
	case name == "":
		v.errf(p, "is required")
	case slices.Contains(services, name):
	case len(services) == 0:
		v.errf(p, "unknown service %s; no services are defined", v.q(p, name))
	case Suggest(name, services) != "" && !v.c.envPaths[p.s]:
		v.errf(p, "unknown service %q; did you mean %q?", name, Suggest(name, services))
	default:
		v.errf(p, "unknown service %s; services are: %s", v.q(p, name), strings.Join(services, ", "))
	}
}

func (v *validator) match(p Path, m *Match) {
	if len(m.Paths) == 0 {
		v.errf(p.Key("paths"), "at least one path is required")
	}
	for j, s := range m.Paths {
		v.routePath(p.Index("paths", j), s)
	}
	seen := make(map[string]bool)
	for j, s := range m.Methods {
		mp := p.Index("methods", j)
		switch {
		case s == "":
			v.errf(mp, "method must not be empty")
		case s != strings.ToUpper(s) && httpsyntax.IsToken(strings.ToUpper(s)):
			v.errf(mp, "methods are case-sensitive; write %q", strings.ToUpper(s))
		case !httpsyntax.IsToken(s):
			v.errf(mp, "must be an HTTP method like GET or POST")
		case seen[s]:
			v.errf(mp, "method %s is listed twice", s)
		}
		seen[s] = true
	}
	clear(seen)
	for j, h := range m.Hosts {
		hp := p.Index("hosts", j)
		if v.host(hp, h) && seen[h] {
			v.errf(hp, "host %s is listed twice", v.q(hp, h))
		}
		seen[h] = true
	}
	for _, k := range sortedKeys(m.Headers) {
		hp := p.Key("headers").Key(k)
		switch {
		case !httpsyntax.IsToken(k):
			v.errf(hp, "invalid header name %q", k)
		case strings.EqualFold(k, "Host"):
			v.errf(hp, "match the Host header with match.hosts, not match.headers")
		}
		if strings.ContainsAny(m.Headers[k], "\r\n\x00") {
			v.errf(hp, "header value must not contain CR, LF or NUL")
		}
	}
	if _, ok := m.Query[""]; ok {
		v.errf(p.Key("query"), "query parameter names must not be empty")
	}
}

// routePath checks one match path: "/prefix", "=/exact" or "~regex".
func (v *validator) routePath(p Path, s string) {
	switch {
	case strings.HasPrefix(s, "~"):
		v.regex(p, s[1:])
	case strings.HasPrefix(s, "="):
		if !strings.HasPrefix(s, "=/") {
			v.errf(p, `exact path must start with "=/"`)
			return
		}
		v.literalPath(p, s[1:])
	case strings.HasPrefix(s, "/"):
		v.literalPath(p, s)
	default:
		v.errf(p, `path must start with "/" (prefix), "=/" (exact) or "~" (regex)`)
	}
}

func (v *validator) regex(p Path, expr string) bool {
	if expr == "" {
		v.errf(p, "regular expression must not be empty")
		return false
	}
	_, err := regexp.Compile(expr)
	if err == nil {
		return true
	}
	var se *syntax.Error
	if errors.As(err, &se) && !v.c.envPaths[p.s] {
		v.errf(p, "invalid regular expression: %s: `%s`", se.Code, se.Expr)
	} else {
		v.errf(p, "invalid regular expression")
	}
	return false
}

// literalPath checks a URL path that starts with "/": it must be in the
// form clients send after normalization, or the route could never match.
func (v *validator) literalPath(p Path, s string) bool {
	for seg := range strings.SplitSeq(s[1:], "/") {
		if seg == "." || seg == ".." {
			v.errf(p, `path must not contain "." or ".." segments`)
			return false
		}
	}
	switch {
	case strings.Contains(s, "//"):
		v.errf(p, `path must not contain "//"`)
	case strings.Contains(s, "?"):
		v.errf(p, `path must not contain "?"; match query parameters with match.query`)
	case strings.Contains(s, "#"):
		v.errf(p, `path must not contain "#"`)
	default:
		for i := 0; i < len(s); i++ {
			c := s[i]
			if c == '%' {
				if i+2 >= len(s) || !httpsyntax.IsHex(s[i+1]) || !httpsyntax.IsHex(s[i+2]) {
					v.errf(p, `path has an invalid percent-encoding; "%%" must be followed by two hex digits`)
					return false
				}
				i += 2
				continue
			}
			if !isPathChar(c) {
				r, _ := utf8.DecodeRuneInString(s[i:])
				v.errf(p, "path must not contain %q; percent-encode it", string(r))
				return false
			}
		}
		return v.decodedPath(p, s)
	}
	return false
}

// decodedPath checks what a route path decodes to against the forms the
// gateway refuses in requests (see router.NormalizePath), so that no route
// names a path that no request can have. s has valid escapes.
func (v *validator) decodedPath(p Path, s string) bool {
	dec := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '%' {
			c, _ = httpsyntax.HexPair(s[i+1], s[i+2])
			i += 2
		}
		dec = append(dec, c)
	}
	for i, c := range dec {
		switch {
		case c == ';':
			v.errf(p, `path must not contain ";", raw or encoded: requests with path parameters are refused`)
			return false
		case c < 0x20 || c == 0x7f:
			v.errf(p, "path must not contain an encoded control character: requests with one are refused")
			return false
		case c == '%' && i+2 < len(dec) && httpsyntax.IsHex(dec[i+1]) && httpsyntax.IsHex(dec[i+2]):
			v.errf(p, `path must not contain "%%25" followed by two hex digits (double percent-encoding): requests with it are refused`)
			return false
		}
	}
	if !utf8.Valid(dec) {
		v.errf(p, "path must decode to valid UTF-8: requests whose escapes do not are refused")
		return false
	}
	return true
}

// isPathChar reports whether c may appear unescaped in a URL path: RFC 3986
// pchar (unreserved, sub-delims, ":" and "@") or "/".
func isPathChar(c byte) bool {
	return isAlpha(c) || isDigit(c) || strings.IndexByte("-._~!$&'()*+,;=:@/", c) >= 0
}

// host checks a match host: a lower-case DNS name or "*.domain".
func (v *validator) host(p Path, h string) bool {
	const want = `use a DNS name like "api.example.com" or a wildcard like "*.example.com"`
	name := strings.TrimPrefix(h, "*.")
	switch {
	case h == "":
		v.errf(p, "host must not be empty")
	case strings.HasPrefix(h, "["):
		v.errf(p, "invalid host: %s", want)
	case strings.Contains(h, ":"):
		v.errf(p, "hosts match without a port; remove the :port")
	case h != strings.ToLower(h):
		v.errf(p, "host must be lower case: %s", v.q(p, strings.ToLower(h)))
	case strings.Contains(name, "*"):
		v.errf(p, `"*" is allowed only as the whole first label, like "*.example.com"`)
	case !validDNSName(name):
		v.errf(p, "invalid host: %s", want)
	default:
		return true
	}
	return false
}

// validDNSName reports whether s is a lower-case DNS name: labels of
// 1 to 63 letters, digits and inner hyphens, 253 bytes at most.
func validDNSName(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	for label := range strings.SplitSeq(s, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			if c := label[i]; !('a' <= c && c <= 'z') && !isDigit(c) && c != '-' {
				return false
			}
		}
	}
	return true
}

func (v *validator) rewrite(p Path, r *Route) {
	if r.StripPrefix {
		for j, s := range r.Match.Paths {
			if kind := pathKind(s); kind != "prefix" {
				v.errf(p.Key("strip_prefix"), "works only with prefix paths; match.paths[%d] is %s path", j, kind)
				break
			}
		}
	}
	pr := r.PathRewrite
	if pr == nil {
		return
	}
	rp := p.Key("path_rewrite")
	if r.StripPrefix {
		v.errf(rp, "cannot be combined with strip_prefix")
	}
	if pr.Pattern == "" {
		v.errf(rp.Key("pattern"), "is required")
	} else {
		v.regex(rp.Key("pattern"), pr.Pattern)
	}
	if !strings.HasPrefix(pr.Replacement, "/") && !strings.HasPrefix(pr.Replacement, "$") {
		v.errf(rp.Key("replacement"), `must start with "/" or a capture like "$1"`)
	}
}

func pathKind(s string) string {
	switch {
	case strings.HasPrefix(s, "~"):
		return "a regex"
	case strings.HasPrefix(s, "="):
		return "an exact"
	}
	return "prefix"
}

// duplicates reports paths of route i whose whole match key (hosts,
// methods, path, headers, query) equals one seen before.
func (v *validator) duplicates(p Path, i int, keys map[string]int) {
	r := &v.c.Routes[i]
	rest := routeKeyRest(&r.Match)
	for j, s := range r.Match.Paths {
		k := s + "\x00" + rest
		other, dup := keys[k]
		switch {
		case !dup:
			keys[k] = i
		case other == i:
			v.errf(p.Key("match").Index("paths", j), "path is listed twice")
		default:
			name := v.c.Routes[other].Name
			if name == "" {
				name = fmt.Sprintf("routes[%d]", other)
			}
			v.errf(p.Key("match").Index("paths", j),
				"duplicates route %q: same hosts, methods, path, headers and query", name)
		}
	}
}

// routeKeyRest is the order-insensitive part of a route's match key
// besides the path.
func routeKeyRest(m *Match) string {
	hosts, methods := slices.Clone(m.Hosts), slices.Clone(m.Methods)
	slices.Sort(hosts)
	slices.Sort(methods)
	headers := make([]string, 0, len(m.Headers))
	for k, val := range m.Headers {
		headers = append(headers, textproto.CanonicalMIMEHeaderKey(k)+"="+val)
	}
	slices.Sort(headers)
	query := make([]string, 0, len(m.Query))
	for k, val := range m.Query {
		query = append(query, k+"="+val)
	}
	slices.Sort(query)
	return strings.Join([]string{
		strings.Join(slices.Compact(hosts), ","),
		strings.Join(slices.Compact(methods), ","),
		strings.Join(headers, "\x01"),
		strings.Join(query, "\x01"),
	}, "\x00")
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
