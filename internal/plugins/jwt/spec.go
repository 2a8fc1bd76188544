package jwt

import (
	"errors"
	"net"
	"net/url"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/portico-gateway/portico/internal/config"
	"github.com/portico-gateway/portico/internal/pipeline"
)

// MaxTokenSize is the largest token the plugin parses; a bigger one is
// refused as malformed without being decoded.
const MaxTokenSize = 8 << 10

// Spec configures the jwt pipeline.
type Spec struct {
	// Algorithms is the allow-list of signing algorithms: HS256, HS384,
	// HS512, RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, ES512,
	// EdDSA. Required; "none" is refused.
	Algorithms []string `yaml:"algorithms"`

	// Secret is an HMAC key (HS* algorithms only), at least 32 bytes.
	Secret config.Secret `yaml:"secret"`
	// PublicKey is a PEM public key (PKIX "PUBLIC KEY", PKCS#1 "RSA PUBLIC
	// KEY" or a certificate) for RS*, PS*, ES* or EdDSA.
	PublicKey string `yaml:"public_key"`
	// ConsumerCredentials verifies each token with the JWT credential of the
	// consumer whose credential key equals the token's KeyClaim; the
	// request is then attributed to that consumer.
	ConsumerCredentials bool `yaml:"consumer_credentials"`
	// JWKSURL is a JSON Web Key Set URL: https, or http on 127.0.0.1,
	// ::1 or localhost only.
	JWKSURL string `yaml:"jwks_url"`
	// IssuerDiscovery is an OpenID Connect issuer URL: its
	// /.well-known/openid-configuration names the jwks_uri, and tokens must
	// carry iss equal to it (unless Issuer says otherwise).
	IssuerDiscovery string `yaml:"issuer_discovery"`

	// KeyClaim names the claim that selects a consumer credential. Default "iss".
	KeyClaim string `yaml:"key_claim"`
	// Issuer is the required iss: one string or a list of accepted values.
	Issuer yaml.Node `yaml:"issuer"`
	// Audience is the accepted aud: one string or a list; a token passes
	// when its aud holds any of them.
	Audience yaml.Node `yaml:"audience"`
	// RequiredClaims maps a claim to a required value. For array claims and
	// for the space-separated "scope" and "scp" claims the claim must
	// contain the value; otherwise it must equal it. A miss answers 403.
	RequiredClaims map[string]string `yaml:"required_claims"`
	// Leeway is the clock skew allowed for exp, nbf and iat. Default 30s, at most 5m.
	Leeway config.Duration `yaml:"leeway"`
	// MaxAge, when set, refuses tokens whose iat is older than this.
	MaxAge config.Duration `yaml:"max_age"`
	// RequireExp refuses tokens without exp. Default true.
	RequireExp bool `yaml:"require_exp"`
	// Types lists the accepted values of the token header's typ (explicit
	// typing, RFC 8725 §3.11), like [at+jwt, JWT]: each a media type,
	// compared case-insensitively with the "application/" prefix optional
	// (RFC 7515 §4.1.9), so at+jwt also accepts application/at+jwt. A
	// token with another typ, or with none, is refused. Default (unset):
	// tokens without typ, or with typ JWT or at+jwt; other types, such as
	// secevent+jwt or logout+jwt, are refused. An empty list is an error;
	// there is no wildcard.
	Types []string `yaml:"types"`

	// Header carries the token. Default "Authorization", where the value is
	// "Bearer <token>" (scheme case-insensitive); another header may hold
	// the token with or without the Bearer scheme.
	Header string `yaml:"header"`
	// Cookie, when set, reads the token from this cookie instead.
	Cookie string `yaml:"cookie"`
	// Query, when set, reads the token from this query parameter instead.
	Query string `yaml:"query"`

	// ClaimsToHeaders maps a claim to a request header sent upstream.
	// String, number and boolean claims are copied; arrays are joined with
	// ","; values holding CR or LF are dropped.
	ClaimsToHeaders map[string]string `yaml:"claims_to_headers"`
	// HideCredentials removes the token from the request before it is
	// forwarded.
	HideCredentials bool `yaml:"hide_credentials"`

	// JWKSRefresh is how often the key set is fetched again. Default 1h,
	// at least 1m. A Cache-Control max-age on the key set replaces it,
	// clamped to [5m, 24h].
	JWKSRefresh config.Duration `yaml:"jwks_refresh"`
	// JWKSMinRefetch is the least time between two fetches caused by an
	// unknown kid, so forged kids cannot cause a fetch storm. Default 1m.
	JWKSMinRefetch config.Duration `yaml:"jwks_min_refetch"`
	// JWKSTimeout bounds one fetch. Default 5s.
	JWKSTimeout config.Duration `yaml:"jwks_timeout"`
	// ReadyTimeout is how long the gateway's readiness waits for the first
	// key set. Default 10s.
	ReadyTimeout config.Duration `yaml:"ready_timeout"`

	// issuers and audiences are Issuer and Audience after Validate.
	issuers, audiences []string
}

var _ pipeline.Spec = (*Spec)(nil)

// defaultSpec returns the settings with their defaults.
func defaultSpec() *Spec {
	return &Spec{
		KeyClaim:       "iss",
		Leeway:         config.Duration(30 * time.Second),
		RequireExp:     true,
		Header:         "Authorization",
		JWKSRefresh:    config.Duration(time.Hour),
		JWKSMinRefetch: config.Duration(time.Minute),
		JWKSTimeout:    config.Duration(5 * time.Second),
		ReadyTimeout:   config.Duration(10 * time.Second),
	}
}

// algFamily maps each supported algorithm to its key family.
var algFamily = map[string]string{
	"HS256": "HS", "HS384": "HS", "HS512": "HS",
	"RS256": "RSA", "RS384": "RSA", "RS512": "RSA",
	"PS256": "RSA", "PS384": "RSA", "PS512": "RSA",
	"ES256": "ES256", "ES384": "ES384", "ES512": "ES512",
	"EdDSA": "EdDSA",
}

var algNames = []string{"HS256", "HS384", "HS512", "RS256", "RS384", "RS512",
	"PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}

// Validate checks the settings and returns every problem at once.
func (s *Spec) Validate(p config.Path) error {
	var errs []error
	add := func(err error) { errs = append(errs, err) }
	if len(s.Algorithms) == 0 {
		add(p.Key("algorithms").Errorf("is required: list the accepted algorithms, like [RS256]"))
	}
	hasHS, hasAsym := false, false
	for i, a := range s.Algorithms {
		fam, ok := algFamily[a]
		switch {
		case strings.EqualFold(a, "none"):
			add(p.Key("algorithms").At(i).Errorf("\"none\" is never accepted"))
		case !ok:
			add(p.Key("algorithms").At(i).Errorf("unknown algorithm %q; use one of %s", a, strings.Join(algNames, ", ")))
		case fam == "HS":
			hasHS = true
		default:
			hasAsym = true
		}
	}
	if s.Secret == "" && s.PublicKey == "" && !s.ConsumerCredentials && s.JWKSURL == "" && s.IssuerDiscovery == "" {
		add(p.Errorf("needs a key source: secret, public_key, consumer_credentials, jwks_url or issuer_discovery"))
	}
	if s.Secret != "" {
		if len(s.Secret.Value()) < 32 {
			add(p.Key("secret").Errorf("must be at least 32 bytes"))
		}
		if !hasHS {
			add(p.Key("secret").Errorf("needs an HS256, HS384 or HS512 algorithm in algorithms"))
		}
	}
	if s.PublicKey != "" {
		k, err := parsePublicPEM([]byte(s.PublicKey))
		if err != nil {
			add(p.Key("public_key").Errorf("must be a PEM RSA (2048 bits or more), ECDSA P-256/384/521 or Ed25519 public key"))
		} else if !slices.ContainsFunc(s.Algorithms, k.accepts) {
			add(p.Key("public_key").Errorf("is a %s key, which none of the algorithms uses", k.family))
		}
	}
	if (s.JWKSURL != "" || s.IssuerDiscovery != "") && !hasAsym {
		add(p.Errorf("jwks_url and issuer_discovery need an RS*, PS*, ES* or EdDSA algorithm"))
	}
	if s.JWKSURL != "" && !fetchableURL(s.JWKSURL) {
		add(p.Key("jwks_url").Errorf("must be an https URL (http only on 127.0.0.1, ::1 or localhost)"))
	}
	if s.IssuerDiscovery != "" && !fetchableURL(s.IssuerDiscovery) {
		add(p.Key("issuer_discovery").Errorf("must be an https URL (http only on 127.0.0.1, ::1 or localhost)"))
	}
	if s.KeyClaim == "" {
		add(p.Key("key_claim").Errorf("must not be empty"))
	}
	var err error
	if s.issuers, err = stringOrList(&s.Issuer, p.Key("issuer")); err != nil {
		add(err)
	}
	if s.audiences, err = stringOrList(&s.Audience, p.Key("audience")); err != nil {
		add(err)
	}
	if s.Types != nil {
		validateTypes(s.Types, p.Key("types"), add)
	}
	if s.Leeway.D() > 5*time.Minute {
		add(p.Key("leeway").Errorf("must be at most 5m"))
	}
	if s.JWKSRefresh.D() < time.Minute {
		add(p.Key("jwks_refresh").Errorf("must be at least 1m"))
	}
	if s.JWKSMinRefetch.D() <= 0 {
		add(p.Key("jwks_min_refetch").Errorf("must be positive"))
	}
	if s.JWKSTimeout.D() <= 0 || s.JWKSTimeout.D() > time.Minute {
		add(p.Key("jwks_timeout").Errorf("must be between 1ms and 1m"))
	}
	if s.ReadyTimeout.D() <= 0 {
		add(p.Key("ready_timeout").Errorf("must be positive"))
	}
	sources := 0
	for _, v := range []string{s.Cookie, s.Query} {
		if v != "" {
			sources++
		}
	}
	if sources > 1 {
		add(p.Errorf("set at most one of cookie and query"))
	}
	if sources == 0 && !config.IsHeaderName(s.Header) {
		add(p.Key("header").Errorf("must be a valid header name, like Authorization"))
	}
	for claim, h := range s.ClaimsToHeaders {
		if !config.IsHeaderName(h) {
			add(p.Key("claims_to_headers").Key(claim).Errorf("must be a valid header name, like X-User-Email"))
		}
	}
	return errors.Join(errs...)
}

// validateTypes checks the types setting: a non-empty list of media types,
// none listed twice (in any spelling).
func validateTypes(types []string, p config.Path, add func(error)) {
	if len(types) == 0 {
		add(p.Errorf("must list at least one type, like [at+jwt]; leave types out for the default"))
		return
	}
	first := make(map[string]int, len(types))
	for i, t := range types {
		k, problem := typeKey(t)
		if problem != "" {
			add(p.At(i).Errorf("%s", problem))
			continue
		}
		if j, dup := first[k]; dup {
			add(p.At(i).Errorf("repeats types[%d] (case and the application/ prefix do not matter)", j))
			continue
		}
		first[k] = i
	}
}

// stringOrList decodes a node holding one string or a list of strings.
func stringOrList(n *yaml.Node, p config.Path) ([]string, error) {
	switch n.Kind {
	case 0:
		return nil, nil
	case yaml.ScalarNode:
		if n.ShortTag() == "!!null" {
			return nil, nil
		}
		if n.Value == "" {
			return nil, p.Errorf("must not be empty")
		}
		return []string{n.Value}, nil
	case yaml.SequenceNode:
		out := make([]string, 0, len(n.Content))
		for i, c := range n.Content {
			if c.Kind != yaml.ScalarNode || c.Value == "" {
				return nil, p.At(i).Errorf("must be a non-empty string")
			}
			out = append(out, c.Value)
		}
		return out, nil
	}
	return nil, p.Errorf("must be a string or a list of strings")
}

// fetchableURL reports whether u may be fetched for keys: https, or http
// on the loopback interface.
func fetchableURL(u string) bool {
	pu, err := url.Parse(u)
	if err != nil || pu.Host == "" || pu.User != nil {
		return false
	}
	switch pu.Scheme {
	case "https":
		return true
	case "http":
		h := pu.Hostname()
		if h == "localhost" {
			return true
		}
		ip := net.ParseIP(h)
		return ip != nil && ip.IsLoopback()
	}
	return false
}
