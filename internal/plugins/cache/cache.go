// Package cache implements the cache plugin: an HTTP response cache with
// RFC 9111 semantics at the gateway, in the memory store (shared by the
// routes of this process) or in Redis (shared by every instance), built on
// the engine in internal/httpcache.
//
// # Flow of one request (phase PhaseCache, right before the proxy)
//
//	POST, PUT, PATCH, DELETE … → upstream; a 2xx/3xx answer invalidates the
//	    URL and its same-origin Location / Content-Location (RFC 9111 §4.4)
//	GET, HEAD with a body, or with a method or URL override header → upstream
//	    untouched, nothing looked up or stored (the key could not hold them)
//	GET, HEAD → key (route, path, normalised query, host, key headers)
//	 ├─ Get(base) → Vary marker? → Get(base + variant)   (≤ 2 store round trips;
//	 │   an authenticated request under per_consumer may look under its own key too)
//	 ├─ fresh → served: Age, Cache-Status "hit; ttl=N"; 304 for a matching conditional
//	 ├─ stale within stale-while-revalidate → served at once, refreshed in the
//	 │   background (one refresh per key, its own context and timeout)
//	 ├─ stale otherwise → conditional request upstream (If-None-Match /
//	 │   If-Modified-Since); 304 → entry refreshed and served, 200 → replaced;
//	 │   500/502/503/504 within stale-if-error → the stale entry is served
//	 └─ miss → one request upstream per key (others wait, bounded); the answer
//	     streams to the client while up to max_object_size is captured; stored
//	     when RFC 9111 allows
//
// Whatever goes upstream from a lookup is what the key describes: query
// parameters the key leaves out (query.include / exclude) are removed,
// and the gateway's own Surrogate-Capability replaces the client's. A
// lifetime the gateway assigns (default_ttl) never applies to an error
// or to an answer to a request with credentials or cookies.
//
// Store failures are misses; nothing a store does fails a request.
package cache

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/portico-gateway/portico/internal/httpcache"
	"github.com/portico-gateway/portico/internal/pipeline"
	"github.com/portico-gateway/portico/internal/problem"
	"github.com/portico-gateway/portico/internal/router"
	"github.com/portico-gateway/portico/internal/telemetry"
)

// Name is the plugin's YAML key.
const Name = "cache"

const (
	// purgeTimeout bounds one admin purge.
	purgeTimeout = 10 * time.Second
	// refreshTimeout bounds one background (stale-while-revalidate)
	// refresh.
	refreshTimeout = 30 * time.Second
	// markerMinTTL is the shortest time a Vary marker is kept: variants
	// stored under it stay reachable while any of them lives.
	markerMinTTL = time.Hour
)

// Registration declares the cache pipeline.
func Registration() pipeline.Registration {
	return pipeline.Registration{
		Name:  Name,
		Phase: pipeline.PhaseCache,
		Spec:  func() pipeline.Spec { return newSpec() },
		Build: build,
		Admin: []pipeline.AdminEndpoint{purgeEndpoint},
	}
}

// handler serves one route.
type handler struct {
	next        http.Handler
	store       httpcache.Store
	group       *httpcache.Group
	bg          *background
	keyer       *httpcache.Keyer
	policy      httpcache.Policy
	maxObject   int64
	honorReq    bool
	perConsumer bool
	xCache      bool
	wait        time.Duration
	m           telemetry.CacheRoute
	logger      *slog.Logger
}

// queryCredential is a plugin that reads a credential from a query
// parameter and forwards it upstream (key_auth with query and without
// hide_credentials).
type queryCredential interface {
	ForwardedQueryParameter() string
}

// checkChain refuses query rules that leave out of the key a parameter
// another plugin of the chain reads a credential from and forwards: the
// cache removes unkeyed parameters before forwarding, so the upstream
// would get the credential on writes and bypassed requests and not on
// those answered through the cache.
func checkChain(sp *Spec, chain []pipeline.Configured) error {
	for _, c := range chain {
		qc, ok := c.Spec.(queryCredential)
		if !ok {
			continue
		}
		name := qc.ForwardedQueryParameter()
		if name == "" {
			continue
		}
		if len(sp.Query.Include) > 0 && !slices.Contains(sp.Query.Include, name) || slices.Contains(sp.Query.Exclude, name) {
			return fmt.Errorf("query: leaves out of the key the parameter %q that %s reads a credential from and forwards; "+
				"the cache removes such parameters before forwarding: set hide_credentials: true on %s, or keep %q in the key",
				name, c.Reg.Name, c.Reg.Name, name)
		}
	}
	return nil
}

func build(s pipeline.Spec, env *pipeline.BuildEnv) (pipeline.Middleware, error) {
	sp := s.(*Spec)
	if err := checkChain(sp, env.Chain); err != nil {
		return nil, err
	}
	shared := env.Shared
	if shared == nil {
		shared = pipeline.NewShared()
	}
	reg := registryFor(shared)
	var store httpcache.Store
	var mem *httpcache.Memory
	switch sp.Store {
	case storeRedis:
		if env.Store == nil || env.Store.Redis == nil {
			return nil, errors.New("cache: store: redis requires store.redis; configure store.redis or use store: memory")
		}
		st, err := redisFor(shared, reg, env.Store.Redis, sp.Compress)
		if err != nil {
			return nil, err
		}
		store = st
	default:
		mem = memoryFor(shared, reg, int64(sp.MemoryMaxBytes))
		store = mem
	}
	keyer := httpcache.NewKeyer(httpcache.KeyRules{Route: env.Route, Include: sp.Query.Include,
		Exclude: sp.Query.Exclude, Headers: sp.KeyHeaders})
	reg.setKeyer(env.Route, keyer)
	if src := memorySourceFor(shared, env.Telemetry); src != nil && mem != nil {
		src.mem.Store(mem)
	}
	logger := env.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	h := &handler{
		store:       store,
		group:       pipeline.Get(shared, sharedGroup, httpcache.NewGroup),
		bg:          pipeline.Get(shared, sharedBackground, newBackground),
		keyer:       keyer,
		policy:      httpcache.Policy{DefaultTTL: sp.DefaultTTL.D(), MaxTTL: sp.MaxTTL.D(), StaleWhileRevalidate: sp.StaleWhileRevalidate.D(), StaleIfError: sp.StaleIfError.D()},
		maxObject:   int64(sp.MaxObjectSize),
		honorReq:    sp.HonorRequestDirectives,
		perConsumer: sp.Authenticated == authPerConsumer,
		xCache:      sp.XCacheHeader,
		wait:        sp.CoalesceTimeout.D(),
		m:           env.Telemetry.CacheRoute(env.Route, sp.Store),
		logger:      logger,
	}
	return func(next http.Handler) http.Handler {
		hh := *h
		hh.next = next
		return &hh
	}, nil
}

// lookup is what one GET or HEAD found and how its response may be stored.
type lookup struct {
	r           *http.Request
	path, query string
	// rq is what storing decisions need to know about the request.
	rq httpcache.Request
	// consumer is the consumer id under which a private response is
	// stored ("" when responses to this request are stored shared only).
	consumer  string
	shared    slot
	private   slot // base "" unless consumer != ""
	flightKey string
	noStore   bool   // HEAD: served from GET entries, never stored
	fwd       string // the Cache-Status fwd value when forwarded
}

// slot is one base key and what was found there.
type slot struct {
	base   string
	marker *httpcache.Entry // the Vary marker at base, if any
	key    string           // the key of the entry found
}

// ServeHTTP answers from the cache or forwards, as the package doc says.
func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodGet, http.MethodHead:
	default:
		h.unsafe(w, r)
		return
	}
	if len(r.Header["Upgrade"]) > 0 {
		h.next.ServeHTTP(w, r)
		return
	}
	if hasBody(r) || hasOverride(r.Header) {
		h.bypass(w, r)
		return
	}
	ex := pipeline.FromContext(r.Context())
	if ex == nil {
		ex = &pipeline.Exchange{}
	}
	var rd httpcache.Directives
	if h.honorReq {
		rd = httpcache.ParseCacheControl(r.Header["Cache-Control"])
		if len(r.Header["Cache-Control"]) == 0 && hasPragmaNoCache(r.Header) {
			rd.NoCache = true
		}
	}
	if httpcache.Bypasses(r.Header) || rd.NoStore {
		h.bypass(w, r)
		return
	}
	// The edge normalized the path to route the request; without an edge
	// (tests, embedding) normalize it here.
	path := ex.Path
	if path == "" {
		var err error
		if path, err = router.NormalizePath(r.URL.EscapedPath()); err != nil {
			h.bypass(w, r)
			return
		}
	}
	lk := &lookup{r: r, path: path, query: h.keyer.Query(r.URL.RawQuery), noStore: r.Method == http.MethodHead}
	lk.rq.Authenticated = authenticated(r.Header, ex)
	lk.rq.Credentialed = lk.rq.Authenticated || credentialed(r.Header, ex)
	if lk.rq.Authenticated && h.perConsumer && ex.Consumer != nil && !ex.Consumer.Anonymous && ex.Consumer.ID != "" {
		lk.consumer = ex.Consumer.ID
	}
	lk.shared.base = h.keyer.Base(path, lk.query, r.Host, r.Header, "")
	lk.flightKey = lk.shared.base
	ctx := r.Context()
	sl := &lk.shared
	e := h.get(ctx, sl, r.Header)
	if e != nil && lk.rq.Authenticated && !httpcache.SharedWithAuthenticated(e) {
		e = nil
	}
	if lk.consumer != "" {
		lk.private.base = h.keyer.Base(path, lk.query, r.Host, r.Header, lk.consumer)
		lk.flightKey = lk.private.base
		if e == nil {
			sl = &lk.private
			e = h.get(ctx, sl, r.Header)
		}
	}
	lk.fwd = "miss"
	if e == nil && (lk.shared.marker != nil || lk.private.marker != nil) {
		lk.fwd = "vary-miss"
	}
	if e == nil {
		if rd.OnlyIfCached {
			h.m.Miss.Inc()
			problem.Write(w, r, http.StatusGatewayTimeout, "", "the response is not in the cache")
			return
		}
		h.fetch(w, r, ex, lk, nil, nil, nil)
		return
	}
	now := time.Now()
	f := h.policy.Freshness(e, now)
	forced := h.honorReq && (rd.NoCache ||
		rd.MaxAge != httpcache.Absent && f.Age > httpcache.Seconds(rd.MaxAge) ||
		rd.MinFresh != httpcache.Absent && f.Lifetime-f.Age < httpcache.Seconds(rd.MinFresh))
	switch {
	case rd.OnlyIfCached && (forced || !f.Fresh() && !f.InStaleWhileRevalidate()):
		// RFC 9111 §5.2.1.7: answer from a usable stored response or with
		// 504, never by going to the service.
		h.m.Miss.Inc()
		problem.Write(w, r, http.StatusGatewayTimeout, "", "no usable response is in the cache")
		return
	case forced:
		lk.fwd = "request"
	case f.Fresh():
		h.m.Hit.Inc()
		h.serve(w, r, e, f.Age, "portico; hit; ttl="+strconv.FormatInt(int64(f.TTL()/time.Second), 10), true)
		return
	case f.InStaleWhileRevalidate():
		h.m.Stale.Inc()
		h.serve(w, r, e, f.Age, "portico; hit; ttl="+ttlParam(&f)+"; detail=stale-while-revalidate", true)
		h.refreshLater(r, ex, lk, sl, e, f)
		return
	default:
		lk.fwd = "stale"
	}
	h.fetch(w, r, ex, lk, sl, e, &f)
}

// ttlParam is the Cache-Status ttl of f: remaining freshness, negative
// when stale.
func ttlParam(f *httpcache.Freshness) string {
	return strconv.FormatInt(int64((f.Lifetime-f.Age)/time.Second), 10)
}

// hasBody reports whether a GET or HEAD carries a body, as the proxy
// would forward it. No key holds a body, and an upstream may answer by it
// ("fat GET"): such a request bypasses the cache.
func hasBody(r *http.Request) bool {
	return r.Body != nil && r.Body != http.NoBody && r.ContentLength != 0
}

// overrideHeaders are the request fields by which frameworks let a client
// change the method or the path the application sees. An upstream that
// obeys one answers another request than the key describes (an error, an
// empty HEAD answer, another resource: CPDoS "HTTP Method Override"), so
// a request carrying one bypasses the cache.
var overrideHeaders = [...]string{"X-Http-Method-Override", "X-Http-Method", "X-Method-Override",
	"X-Original-Url", "X-Rewrite-Url", "X-Original-Method", "X-Forwarded-Method"}

func hasOverride(h http.Header) bool {
	for _, name := range overrideHeaders {
		if len(h[name]) > 0 {
			return true
		}
	}
	return false
}

// authenticated reports whether the request counts as authenticated for
// RFC 9111 §3.5: it carries Authorization, or an authentication plugin
// admitted it as someone other than the route's anonymous consumer.
func authenticated(h http.Header, ex *pipeline.Exchange) bool {
	if len(h["Authorization"]) > 0 {
		return true
	}
	if c := ex.Consumer; c != nil {
		return !c.Anonymous
	}
	return ex.Auth.Passed > 0 || ex.Subject != ""
}

// credentialed reports whether the request carries a credential beyond
// those that make it authenticated: a Cookie, Proxy-Authorization, or a
// credential an authentication plugin saw but did not accept (the request
// was then admitted as the anonymous consumer, and the credential still
// goes upstream). The gateway assigns no lifetime to answers to such
// requests.
func credentialed(h http.Header, ex *pipeline.Exchange) bool {
	return len(h["Cookie"]) > 0 || len(h["Proxy-Authorization"]) > 0 ||
		ex.Auth.Failure != nil && ex.Auth.Failure.Presented
}

func hasPragmaNoCache(h http.Header) bool {
	for _, v := range h["Pragma"] {
		if v == "no-cache" {
			return true
		}
	}
	return false
}

// get looks up sl.base and, behind a Vary marker, the variant for a
// request with header hd. A store error is a miss.
func (h *handler) get(ctx context.Context, sl *slot, hd http.Header) *httpcache.Entry {
	e, err := h.store.Get(ctx, sl.base)
	if err != nil {
		h.storeError(err)
		return nil
	}
	if !httpcache.IsMarker(e) {
		if !httpcache.VaryMatches(e, hd) {
			return nil
		}
		sl.key = sl.base
		return e
	}
	sl.marker = e
	key := httpcache.VariantKey(sl.base, e, hd)
	v, err := h.store.Get(ctx, key)
	if err != nil {
		h.storeError(err)
		return nil
	}
	if httpcache.IsMarker(v) || !httpcache.VaryMatches(v, hd) {
		return nil
	}
	sl.key = key
	return v
}

func (h *handler) storeError(err error) {
	if err == nil || errors.Is(err, httpcache.ErrNotFound) || errors.Is(err, httpcache.ErrTooLarge) {
		return
	}
	h.m.StoreErrors.Inc()
}

// Values of X-Cache.
var (
	xHit  = []string{"HIT"}
	xMiss = []string{"MISS"}
)

// serve writes the stored response e (current age age) with status as
// our Cache-Status member.
func (h *handler) serve(w http.ResponseWriter, r *http.Request, e *httpcache.Entry, age time.Duration, status string, hit bool) {
	hdr := w.Header()
	for k, vs := range e.Header {
		if k == "Age" || k == "Cache-Status" {
			continue
		}
		hdr[k] = vs
	}
	hdr["Age"] = []string{strconv.FormatInt(int64(age/time.Second), 10)}
	addCacheStatus(hdr, e.Header["Cache-Status"], status)
	if h.xCache {
		if hit {
			hdr["X-Cache"] = xHit
		} else {
			hdr["X-Cache"] = xMiss
		}
	}
	if e.Status == http.StatusOK && httpcache.NotModified(r.Header, e.Header) {
		delete(hdr, "Content-Length")
		w.WriteHeader(http.StatusNotModified)
		return
	}
	w.WriteHeader(e.Status)
	if r.Method != http.MethodHead && len(e.Body) > 0 {
		_, _ = w.Write(e.Body)
	}
}

// addCacheStatus sets Cache-Status to the upstream's members followed by
// ours (RFC 9211: the cache nearest the client comes last).
func addCacheStatus(hdr http.Header, upstream []string, ours string) {
	if len(upstream) == 0 {
		hdr["Cache-Status"] = []string{ours}
		return
	}
	v := make([]string, 0, len(upstream)+1)
	hdr["Cache-Status"] = append(append(v, upstream...), ours)
}

// bypass forwards a GET or HEAD the cache does not handle.
func (h *handler) bypass(w http.ResponseWriter, r *http.Request) {
	h.m.Bypass.Inc()
	sw := &statusWriter{ResponseWriter: w, xCache: h.xCache}
	h.next.ServeHTTP(sw, r)
}

// fetch forwards a miss or a stale entry's revalidation, coalesced with
// concurrent requests for the same key.
func (h *handler) fetch(w http.ResponseWriter, r *http.Request, ex *pipeline.Exchange, lk *lookup, sl *slot, stale *httpcache.Entry, sf *httpcache.Freshness) {
	if lk.noStore || h.wait <= 0 {
		h.forward(w, r, lk, sl, stale, sf)
		return
	}
	fl, leader := h.group.Join(lk.flightKey)
	if !leader {
		h.m.Coalesced.Inc()
		e, ok := fl.Wait(r.Context(), h.wait)
		if ok && e != nil && lk.rq.Authenticated && lk.flightKey != lk.private.base && !httpcache.SharedWithAuthenticated(e) {
			e = nil // an anonymous client's answer
		}
		if ok && e != nil && httpcache.VaryMatches(e, r.Header) {
			f := h.policy.Freshness(e, time.Now())
			switch {
			case f.Fresh():
				h.m.Hit.Inc()
				h.serve(w, r, e, f.Age, "portico; fwd=miss; collapsed; ttl="+ttlParam(&f), true)
				return
			case f.InStaleIfError():
				h.m.Stale.Inc()
				h.serve(w, r, e, f.Age, "portico; fwd=stale; collapsed; ttl="+ttlParam(&f)+"; detail=stale-if-error", true)
				return
			}
		}
		h.forward(w, r, lk, sl, stale, sf)
		return
	}
	var result *httpcache.Entry
	defer func() { h.group.Done(lk.flightKey, fl, result) }()
	result = h.forward(w, r, lk, sl, stale, sf)
}

// forward sends r upstream through a capturing writer and stores what may
// be stored. It returns the entry waiters for the same key may be served:
// the stored (or refreshed) response, or the stale one it served instead
// of an error.
//
// What goes upstream is what the key describes: the query without the
// parameters the key leaves out, and the gateway's Surrogate-Capability
// instead of the client's.
func (h *handler) forward(w http.ResponseWriter, r *http.Request, lk *lookup, sl *slot, stale *httpcache.Entry, sf *httpcache.Freshness) *httpcache.Entry {
	cw := &captureWriter{w: w, h: make(http.Header), hd: h, lk: lk, stale: stale, sf: sf}
	out := *r
	out.Header = r.Header.Clone()
	out.Header["Surrogate-Capability"] = surrogateCapability
	if q, stripped := h.keyer.StripQuery(r.URL.RawQuery); stripped {
		u := *r.URL
		u.RawQuery = q
		out.URL = &u
	}
	if r.Method == http.MethodGet {
		httpcache.StripConditionals(out.Header)
		if stale != nil {
			cw.conditional = httpcache.Validators(out.Header, stale.Header)
		}
		cw.clientConditional = len(r.Header["If-None-Match"]) > 0 || len(r.Header["If-Modified-Since"]) > 0
	}
	cw.reqTime = time.Now()
	h.next.ServeHTTP(cw, &out)
	return cw.finish(sl, time.Now())
}

// surrogateCapability is the Surrogate-Capability sent upstream.
var surrogateCapability = []string{httpcache.SurrogateCapability}

// refreshLater revalidates a stale entry in the background, once per key
// at a time, with a detached copy of the request.
func (h *handler) refreshLater(r *http.Request, ex *pipeline.Exchange, lk *lookup, sl *slot, stale *httpcache.Entry, sf httpcache.Freshness) {
	fl, ok := h.group.TryLead(lk.flightKey)
	if !ok {
		return
	}
	ex2 := &pipeline.Exchange{Start: time.Now(), RequestID: ex.RequestID, ClientIP: ex.ClientIP,
		PeerTrusted: ex.PeerTrusted, Route: ex.Route, Service: ex.Service, Params: ex.Params,
		UpstreamPath: ex.UpstreamPath, UpstreamHost: ex.UpstreamHost, Consumer: ex.Consumer,
		Credential: ex.Credential, Subject: ex.Subject, Claims: ex.Claims}
	r2 := r.Clone(context.Background())
	r2.Method = http.MethodGet
	r2.Body, r2.GetBody, r2.ContentLength = http.NoBody, nil, 0
	lk2 := *lk
	lk2.noStore = false
	lk2.fwd = "stale"
	sl2 := *sl
	spawned := h.bg.spawn(func(ctx context.Context) {
		var result *httpcache.Entry
		ctx, cancel := context.WithTimeout(ctx, refreshTimeout)
		defer cancel()
		defer func() {
			if v := recover(); v != nil && v != http.ErrAbortHandler {
				h.logger.Error("cache refresh failed", "route", ex2.Route, "panic", v)
			}
			h.group.Done(lk2.flightKey, fl, result)
		}()
		req := r2.WithContext(pipeline.NewContext(ctx, ex2))
		lk2.r = req
		result = h.forward(discard{h: make(http.Header)}, req, &lk2, &sl2, stale, &sf)
	})
	if !spawned {
		h.group.Done(lk.flightKey, fl, nil)
	}
}

// storeCtx is the context of store writes: the request's values, without
// its cancellation (a client that leaves must not cut a write short).
func storeCtx(r *http.Request) context.Context { return context.WithoutCancel(r.Context()) }

// put stores e (a response to lk.r) under sl, behind a Vary marker when
// it varies. It reports whether it stored.
func (h *handler) put(lk *lookup, sl *slot, e *httpcache.Entry) bool {
	f := h.policy.Freshness(e, e.ResponseTime)
	ttl := httpcache.StoreTTL(&f, httpcache.HasValidator(e.Header))
	if ttl <= 0 {
		return false
	}
	ctx := storeCtx(lk.r)
	key := sl.base
	if len(e.VaryNames) > 0 {
		m := sl.marker
		if m == nil || !httpcache.SameNames(m, e.VaryNames) {
			m = httpcache.NewVaryMarker(e.VaryNames)
		}
		key = httpcache.VariantKey(sl.base, m, lk.r.Header)
		if err := h.store.Set(ctx, sl.base, m, max(ttl, markerMinTTL)); err != nil {
			h.storeError(err)
			return false
		}
	}
	if err := h.store.Set(ctx, key, e, ttl); err != nil {
		h.storeError(err)
		return false
	}
	return true
}

// unsafe forwards a request with an unsafe (or unknown) method and, when
// it succeeds, invalidates what is stored for its URL and for the
// same-origin Location and Content-Location it names.
func (h *handler) unsafe(w http.ResponseWriter, r *http.Request) {
	h.m.Bypass.Inc()
	sw := &statusWriter{ResponseWriter: w, xCache: h.xCache}
	h.next.ServeHTTP(sw, r)
	if sw.status < 200 || sw.status >= 400 || r.Method == http.MethodOptions || r.Method == http.MethodTrace {
		return
	}
	ex := pipeline.FromContext(r.Context())
	keys := h.invalidationKeys(nil, r, ex, r.URL.EscapedPath(), r.URL.RawQuery)
	for _, loc := range sw.locations {
		u, err := r.URL.Parse(loc)
		if err != nil || u.Host != "" && u.Host != r.Host {
			continue
		}
		keys = h.invalidationKeys(keys, r, ex, u.EscapedPath(), u.RawQuery)
	}
	if len(keys) == 0 {
		return
	}
	if err := h.store.Delete(storeCtx(r), keys...); err != nil {
		h.storeError(err)
	}
}

// invalidationKeys appends the base keys a GET of path?rawQuery would use
// for this request: the shared one and the consumer's. Deleting a base
// key deletes its Vary marker, which makes every variant under it
// unreachable.
func (h *handler) invalidationKeys(keys []string, r *http.Request, ex *pipeline.Exchange, path, rawQuery string) []string {
	norm, err := router.NormalizePath(path)
	if err != nil {
		return keys
	}
	q := h.keyer.Query(rawQuery)
	keys = append(keys, h.keyer.Base(norm, q, r.Host, r.Header, ""))
	if h.perConsumer && ex != nil && ex.Consumer != nil && !ex.Consumer.Anonymous && ex.Consumer.ID != "" {
		keys = append(keys, h.keyer.Base(norm, q, r.Host, r.Header, ex.Consumer.ID))
	}
	return keys
}
