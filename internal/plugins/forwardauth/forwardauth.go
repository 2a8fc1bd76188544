// Package forwardauth implements the forward_auth plugin: the gateway asks
// an authorization service of your own whether to admit each request, as
// Traefik's ForwardAuth, Envoy's HTTP ext_authz and NGINX's auth_request
// do.
//
// For each request the plugin calls the service's URL with the request's
// method (or a fixed one), the headers listed in request_headers
// (Authorization and Cookie by default), optionally the body, and what the
// gateway knows of the request: X-Forwarded-Method, X-Forwarded-Proto,
// X-Forwarded-Host, X-Forwarded-Uri (the normalized path the route
// matched, and the query) and X-Forwarded-For (the client address the
// gateway resolved, never the client's own claim). Then:
//
//   - 2xx admits. The response_headers of the answer go to the upstream,
//     consumer_header may name the consumer.
//   - 3xx and 4xx refuse, with the service's own answer (status, body up
//     to 64 KiB, client_headers) or, with problem_json, problem JSON.
//   - A timeout, a connection error or a 5xx is an outage: 503 with
//     Retry-After (on_error: fail_closed) or an unchecked verdict that
//     lets the request through unauthenticated (fail_open).
//
// Like every authentication plugin it only records its verdict in the
// Exchange; the auth gate admits or refuses, so anonymous consumers and
// mode any/all work with it as with the others. A refusal travels to the
// gate as an AuthFailure carrying the rendered answer.
//
// Decisions may be cached (cache.ttl): 2xx, 401 and 403 answers, keyed by
// the SHA-256 of the cache.key header values (and the method, host and URI
// with cache.key_uri), never past the answer's max-age, never when it
// says no-store or no-cache. The cache belongs to the route and its
// settings and lives in pipeline.Shared, so reloads keep it warm.
package forwardauth

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/textproto"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/portico-gateway/portico/internal/consumer"
	"github.com/portico-gateway/portico/internal/httpsyntax"
	"github.com/portico-gateway/portico/internal/pipeline"
	"github.com/portico-gateway/portico/internal/plugins/authgate"
	"github.com/portico-gateway/portico/internal/telemetry"
)

// Name is the plugin's YAML key.
const Name = "forward_auth"

// Registration declares the forward_auth plugin.
func Registration() pipeline.Registration {
	return pipeline.Registration{
		Name:            Name,
		Phase:           pipeline.PhaseAuthenticate,
		Spec:            newSpec,
		Build:           build,
		IdentityHeaders: func(s pipeline.Spec) []string { return s.(*Spec).ResponseHeaders },
	}
}

// The failures the plugin records itself (the service's refusals carry
// their own).
var (
	failUnavailable = pipeline.AuthFailure{Status: http.StatusServiceUnavailable, RetryAfter: "5",
		Detail: "the request could not be authorized; try again", Presented: true}
	failBadAnswer = pipeline.AuthFailure{Status: http.StatusBadGateway,
		Detail: "the authorization service's answer could not be passed on", Presented: true}
	failConsumer = pipeline.AuthFailure{Status: http.StatusForbidden,
		Detail: "the authorization service named no known consumer", Presented: true}
	failBodyTooLarge = pipeline.AuthFailure{Status: http.StatusRequestEntityTooLarge,
		Detail: "the request body is too large to be authorized", Presented: true}
	failSlowBody = pipeline.AuthFailure{Status: http.StatusRequestTimeout,
		Detail: "the request body arrived too slowly", Presented: true}
	failBodyUnread = pipeline.AuthFailure{Status: http.StatusBadRequest,
		Detail: "the request body could not be read", Presented: true}
)

// handler is one route's compiled plugin.
type handler struct {
	next      http.Handler
	client    *client
	cache     *decisions // nil: no cache
	log       *slog.Logger
	metrics   telemetry.ForwardAuthRoute
	consumers *consumer.Registry

	url             string
	method          string // "" for the request's
	timeout         time.Duration
	requestHeaders  []string // canonical
	keyHeaders      []string // canonical: cache.key or request_headers
	keyURI          bool
	forwardBody     bool
	maxBody         int64
	responseHeaders []string // canonical
	consumerHeader  string   // canonical, or ""
	clientHeaders   []string // canonical
	problemJSON     bool
	failOpen        bool
	ttl             time.Duration
}

func canonical(names []string) []string {
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = textproto.CanonicalMIMEHeaderKey(n)
	}
	return out
}

func build(s pipeline.Spec, env *pipeline.BuildEnv) (pipeline.Middleware, error) {
	spec := s.(*Spec)
	if err := checkGateHeaders(spec, env.Chain); err != nil {
		return nil, err
	}
	shared := env.Shared
	if shared == nil {
		shared = pipeline.NewShared()
	}
	cl, err := clientFor(shared, spec)
	if err != nil {
		return nil, err
	}
	log := env.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	consumers := env.Consumers
	if consumers == nil {
		consumers, _ = consumer.New(nil)
	}
	h := handler{
		client:          cl,
		log:             log.With("plugin", Name, "route", env.Route),
		metrics:         env.Telemetry.ForwardAuthRoute(env.Route),
		consumers:       consumers,
		url:             spec.URL,
		method:          spec.Method,
		timeout:         spec.Timeout.D(),
		requestHeaders:  canonical(spec.RequestHeaders),
		keyHeaders:      canonical(spec.keyHeaders()),
		keyURI:          spec.Cache.KeyURI,
		forwardBody:     spec.ForwardBody,
		maxBody:         int64(spec.MaxBody),
		responseHeaders: canonical(spec.ResponseHeaders),
		clientHeaders:   canonical(spec.ClientHeaders),
		problemJSON:     spec.ProblemJSON,
		failOpen:        spec.OnError == FailOpen,
		ttl:             spec.Cache.TTL.D(),
	}
	if spec.ConsumerHeader != "" {
		h.consumerHeader = textproto.CanonicalMIMEHeaderKey(spec.ConsumerHeader)
	}
	if h.ttl > 0 {
		h.cache = pipeline.Get(shared, cacheKey(env.Route, spec), func() *decisions {
			return newDecisions(spec.Cache.MaxEntries, time.Now)
		})
		h.cache.setMax(spec.Cache.MaxEntries)
	}
	return func(next http.Handler) http.Handler {
		hh := h
		hh.next = next
		return &hh
	}, nil
}

// checkGateHeaders refuses response_headers that the chain's auth gate
// sets itself: the gate would overwrite them for a consumer and leave the
// service's values for a caller without one.
func checkGateHeaders(spec *Spec, chain []pipeline.Configured) error {
	for _, c := range chain {
		gs, ok := c.Spec.(*authgate.Spec)
		if !ok || c.Reg.Name != authgate.Name {
			continue
		}
		gh := gs.Headers
		for _, n := range spec.ResponseHeaders {
			for _, g := range []string{gh.ConsumerID, gh.ConsumerName, gh.ConsumerGroups, gh.Anonymous} {
				if textproto.CanonicalMIMEHeaderKey(n) == textproto.CanonicalMIMEHeaderKey(g) {
					return errors.New("response_headers: " + n + " is set by the auth gate (auth.headers); " +
						"name the consumer with consumer_header instead")
				}
			}
		}
	}
	return nil
}

// cacheKey is the Shared key of the decision cache of route with spec:
// settings that change what a decision holds get a cache of their own.
func cacheKey(route string, spec *Spec) pipeline.Key[*decisions] {
	fp, _ := json.Marshal(struct {
		URL, Method               string
		Request, Response, Client []string
		Key                       []string
		KeyURI, ProblemJSON       bool
		ConsumerHeader            string
		TTL                       time.Duration
	}{spec.URL, spec.Method, canonical(spec.RequestHeaders), canonical(spec.ResponseHeaders),
		canonical(spec.ClientHeaders), canonical(spec.keyHeaders()), spec.Cache.KeyURI, spec.ProblemJSON,
		spec.ConsumerHeader, spec.Cache.TTL.D()})
	sum := sha256.Sum256(fp)
	return pipeline.NewKey[*decisions]("forward_auth:decisions:" + route + "|" + hex.EncodeToString(sum[:]))
}

// keyBuf holds the bytes a decision's key is the digest of.
var keyBuf = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ex := pipeline.FromContext(r.Context())
	if ex == nil { // outside the gateway's edge there is nowhere to record a verdict
		h.next.ServeHTTP(w, r)
		return
	}
	h.authenticate(ex, r)
	h.next.ServeHTTP(w, r)
}

// authenticate records this plugin's verdict in ex.
func (h *handler) authenticate(ex *pipeline.Exchange, r *http.Request) {
	presented := h.presented(r.Header)
	var body []byte
	if h.forwardBody {
		var f *pipeline.AuthFailure
		if body, f = h.bufferBody(r); f != nil {
			h.metrics.Refused.Inc()
			ex.AuthFailed(*f)
			return
		}
	}

	bp := keyBuf.Get().(*[]byte)
	defer keyBuf.Put(bp)
	buf, credSum, hasCred := appendCredential((*bp)[:0], r.Header, h.keyHeaders)
	var key digest
	if h.cache != nil {
		key = credSum
		if h.keyURI {
			buf = appendRequest(buf, r, ex)
			key = sha256.Sum256(buf)
		}
		*bp = buf
		if e, ok := h.cache.get(key); ok {
			h.record(ex, e.d, e.credential, presented, true)
			return
		}
	}
	*bp = buf

	d, cacheable, ok := h.call(ex, r, body)
	if !ok {
		return
	}
	credential := ""
	if hasCred {
		credential = credentialID(credSum)
	}
	if cacheable > 0 && h.cache != nil {
		h.cache.put(key, d, credential, cacheable)
	}
	h.record(ex, d, credential, presented, false)
}

// record turns a decision into the request's verdict and counts it.
func (h *handler) record(ex *pipeline.Exchange, d *decision, credential string, presented, cached bool) {
	admitted, refused := h.metrics.Admitted, h.metrics.Refused
	if cached {
		admitted, refused = h.metrics.CachedAdmitted, h.metrics.CachedRefused
	}
	if !d.admit {
		refused.Inc()
		f := *d.failure
		f.Presented = presented
		ex.AuthFailed(f)
		return
	}
	var c *consumer.Consumer
	if h.consumerHeader != "" {
		var ok bool
		if c, ok = h.consumers.ByName(d.consumer); !ok || d.consumer == "" {
			refused.Inc()
			ex.AuthFailed(failConsumer)
			return
		}
	}
	admitted.Inc()
	ex.AuthPassedWith(c, credential, d.headers)
}

// call asks the service about r and returns its decision and how long it
// may be cached (0: not at all). On an outage or an answer it cannot use
// it records the verdict itself and reports false.
func (h *handler) call(ex *pipeline.Exchange, r *http.Request, body []byte) (*decision, time.Duration, bool) {
	ctx, cancel := context.WithTimeout(r.Context(), h.timeout)
	defer cancel()
	req := h.newCall(ctx, ex, r, body)
	start := time.Now()
	resp, err := h.client.hc.Do(req)
	var d *decision
	cacheable := time.Duration(0)
	if err == nil {
		d, err = h.answer(resp)
		resp.Body.Close()
		if err == nil {
			cacheable = cacheFor(resp.StatusCode, resp.Header, h.ttl)
		}
	}
	h.metrics.Duration.Observe(time.Since(start))
	if err == nil {
		return d, cacheable, true
	}
	h.metrics.Error.Inc()
	if errors.Is(err, errAnswerTooLarge) || errors.Is(err, errBadStatus) {
		h.log.Warn("forward auth answer refused", "url", h.url, "error", err.Error())
		ex.AuthFailed(failBadAnswer)
		return nil, 0, false
	}
	if r.Context().Err() == nil { // not the client going away
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // the URL is logged separately
		}
		h.log.Warn("forward auth call failed", "url", h.url, "error", err.Error())
	}
	if h.failOpen {
		ex.AuthUnchecked()
	} else {
		ex.AuthFailed(failUnavailable)
	}
	return nil, 0, false
}

// newCall builds the request to the service.
func (h *handler) newCall(ctx context.Context, ex *pipeline.Exchange, r *http.Request, body []byte) *http.Request {
	method := h.method
	if method == "" {
		method = r.Method
	}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, h.url, rd)
	if err != nil { // the URL and method were validated; a client method that is no token never gets here
		req, _ = http.NewRequestWithContext(ctx, http.MethodGet, h.url, rd)
	}
	hdr := make(http.Header, len(h.requestHeaders)+6)
	for _, k := range h.requestHeaders {
		if vs := r.Header[k]; len(vs) > 0 {
			hdr[k] = vs
		}
	}
	if body != nil {
		if ct := r.Header["Content-Type"]; len(ct) > 0 {
			hdr["Content-Type"] = ct
		}
	}
	hdr["X-Forwarded-Method"] = []string{r.Method}
	hdr["X-Forwarded-Proto"] = []string{forwardedProto(r, ex)}
	if host := forwardedHost(r, ex); host != "" {
		hdr["X-Forwarded-Host"] = []string{host}
	}
	hdr["X-Forwarded-Uri"] = []string{requestURI(r, ex)}
	if ex.ClientIP.IsValid() {
		hdr["X-Forwarded-For"] = []string{ex.ClientIP.String()}
	}
	req.Header = hdr
	return req
}

// forwardedProto is the scheme the client used: a trusted proxy's
// X-Forwarded-Proto, else the connection's (as the proxy sends upstream).
func forwardedProto(r *http.Request, ex *pipeline.Exchange) string {
	if ex.PeerTrusted {
		if vs := r.Header["X-Forwarded-Proto"]; len(vs) > 0 && (vs[0] == "http" || vs[0] == "https") {
			return vs[0]
		}
	}
	if r.TLS != nil {
		return "https"
	}
	return "http"
}

// forwardedHost is the host the client asked for: a trusted proxy's
// X-Forwarded-Host, else the Host header.
func forwardedHost(r *http.Request, ex *pipeline.Exchange) string {
	if ex.PeerTrusted {
		if vs := r.Header["X-Forwarded-Host"]; len(vs) > 0 && vs[0] != "" && httpsyntax.IsFieldValue(vs[0]) {
			return vs[0]
		}
	}
	if httpsyntax.IsFieldValue(r.Host) {
		return r.Host
	}
	return ""
}

// requestURI is the path the route matched, normalized as the router saw
// it (so the service and the router agree on what is asked for), and the
// query as the client sent it.
func requestURI(r *http.Request, ex *pipeline.Exchange) string {
	p := ex.Path
	if p == "" {
		p = r.URL.EscapedPath()
	}
	if r.URL.RawQuery != "" {
		return p + "?" + r.URL.RawQuery
	}
	return p
}

// presented reports whether the request carries any of request_headers:
// a refusal of a request with credentials is reported before another
// plugin's "missing".
func (h *handler) presented(hdr http.Header) bool {
	for _, k := range h.requestHeaders {
		if len(hdr[k]) > 0 {
			return true
		}
	}
	return false
}

// appendCredential appends the key headers' values to buf, each length
// prefixed so that no two different requests give the same bytes, and
// returns their digest and whether any key header was present.
func appendCredential(buf []byte, hdr http.Header, keys []string) ([]byte, digest, bool) {
	found := false
	for _, k := range keys {
		vs := hdr[k]
		found = found || len(vs) > 0
		buf = strconv.AppendInt(buf, int64(len(vs)), 10)
		buf = append(buf, ':')
		for _, v := range vs {
			buf = strconv.AppendInt(buf, int64(len(v)), 10)
			buf = append(buf, ':')
			buf = append(buf, v...)
		}
		buf = append(buf, '\n')
	}
	return buf, sha256.Sum256(buf), found
}

// appendRequest appends what key_uri adds to the key: method, host and
// URI as the service receives them.
func appendRequest(buf []byte, r *http.Request, ex *pipeline.Exchange) []byte {
	buf = append(buf, "\x00uri\n"...)
	for _, s := range [...]string{r.Method, forwardedProto(r, ex), forwardedHost(r, ex)} {
		buf = strconv.AppendInt(buf, int64(len(s)), 10)
		buf = append(buf, ':')
		buf = append(buf, s...)
	}
	p := ex.Path
	if p == "" {
		p = r.URL.EscapedPath()
	}
	buf = strconv.AppendInt(buf, int64(len(p)), 10)
	buf = append(buf, ':')
	buf = append(buf, p...)
	buf = append(buf, '?')
	return append(buf, r.URL.RawQuery...)
}

// credentialID names the credential with key-header digest d:
// "forward_auth:" and the digest's first 12 hex digits. It never reveals
// the credential.
func credentialID(d digest) string {
	var b [len("forward_auth:") + 12]byte
	n := copy(b[:], "forward_auth:")
	hex.Encode(b[n:], d[:6])
	return string(b[:])
}

// bufferBody reads the request body for the call (up to max_body) and
// puts it back, whole and unchanged, for the upstream. A body over the
// limit or one that cannot be read is a failure; the part read is put
// back in front of the rest, so if the gate admits the request anyway
// (another plugin, the anonymous consumer) the upstream still gets it all.
func (h *handler) bufferBody(r *http.Request) ([]byte, *pipeline.AuthFailure) {
	if r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0 {
		return nil, nil
	}
	if r.ContentLength > h.maxBody {
		return nil, &failBodyTooLarge
	}
	var b bytes.Buffer
	if r.ContentLength > 0 {
		b.Grow(int(r.ContentLength))
	}
	n, err := b.ReadFrom(io.LimitReader(r.Body, h.maxBody+1))
	read := b.Bytes()
	switch {
	case err != nil:
		r.Body = &bodyReader{io.MultiReader(bytes.NewReader(read), errReader{err}), r.Body}
		var tooLarge *http.MaxBytesError
		switch {
		case errors.As(err, &tooLarge):
			return nil, &failBodyTooLarge
		case errors.Is(err, pipeline.ErrSlowBody):
			return nil, &failSlowBody
		}
		return nil, &failBodyUnread
	case n > h.maxBody:
		r.Body = &bodyReader{io.MultiReader(bytes.NewReader(read), r.Body), r.Body}
		return nil, &failBodyTooLarge
	case n == 0:
		r.Body = &bodyReader{http.NoBody, r.Body}
		r.ContentLength = 0
		return nil, nil
	}
	orig := r.Body
	r.Body = &bodyReader{bytes.NewReader(read), orig}
	r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(read)), nil }
	r.ContentLength = int64(len(read))
	r.TransferEncoding = nil
	return read, nil
}

// bodyReader is a request body read from Reader and closed with the
// original body.
type bodyReader struct {
	io.Reader
	orig io.Closer
}

func (b *bodyReader) Close() error { return b.orig.Close() }

// errReader fails every read with err.
type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }
