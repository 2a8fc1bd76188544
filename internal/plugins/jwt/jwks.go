package jwt

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/portico-gateway/portico/internal/pipeline"
)

// Limits of remote key fetching.
const (
	maxKeySetBody  = 1 << 20 // bytes of a JWKS or discovery document
	minCacheMaxAge = 5 * time.Minute
	maxCacheMaxAge = 24 * time.Hour
	maxRedirects   = 3
)

// remoteKeys is a key set fetched from a JWKS URL, or from the jwks_uri an
// OpenID Connect issuer advertises. It lives in pipeline.Shared under
// "jwks:"+URL or "oidc:"+issuer, so reloads keep it warm; the first route
// to ask for it sets its tuning.
//
// Lifecycle: Build creates it and does no I/O. Run fetches at once, then
// again every refresh interval (the spec's jwks_refresh, or the response's
// Cache-Control max-age clamped to [5m, 24h]); a failed fetch is retried
// after min_refetch and the last good set keeps serving. A token whose kid
// is unknown triggers one synchronous fetch, at most once per min_refetch,
// bounded by the fetch timeout. Ready reports true after the first good
// fetch, or once ready_timeout has passed since Run started.
type remoteKeys struct {
	source   string // the JWKS URL, or the issuer when discover is set
	discover bool
	client   *http.Client
	logger   *slog.Logger

	refresh, minRefetch, timeout, readyTimeout time.Duration
	// now and after are the clock; tests replace them.
	now   func() time.Time
	after func(time.Duration) <-chan time.Time

	keys    atomic.Pointer[keySet]
	ready   atomic.Bool
	started atomic.Int64 // Run's start, unix nanoseconds

	mu          sync.Mutex // serializes fetches; guards the fields below
	lastAttempt time.Time
	jwksURL     string        // discovered jwks_uri
	nextWait    time.Duration // refresh interval after the last good fetch
	fetches     int           // fetch attempts, for tests
}

var (
	_ pipeline.Runner  = (*remoteKeys)(nil)
	_ pipeline.Readier = (*remoteKeys)(nil)
)

func newRemoteKeys(source string, discover bool, s *Spec, logger *slog.Logger) *remoteKeys {
	timeout := s.JWKSTimeout.D()
	return &remoteKeys{
		source:       source,
		discover:     discover,
		logger:       logger,
		refresh:      s.JWKSRefresh.D(),
		minRefetch:   s.JWKSMinRefetch.D(),
		timeout:      timeout,
		readyTimeout: s.ReadyTimeout.D(),
		now:          time.Now,
		after:        time.After,
		client: &http.Client{
			Timeout: timeout,
			CheckRedirect: func(req *http.Request, via []*http.Request) error {
				if len(via) > maxRedirects || req.URL.Host != via[0].URL.Host || req.URL.Scheme != via[0].URL.Scheme {
					return errors.New("redirect refused")
				}
				return nil
			},
		},
	}
}

// Run fetches the key set and keeps it fresh until ctx ends.
func (rk *remoteKeys) Run(ctx context.Context) {
	rk.started.CompareAndSwap(0, rk.now().UnixNano())
	for {
		rk.mu.Lock()
		err := rk.fetchLocked(ctx)
		wait := rk.nextWait
		rk.mu.Unlock()
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			rk.logger.LogAttrs(ctx, slog.LevelWarn, "jwt key set fetch failed",
				slog.String("url", rk.source), slog.String("error", err.Error()))
			wait = min(rk.minRefetch, rk.refresh)
		}
		select {
		case <-ctx.Done():
			return
		case <-rk.after(wait):
		}
	}
}

// Ready reports whether the first fetch succeeded or the wait for it is
// over.
func (rk *remoteKeys) Ready() bool {
	if rk.ready.Load() {
		return true
	}
	s := rk.started.Load()
	return s != 0 && rk.now().Sub(time.Unix(0, s)) >= rk.readyTimeout
}

// lookup returns the keys that may verify a token with this kid and alg.
// An unknown kid (or no key set yet) causes one rate-limited fetch.
func (rk *remoteKeys) lookup(ctx context.Context, kid, alg string, out []any) []any {
	ks := rk.keys.Load()
	if !ks.has(kid) {
		rk.refetch(ctx, kid)
		ks = rk.keys.Load()
	}
	if ks == nil {
		return out
	}
	cands := ks.all
	if kid != "" {
		cands = ks.byKid[kid]
	}
	for _, k := range cands {
		if k.accepts(alg) {
			out = append(out, k.key)
		}
	}
	return out
}

func (ks *keySet) has(kid string) bool {
	if ks == nil {
		return false
	}
	if kid == "" {
		return true
	}
	_, ok := ks.byKid[kid]
	return ok
}

// refetch fetches the key set for an unknown kid, unless another request
// just did or the last attempt is more recent than minRefetch.
func (rk *remoteKeys) refetch(ctx context.Context, kid string) {
	rk.mu.Lock()
	defer rk.mu.Unlock()
	if rk.keys.Load().has(kid) {
		return
	}
	if !rk.lastAttempt.IsZero() && rk.now().Sub(rk.lastAttempt) < rk.minRefetch {
		return
	}
	if err := rk.fetchLocked(ctx); err != nil && ctx.Err() == nil {
		rk.logger.LogAttrs(ctx, slog.LevelWarn, "jwt key set fetch failed",
			slog.String("url", rk.source), slog.String("error", err.Error()))
	}
}

// fetchLocked fetches the key set once; rk.mu is held. On failure the
// previous set stays.
func (rk *remoteKeys) fetchLocked(ctx context.Context) error {
	rk.lastAttempt = rk.now()
	rk.fetches++
	ctx, cancel := context.WithTimeout(ctx, rk.timeout)
	defer cancel()
	url := rk.source
	if rk.discover {
		u, err := rk.discoverLocked(ctx)
		if err != nil {
			return err
		}
		url = u
	}
	body, header, err := rk.get(ctx, url)
	if err != nil {
		return err
	}
	ks, err := parseJWKS(body)
	if err != nil {
		return fmt.Errorf("parse key set from %s: %w", url, err)
	}
	rk.keys.Store(ks)
	rk.ready.Store(true)
	rk.nextWait = refreshInterval(header.Get("Cache-Control"), rk.refresh)
	return nil
}

// discoverLocked returns the issuer's jwks_uri, from its OpenID Connect
// discovery document. A failed discovery reuses the last jwks_uri.
func (rk *remoteKeys) discoverLocked(ctx context.Context) (string, error) {
	body, _, err := rk.get(ctx, strings.TrimSuffix(rk.source, "/")+"/.well-known/openid-configuration")
	if err != nil {
		if rk.jwksURL != "" {
			return rk.jwksURL, nil
		}
		return "", err
	}
	var doc struct {
		Issuer  string `json:"issuer"`
		JWKSURI string `json:"jwks_uri"`
	}
	if json.Unmarshal(body, &doc) != nil {
		return "", errors.New("discovery document is not JSON")
	}
	if doc.Issuer != rk.source {
		return "", errors.New("discovery document names another issuer")
	}
	if !fetchableURL(doc.JWKSURI) {
		return "", errors.New("discovery document has no usable jwks_uri")
	}
	rk.jwksURL = doc.JWKSURI
	return doc.JWKSURI, nil
}

func (rk *remoteKeys) get(ctx context.Context, url string) ([]byte, http.Header, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, nil, fmt.Errorf("fetch %s: %w", url, err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := rk.client.Do(req)
	if err != nil {
		return nil, nil, fmt.Errorf("fetch %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, nil, fmt.Errorf("fetch %s: status %d", url, resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxKeySetBody+1))
	if err != nil {
		return nil, nil, fmt.Errorf("read %s: %w", url, err)
	}
	if len(body) > maxKeySetBody {
		return nil, nil, fmt.Errorf("read %s: larger than %d bytes", url, maxKeySetBody)
	}
	return body, resp.Header, nil
}

// refreshInterval honours a Cache-Control max-age within [5m, 24h], and
// otherwise returns def.
func refreshInterval(cacheControl string, def time.Duration) time.Duration {
	for part := range strings.SplitSeq(cacheControl, ",") {
		v, ok := strings.CutPrefix(strings.TrimSpace(strings.ToLower(part)), "max-age=")
		if !ok {
			continue
		}
		n, err := strconv.ParseInt(strings.Trim(v, `"`), 10, 64)
		if err != nil || n < 0 {
			return def
		}
		d := time.Duration(min(n, int64(maxCacheMaxAge/time.Second))) * time.Second
		return min(max(d, minCacheMaxAge), maxCacheMaxAge)
	}
	return def
}

// fetchCount returns the number of fetch attempts so far.
func (rk *remoteKeys) fetchCount() int {
	rk.mu.Lock()
	defer rk.mu.Unlock()
	return rk.fetches
}
