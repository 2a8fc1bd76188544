// Package jwt implements the jwt plugin: it verifies a JSON Web Token sent
// by the caller and records the result for the auth gate.
//
// Flow per request: take the token from the configured header (default
// "Authorization: Bearer <token>"), cookie or query parameter; refuse
// tokens over 8 KiB unparsed; check that the header's alg is in the
// allow-list; refuse a header with crit (Portico implements no JWS
// extension, RFC 7515 §4.1.11) or with a typ the route does not accept
// (the types setting, RFC 8725 §3.11), before any key is looked up; pick
// the verification keys that match the alg's family (the
// consumer credential selected by key_claim, the static secret or public
// key, and the JWKS / OIDC key sets by kid); verify the signature; check
// exp (required by default), nbf and iat with leeway, max_age, iss and aud;
// then the required claims.
//
// Like every authentication plugin it never refuses by itself: it records
// ex.AuthPassed or ex.AuthFailed and calls the next handler; the auth gate
// answers. A missing token is a 401 without error= (Presented false); a bad
// token a 401 with error="invalid_token"; a valid token without a required
// claim a 403 with error="insufficient_scope". Descriptions are fixed
// phrases, never token content.
//
// On success it sets ex.Subject (sub), ex.Claims, the claims_to_headers
// headers, removes the token when hide_credentials is set, and records
// AuthPassed with the consumer of the matching consumer credential, or with
// no consumer for tokens verified by static or remote keys; the gate then
// admits the request and forwards only X-User-ID for it.
//
// When no remote key set could be fetched yet and no other key applies,
// the token cannot be judged: the failure is a 503 with Retry-After.
package jwt

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"maps"
	"net/http"
	"net/textproto"
	"slices"
	"strconv"
	"strings"
	"time"

	jwtlib "github.com/golang-jwt/jwt/v5"

	"github.com/portico-gateway/portico/internal/config"
	"github.com/portico-gateway/portico/internal/consumer"
	"github.com/portico-gateway/portico/internal/pipeline"
	"github.com/portico-gateway/portico/internal/problem"
)

// Registration declares the jwt pipeline.
func Registration() pipeline.Registration {
	return pipeline.Registration{
		Name:            "jwt",
		Phase:           pipeline.PhaseAuthenticate,
		Spec:            func() pipeline.Spec { return defaultSpec() },
		Build:           build,
		IdentityHeaders: identityHeaders,
	}
}

func identityHeaders(s pipeline.Spec) []string {
	spec := s.(*Spec)
	out := make([]string, 0, len(spec.ClaimsToHeaders))
	for _, h := range spec.ClaimsToHeaders {
		out = append(out, textproto.CanonicalMIMEHeaderKey(h))
	}
	slices.Sort(out)
	return out
}

// Challenges (RFC 6750).
const (
	challengeMissing = `Bearer realm="portico"`
	challengeInvalid = `Bearer realm="portico", error="invalid_token", error_description="`
	challengeScope   = `Bearer realm="portico", error="insufficient_scope", error_description="`
)

var (
	errNoKey           = errors.New("no key for token")
	errKeysUnavailable = errors.New("key set not fetched yet")
)

// retryAfterKeys is the Retry-After (seconds) of a 503 answered while no
// remote key set could be fetched yet.
const retryAfterKeys = "5"

type consumerKey struct {
	key      verifyKey
	consumer *consumer.Consumer
}

type requirement struct {
	claim, value string
	scope        bool   // space-separated scope claim
	challenge    string // the 403 challenge
}

type claimHeader struct{ claim, header string }

type source int

const (
	fromHeader source = iota
	fromCookie
	fromQuery
)

// verifier is one compiled jwt plugin instance; immutable.
type verifier struct {
	parser    *jwtlib.Parser
	algs      map[string]bool
	static    map[string]any // alg → key or VerificationKeySet
	consumers map[string]consumerKey
	keyClaim  string
	remotes   []*remoteKeys
	types     typeRule
	issuers   []string
	audiences []string
	required  []requirement
	maxAge    time.Duration
	leeway    time.Duration
	now       func() time.Time

	src     source
	name    string // header, cookie or query parameter name
	bearer  bool   // the header is Authorization: the Bearer scheme is required
	headers []claimHeader
	hide    bool
}

func build(s pipeline.Spec, env *pipeline.BuildEnv) (pipeline.Middleware, error) {
	v, err := newVerifier(s.(*Spec), env, time.Now)
	if err != nil {
		return nil, err
	}
	return v.middleware, nil
}

func newVerifier(spec *Spec, env *pipeline.BuildEnv, now func() time.Time) (*verifier, error) {
	v := &verifier{
		algs:     make(map[string]bool, len(spec.Algorithms)),
		static:   make(map[string]any),
		keyClaim: spec.KeyClaim,
		maxAge:   spec.MaxAge.D(),
		leeway:   spec.Leeway.D(),
		now:      now,
		hide:     spec.HideCredentials,
	}
	for _, a := range spec.Algorithms {
		if _, ok := algFamily[a]; !ok {
			return nil, errors.New("algorithms: unknown algorithm")
		}
		v.algs[a] = true
	}
	opts := []jwtlib.ParserOption{
		jwtlib.WithValidMethods(spec.Algorithms),
		jwtlib.WithLeeway(v.leeway),
		jwtlib.WithTimeFunc(now),
		jwtlib.WithIssuedAt(),
	}
	if spec.RequireExp {
		opts = append(opts, jwtlib.WithExpirationRequired())
	}
	v.parser = jwtlib.NewParser(opts...)

	var static []verifyKey
	if spec.Secret != "" {
		static = append(static, verifyKey{family: "HS", key: []byte(spec.Secret.Value())})
	}
	if spec.PublicKey != "" {
		k, err := parsePublicPEM([]byte(spec.PublicKey))
		if err != nil {
			return nil, errors.New("public_key: not a supported PEM public key")
		}
		static = append(static, k)
	}
	for a := range v.algs {
		var keys []jwtlib.VerificationKey
		for _, k := range static {
			if k.accepts(a) {
				keys = append(keys, k.key)
			}
		}
		switch len(keys) {
		case 0:
		case 1:
			v.static[a] = keys[0]
		default:
			v.static[a] = jwtlib.VerificationKeySet{Keys: keys}
		}
	}

	if spec.ConsumerCredentials && env.Consumers != nil {
		v.consumers = make(map[string]consumerKey)
		for _, c := range env.Consumers.JWTKeys() {
			k, err := credentialKey(c.Algorithm, c.Secret, c.PublicPEM)
			if err != nil {
				return nil, errors.New("consumer " + c.Consumer.Name + ": jwt credential " +
					strconv.Quote(c.Key) + " has an unusable key: " + err.Error())
			}
			v.consumers[c.Key] = consumerKey{key: k, consumer: c.Consumer}
		}
	}

	logger := env.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	shared := env.Shared
	if shared == nil {
		shared = pipeline.NewShared()
	}
	if spec.JWKSURL != "" {
		v.remotes = append(v.remotes, pipeline.Get(shared, pipeline.NewKey[*remoteKeys]("jwks:"+spec.JWKSURL), func() *remoteKeys {
			return newRemoteKeys(spec.JWKSURL, false, spec, logger)
		}))
	}
	var err error
	if v.types, err = compileTypes(spec.Types); err != nil {
		return nil, err
	}
	if v.issuers, err = stringOrList(&spec.Issuer, config.Path{}); err != nil {
		return nil, errors.New("issuer: must be a string or a list of strings")
	}
	if v.audiences, err = stringOrList(&spec.Audience, config.Path{}); err != nil {
		return nil, errors.New("audience: must be a string or a list of strings")
	}
	if spec.IssuerDiscovery != "" {
		v.remotes = append(v.remotes, pipeline.Get(shared, pipeline.NewKey[*remoteKeys]("oidc:"+spec.IssuerDiscovery), func() *remoteKeys {
			return newRemoteKeys(spec.IssuerDiscovery, true, spec, logger)
		}))
		if len(v.issuers) == 0 {
			v.issuers = []string{spec.IssuerDiscovery}
		}
	}

	for _, claim := range slices.Sorted(maps.Keys(spec.RequiredClaims)) {
		q := requirement{claim: claim, value: spec.RequiredClaims[claim], scope: claim == "scope" || claim == "scp"}
		desc := "required claim missing"
		if q.scope {
			desc = "required scope missing"
		}
		q.challenge = challengeScope + desc + `"`
		if q.scope && scopeToken(q.value) {
			q.challenge += `, scope="` + q.value + `"`
		}
		v.required = append(v.required, q)
	}
	for _, claim := range slices.Sorted(maps.Keys(spec.ClaimsToHeaders)) {
		v.headers = append(v.headers, claimHeader{claim, textproto.CanonicalMIMEHeaderKey(spec.ClaimsToHeaders[claim])})
	}
	switch {
	case spec.Cookie != "":
		v.src, v.name = fromCookie, spec.Cookie
	case spec.Query != "":
		v.src, v.name = fromQuery, spec.Query
	default:
		v.src, v.name = fromHeader, textproto.CanonicalMIMEHeaderKey(spec.Header)
		v.bearer = v.name == "Authorization"
	}
	return v, nil
}

func (v *verifier) middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ex := pipeline.FromContext(r.Context())
		if ex == nil {
			ex = &pipeline.Exchange{}
			r = r.WithContext(pipeline.NewContext(r.Context(), ex))
		}
		if v.tokens(r) > 1 {
			// Two tokens: whichever were checked, the other would go
			// upstream unverified beside it.
			problem.Write(w, r, http.StatusBadRequest, "", "the request carries more than one token; send exactly one")
			return
		}
		v.authenticate(r, ex)
		next.ServeHTTP(w, r)
	})
}

// tokens counts the tokens r carries where the plugin looks: lines of its
// header (Bearer ones for Authorization), cookies of its name, or query
// parameters of its name.
func (v *verifier) tokens(r *http.Request) int {
	switch v.src {
	case fromCookie:
		return len(r.CookiesNamed(v.name))
	case fromQuery:
		if r.URL.RawQuery == "" {
			return 0
		}
		return len(r.URL.Query()[v.name])
	}
	vals := r.Header[v.name]
	if !v.bearer {
		return len(vals)
	}
	n := 0
	for _, h := range vals {
		if h = strings.TrimSpace(h); len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
			n++
		}
	}
	return n
}

// authenticate checks the request's token and records the outcome.
func (v *verifier) authenticate(r *http.Request, ex *pipeline.Exchange) {
	raw, ok := v.token(r)
	if !ok {
		ex.AuthFailed(pipeline.AuthFailure{Status: http.StatusUnauthorized, Challenge: challengeMissing,
			Detail: "a bearer token is required"})
		return
	}
	if len(raw) > MaxTokenSize {
		v.invalid(ex, "malformed token")
		return
	}
	var match consumerKey
	var matchedKey string
	ctx := r.Context()
	tok, err := v.parser.Parse(raw, func(t *jwtlib.Token) (any, error) {
		if err := v.checkHeader(t.Header); err != nil {
			return nil, err
		}
		return v.keyFor(ctx, t, &match, &matchedKey)
	})
	if err != nil {
		if errors.Is(err, errKeysUnavailable) {
			ex.AuthFailed(pipeline.AuthFailure{Status: http.StatusServiceUnavailable, RetryAfter: retryAfterKeys,
				Detail: "the token cannot be checked now", Presented: true})
			return
		}
		v.invalid(ex, v.describe(tok, err))
		return
	}
	claims := tok.Claims.(jwtlib.MapClaims)
	if reason := v.checkClaims(claims); reason != "" {
		v.invalid(ex, reason)
		return
	}
	for i := range v.required {
		q := &v.required[i]
		if !q.met(claims) {
			detail := "the token lacks a required claim"
			if q.scope {
				detail = "the token lacks a required scope"
			}
			ex.AuthFailed(pipeline.AuthFailure{Status: http.StatusForbidden, Challenge: q.challenge,
				Detail: detail, Presented: true})
			return
		}
	}
	sub, _ := claims["sub"].(string)
	iss, _ := claims["iss"].(string)
	ex.Subject = sub
	ex.Claims = claims
	for _, h := range v.headers {
		if s, ok := claimText(claims[h.claim]); ok && !strings.ContainsAny(s, "\r\n\x00") {
			r.Header[h.header] = []string{s}
		} else {
			delete(r.Header, h.header)
		}
	}
	if v.hide {
		v.hideToken(r)
	}
	if match.consumer != nil {
		ex.AuthPassed(match.consumer, "jwt:"+matchedKey+"/"+sub)
		return
	}
	ex.AuthPassed(nil, "jwt:"+iss+"/"+sub)
}

func (v *verifier) invalid(ex *pipeline.Exchange, reason string) {
	ex.AuthFailed(pipeline.AuthFailure{Status: http.StatusUnauthorized,
		Challenge: challengeInvalid + reason + `"`, Detail: "invalid bearer token: " + reason, Presented: true})
}

// checkHeader applies the header rules every verification path shares:
// crit first (a token naming an extension it needs understood is invalid
// whatever else it says), then typ. The parser has checked alg already.
func (v *verifier) checkHeader(h map[string]any) error {
	if err := checkCrit(h); err != nil {
		return err
	}
	return v.types.check(h)
}

// keyFor returns the keys that may verify t: only keys of the family of
// t's (allowed) alg. A consumer credential selected by the key claim is the
// only key tried for its token.
func (v *verifier) keyFor(ctx context.Context, t *jwtlib.Token, match *consumerKey, matchedKey *string) (any, error) {
	alg := t.Method.Alg()
	if v.consumers != nil {
		if val, ok := t.Claims.(jwtlib.MapClaims)[v.keyClaim].(string); ok {
			if ck, ok := v.consumers[val]; ok {
				if !ck.key.accepts(alg) {
					return nil, errNoKey
				}
				*match, *matchedKey = ck, val
				return ck.key.key, nil
			}
		}
	}
	st := v.static[alg]
	if len(v.remotes) == 0 {
		if st == nil {
			return nil, errNoKey
		}
		return st, nil
	}
	kid, _ := t.Header["kid"].(string)
	var keys []any
	for _, rk := range v.remotes {
		keys = rk.lookup(ctx, kid, alg, keys)
	}
	if len(keys) == 0 {
		if st != nil {
			return st, nil
		}
		for _, rk := range v.remotes {
			if rk.keys.Load() == nil {
				return nil, errKeysUnavailable // no set fetched yet: the token cannot be judged
			}
		}
		return nil, errNoKey
	}
	switch s := st.(type) {
	case nil:
	case jwtlib.VerificationKeySet:
		for _, k := range s.Keys {
			keys = append(keys, k)
		}
	default:
		keys = append(keys, s)
	}
	if len(keys) == 1 {
		return keys[0], nil
	}
	set := jwtlib.VerificationKeySet{Keys: make([]jwtlib.VerificationKey, len(keys))}
	for i, k := range keys {
		set.Keys[i] = k
	}
	return set, nil
}

// describe turns a parse error into a fixed phrase for the client.
func (v *verifier) describe(t *jwtlib.Token, err error) string {
	switch {
	case errors.Is(err, jwtlib.ErrTokenMalformed):
		return "malformed token"
	case t != nil && (t.Method == nil || !v.algs[t.Method.Alg()]):
		return "algorithm not allowed"
	case errors.Is(err, errCritMalformed):
		return "malformed crit header"
	case errors.Is(err, errCritUnsupported):
		return "unsupported critical header parameter"
	case errors.Is(err, errWrongType):
		return "wrong token type"
	case errors.Is(err, errNoKey):
		return "unknown signing key"
	case errors.Is(err, jwtlib.ErrTokenSignatureInvalid):
		return "invalid signature"
	case errors.Is(err, jwtlib.ErrTokenExpired):
		return "token expired"
	case errors.Is(err, jwtlib.ErrTokenNotValidYet):
		return "token not yet valid"
	case errors.Is(err, jwtlib.ErrTokenUsedBeforeIssued):
		return "token issued in the future"
	case errors.Is(err, jwtlib.ErrTokenRequiredClaimMissing):
		return "token has no expiry"
	}
	return "invalid token"
}

// checkClaims checks iss, aud and max_age; "" means they pass.
func (v *verifier) checkClaims(c jwtlib.MapClaims) string {
	if len(v.issuers) > 0 {
		iss, _ := c["iss"].(string)
		if !slices.Contains(v.issuers, iss) {
			return "wrong issuer"
		}
	}
	if len(v.audiences) > 0 {
		aud, err := c.GetAudience()
		if err != nil || !slices.ContainsFunc(aud, func(a string) bool { return slices.Contains(v.audiences, a) }) {
			return "wrong audience"
		}
	}
	if v.maxAge > 0 {
		iat, err := c.GetIssuedAt()
		if err != nil || iat == nil {
			return "token has no issue time"
		}
		if v.now().Sub(iat.Time) > v.maxAge+v.leeway {
			return "token too old"
		}
	}
	return ""
}

// met reports whether claims satisfy the requirement.
func (q *requirement) met(claims jwtlib.MapClaims) bool {
	switch x := claims[q.claim].(type) {
	case nil:
		return false
	case string:
		if q.scope {
			for f := range strings.FieldsSeq(x) {
				if f == q.value {
					return true
				}
			}
			return false
		}
		return x == q.value
	case []any:
		for _, e := range x {
			if s, ok := claimText(e); ok && s == q.value {
				return true
			}
		}
		return false
	default:
		s, ok := claimText(x)
		return ok && s == q.value
	}
}

// claimText renders a scalar claim, or an array of scalars joined by ",".
func claimText(v any) (string, bool) {
	switch x := v.(type) {
	case string:
		return x, true
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64), true
	case bool:
		return strconv.FormatBool(x), true
	case json.Number:
		return string(x), true
	case []any:
		parts := make([]string, 0, len(x))
		for _, e := range x {
			if _, nested := e.([]any); nested {
				continue
			}
			if s, ok := claimText(e); ok {
				parts = append(parts, s)
			}
		}
		return strings.Join(parts, ","), len(parts) > 0
	}
	return "", false
}

// token returns the raw token from the configured source.
func (v *verifier) token(r *http.Request) (string, bool) {
	switch v.src {
	case fromCookie:
		c, err := r.Cookie(v.name)
		if err != nil || c.Value == "" {
			return "", false
		}
		return c.Value, true
	case fromQuery:
		t := r.URL.Query().Get(v.name)
		return t, t != ""
	}
	vals := r.Header[v.name]
	if len(vals) == 0 {
		return "", false
	}
	h := strings.TrimSpace(vals[0])
	if len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
		h = strings.TrimSpace(h[7:])
	} else if v.bearer {
		return "", false // another scheme: another plugin's credential
	}
	return h, h != ""
}

// hideToken removes the token from the request.
func (v *verifier) hideToken(r *http.Request) {
	switch v.src {
	case fromHeader:
		delete(r.Header, v.name)
	case fromCookie:
		var kept []string
		for _, c := range r.Cookies() {
			if c.Name != v.name {
				kept = append(kept, c.Name+"="+c.Value)
			}
		}
		if len(kept) == 0 {
			r.Header.Del("Cookie")
		} else {
			r.Header.Set("Cookie", strings.Join(kept, "; "))
		}
	case fromQuery:
		q := r.URL.Query()
		q.Del(v.name)
		r.URL.RawQuery = q.Encode()
	}
}

// scopeToken reports whether s may be quoted in a scope="..." parameter
// (RFC 6750 scope-token characters and spaces).
func scopeToken(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != ' ' && (c < 0x21 || c > 0x7e || c == '"' || c == '\\') {
			return false
		}
	}
	return s != ""
}
