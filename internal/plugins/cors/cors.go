// Package cors implements the cors plugin: the gateway answers CORS
// preflights itself and sets the CORS response headers of every answer
// according to one policy per route.
//
// It runs before authentication (pipeline.PhaseCORS), so:
//
//   - a preflight (OPTIONS with Origin and Access-Control-Request-Method)
//     is answered without credentials and never forwarded: 204 with the
//     Access-Control-Allow-* headers when the origin, the method and every
//     requested header are allowed, otherwise 403 problem JSON naming what
//     was refused, without any Access-Control-Allow-* header;
//   - every other request is forwarded, and on its answer, whoever made it
//     (the upstream, or an inner phase refusing with 401, 403 or 429), every
//     Access-Control-* header the upstream sent is removed and the policy's
//     own are set: Access-Control-Allow-Origin, -Allow-Credentials and
//     -Expose-Headers for an allowed Origin, nothing for a refused one (the
//     browser enforces). Vary: Origin is added to every answer whose CORS
//     headers depend on the Origin, that is unless the policy is "*"
//     without credentials.
//
// Header values are computed once in Build; per request the plugin wraps
// the response writer (one small allocation) and sets a few map entries.
package cors

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/portico-gateway/portico/internal/pipeline"
	"github.com/portico-gateway/portico/internal/problem"
)

// Name is the plugin's config key.
const Name = "cors"

// Registration declares the cors pipeline. It is global-capable: set
// globally, it also answers requests that match no route, so a 404 or 405
// carries CORS headers a page can read.
func Registration() pipeline.Registration {
	return pipeline.Registration{
		Name:      Name,
		Phase:     pipeline.PhaseCORS,
		Global:    true,
		Preflight: true,
		Spec:      func() pipeline.Spec { return newSpec() },
		Build:     build,
	}
}

// Header names, canonical, used as map keys.
const (
	hOrigin                = "Origin"
	hVary                  = "Vary"
	hRequestMethod         = "Access-Control-Request-Method"
	hRequestHeaders        = "Access-Control-Request-Headers"
	hRequestPrivateNetwork = "Access-Control-Request-Private-Network"
	hAllowOrigin           = "Access-Control-Allow-Origin"
	hAllowCredentials      = "Access-Control-Allow-Credentials"
	hAllowMethods          = "Access-Control-Allow-Methods"
	hAllowHeaders          = "Access-Control-Allow-Headers"
	hAllowPrivateNetwork   = "Access-Control-Allow-Private-Network"
	hExposeHeaders         = "Access-Control-Expose-Headers"
	hMaxAge                = "Access-Control-Max-Age"
	accessControlPrefix    = "Access-Control-"
)

// maxHeaderName is the longest header name a policy can hold
// (config.IsHeaderName).
const maxHeaderName = 128

// wildcard is a compiled "scheme://*.domain[:port]" pattern.
type wildcard struct {
	scheme string
	suffix string // ".domain", lower case
	port   string // "" for the scheme's default
}

// policy is a compiled Spec. Its header value slices have len == cap and
// are shared by every response: they are set, never modified, so an
// append by anyone else copies them.
type policy struct {
	anyOrigin   bool
	exact       map[string]struct{}
	wildcards   []wildcard
	credentials bool
	vary        bool // answers depend on the Origin

	methods        map[string]struct{}
	anyHeader      bool
	headers        map[string]struct{} // lower case
	privateNetwork bool

	allowMethods  []string
	allowHeaders  []string // nil: header omitted
	exposeHeaders []string // nil: header omitted
	maxAge        []string // nil: header omitted
	methodsText   string   // for 403 details

	star           []string
	true1          []string
	varyOrigin     []string
	varyPreflight  []string
	varyPreflightP []string // with private network
}

// build compiles the Spec.
func build(s pipeline.Spec, _ *pipeline.BuildEnv) (pipeline.Middleware, error) {
	spec, ok := s.(*Spec)
	if !ok {
		return nil, fmt.Errorf("cors: unexpected spec type %T", s)
	}
	p := compile(spec)
	return func(next http.Handler) http.Handler {
		return &handler{next: next, p: p}
	}, nil
}

// compile turns a validated Spec into a policy; entries Validate refuses
// are left out.
func compile(s *Spec) *policy {
	p := &policy{
		exact:          make(map[string]struct{}),
		credentials:    s.AllowCredentials,
		methods:        make(map[string]struct{}, len(s.AllowMethods)),
		headers:        make(map[string]struct{}, len(s.AllowHeaders)),
		privateNetwork: s.PrivateNetwork,
		star:           one("*"),
		true1:          one("true"),
		varyOrigin:     one(hOrigin),
		varyPreflight:  one(hOrigin + ", " + hRequestMethod + ", " + hRequestHeaders),
		varyPreflightP: one(hOrigin + ", " + hRequestMethod + ", " + hRequestHeaders + ", " + hRequestPrivateNetwork),
	}
	for _, o := range s.AllowOrigins {
		if o == "*" {
			p.anyOrigin = true
			continue
		}
		key, why := checkOrigin(o)
		if why != "" {
			continue
		}
		scheme, host, _ := strings.Cut(key, "://")
		if rest, ok := strings.CutPrefix(host, "*"); ok {
			w := wildcard{scheme: scheme, suffix: rest}
			if i := strings.LastIndexByte(rest, ':'); i >= 0 {
				w.suffix, w.port = rest[:i], rest[i+1:]
			}
			p.wildcards = append(p.wildcards, w)
			continue
		}
		p.exact[key] = struct{}{}
	}
	p.vary = !p.anyOrigin || p.credentials
	for _, m := range s.AllowMethods {
		p.methods[m] = struct{}{}
	}
	p.methodsText = strings.Join(s.AllowMethods, ", ")
	p.allowMethods = one(p.methodsText)
	for _, h := range s.AllowHeaders {
		if h == "*" {
			p.anyHeader = true
		}
		p.headers[strings.ToLower(h)] = struct{}{}
	}
	if len(s.AllowHeaders) > 0 {
		p.allowHeaders = one(strings.Join(s.AllowHeaders, ", "))
	}
	if len(s.ExposeHeaders) > 0 {
		p.exposeHeaders = one(strings.Join(s.ExposeHeaders, ", "))
	}
	if secs := int64(s.MaxAge.D().Seconds()); secs > 0 {
		p.maxAge = one(strconv.FormatInt(secs, 10))
	}
	return p
}

// one returns a one-element slice whose capacity is one.
func one(v string) []string { return []string{v}[:1:1] }

// allowed reports whether the policy allows the origin o (a request's
// Origin value).
func (p *policy) allowed(o string) bool {
	if p.anyOrigin {
		return true
	}
	if _, ok := p.exact[o]; ok {
		return true
	}
	parts, ok := splitOrigin(o)
	if !ok {
		return false
	}
	for _, w := range p.wildcards {
		h := parts.host
		if parts.port == w.port && strings.EqualFold(parts.scheme, w.scheme) &&
			len(h) > len(w.suffix) && strings.EqualFold(h[len(h)-len(w.suffix):], w.suffix) {
			return true
		}
	}
	// Browsers send origins lower case with default ports left out, so
	// the lookup above finds them; normalise only what looks different.
	if parts.port == "" && strings.Contains(o[strings.Index(o, "://")+3:], ":") || hasUpper(o) {
		_, ok := p.exact[parts.key()]
		return ok
	}
	return false
}

func hasUpper(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 'A' && s[i] <= 'Z' {
			return true
		}
	}
	return false
}

// handler applies a policy in front of next.
type handler struct {
	next http.Handler
	p    *policy
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	origins := r.Header[hOrigin]
	if r.Method == http.MethodOptions && len(origins) > 0 && len(r.Header[hRequestMethod]) > 0 {
		h.preflight(w, r, origins)
		return
	}
	cw := &writer{w: w, p: h.p}
	if len(origins) == 1 && h.p.allowed(origins[0]) {
		cw.allowed = true
		cw.origin[0] = origins[0]
	}
	h.next.ServeHTTP(cw, r)
	if !cw.done {
		// Nothing was written: the server will send 200 with these headers.
		cw.apply()
	}
}

// preflight answers a CORS preflight request.
func (h *handler) preflight(w http.ResponseWriter, r *http.Request, origins []string) {
	p := h.p
	hd := w.Header()
	if p.privateNetwork {
		addVary(hd, p.varyPreflightP)
	} else {
		addVary(hd, p.varyPreflight)
	}
	if len(origins) != 1 || !p.allowed(origins[0]) {
		problem.Write(w, r, http.StatusForbidden, "", "CORS preflight refused: origin "+quoted(origins[0])+" is not allowed")
		return
	}
	method := r.Header[hRequestMethod][0]
	if _, ok := p.methods[method]; !ok {
		problem.Write(w, r, http.StatusForbidden, "", "CORS preflight refused: method "+quoted(method)+
			" is not allowed; allowed methods: "+p.methodsText)
		return
	}
	if !p.anyHeader {
		if bad, ok := p.headersAllowed(r.Header[hRequestHeaders]); !ok {
			problem.Write(w, r, http.StatusForbidden, "", "CORS preflight refused: request header "+quoted(bad)+" is not allowed")
			return
		}
	}
	if p.anyOrigin {
		hd[hAllowOrigin] = p.star
	} else {
		hd[hAllowOrigin] = origins[:1:1]
	}
	if p.credentials {
		hd[hAllowCredentials] = p.true1
	}
	hd[hAllowMethods] = p.allowMethods
	if p.allowHeaders != nil {
		hd[hAllowHeaders] = p.allowHeaders
	}
	if p.maxAge != nil {
		hd[hMaxAge] = p.maxAge
	}
	if p.privateNetwork {
		if v := r.Header[hRequestPrivateNetwork]; len(v) > 0 && strings.EqualFold(v[0], "true") {
			hd[hAllowPrivateNetwork] = p.true1
		}
	}
	w.WriteHeader(http.StatusNoContent)
}

// headersAllowed checks every name of the Access-Control-Request-Headers
// values; on a refusal it returns the first name not allowed.
func (p *policy) headersAllowed(values []string) (string, bool) {
	var buf [maxHeaderName]byte
	for _, v := range values {
		for v != "" {
			var name string
			if i := strings.IndexByte(v, ','); i >= 0 {
				name, v = v[:i], v[i+1:]
			} else {
				name, v = v, ""
			}
			name = strings.Trim(name, " \t")
			if name == "" {
				continue
			}
			if len(name) > maxHeaderName {
				return name, false
			}
			b := buf[:len(name)]
			for i := 0; i < len(name); i++ {
				c := name[i]
				if c >= 'A' && c <= 'Z' {
					c += 'a' - 'A'
				}
				b[i] = c
			}
			if _, ok := p.headers[string(b)]; !ok {
				return name, false
			}
		}
	}
	return "", true
}

// quoted returns s quoted for a problem detail, shortened when long.
func quoted(s string) string {
	const max = 128
	if len(s) > max {
		s = s[:max] + "..."
	}
	return strconv.Quote(s)
}

// stripAccessControl removes every Access-Control-* field from h.
func stripAccessControl(h http.Header) {
	for k := range h {
		if len(k) > len(accessControlPrefix) && strings.EqualFold(k[:len(accessControlPrefix)], accessControlPrefix) {
			delete(h, k)
		}
	}
}

// addVary adds v (one value, shared) to the Vary header of h, unless Vary
// is "*" or already names Origin.
func addVary(h http.Header, v []string) {
	old := h[hVary]
	if len(old) == 0 {
		h[hVary] = v
		return
	}
	for _, o := range old {
		if strings.TrimSpace(o) == "*" || hasToken(o, hOrigin) {
			return
		}
	}
	h[hVary] = append(old, v[0])
}

// hasToken reports whether the comma-separated list s holds tok
// (case-insensitive).
func hasToken(s, tok string) bool {
	for s != "" {
		var t string
		if i := strings.IndexByte(s, ','); i >= 0 {
			t, s = s[:i], s[i+1:]
		} else {
			t, s = s, ""
		}
		if strings.EqualFold(strings.Trim(t, " \t"), tok) {
			return true
		}
	}
	return false
}
