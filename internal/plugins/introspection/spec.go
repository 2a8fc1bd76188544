package introspection

import (
	"errors"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/portico-gateway/portico/internal/config"
	"github.com/portico-gateway/portico/internal/pipeline"
)

// Defaults and bounds.
const (
	defaultTimeout    = 2 * time.Second
	defaultTTL        = 60 * time.Second
	defaultNegTTL     = 10 * time.Second
	defaultMaxEntries = 100_000
	maxTokenBytes     = 8 << 10 // larger tokens are refused without a call
	maxResponseBytes  = 1 << 20 // larger introspection responses are an error
)

// Spec configures oauth2_introspection.
type Spec struct {
	// Endpoint is the RFC 7662 introspection URL: https, or http only for
	// 127.0.0.1, ::1 or localhost.
	Endpoint string `yaml:"endpoint"`
	// ClientID and ClientSecret authenticate the gateway at the endpoint
	// (client_secret_basic).
	ClientID     string        `yaml:"client_id"`
	ClientSecret config.Secret `yaml:"client_secret"`
	// Timeout bounds one introspection call. Default 2s.
	Timeout config.Duration `yaml:"timeout"`
	// TTL bounds how long an active result is cached (never past the
	// token's exp). Default 60s.
	TTL config.Duration `yaml:"ttl"`
	// NegativeTTL is how long an inactive result is cached; 0 disables
	// negative caching. Default 10s.
	NegativeTTL config.Duration `yaml:"negative_ttl"`
	// MaxCacheEntries bounds the cache shared by every route that uses the
	// same endpoint and client_id. Default 100000.
	MaxCacheEntries int `yaml:"max_cache_entries"`
	// RequiredScopes must all appear in the response's scope.
	RequiredScopes []string `yaml:"required_scopes"`
	// Issuer and Audience, when set, must match the response's iss and aud.
	Issuer   string `yaml:"issuer"`
	Audience string `yaml:"audience"`
	// Cookie and Query name a cookie and a query parameter that may carry
	// the token when the Authorization header carries no Bearer token.
	Cookie string `yaml:"cookie"`
	Query  string `yaml:"query"`
	// ConsumerClaim names a response field (for example "client_id") whose
	// value is the name of a configured consumer; that consumer becomes the
	// caller. A token naming no known consumer is refused.
	ConsumerClaim string `yaml:"consumer_claim"`
	// HideCredentials removes the token from the request before it goes
	// upstream.
	HideCredentials bool `yaml:"hide_credentials"`
}

var _ pipeline.Spec = (*Spec)(nil)

func newSpec() pipeline.Spec {
	return &Spec{
		Timeout:         config.Duration(defaultTimeout),
		TTL:             config.Duration(defaultTTL),
		NegativeTTL:     config.Duration(defaultNegTTL),
		MaxCacheEntries: defaultMaxEntries,
	}
}

// Validate checks every field and returns all problems at once.
func (s *Spec) Validate(p config.Path) error {
	var errs []error
	if msg := checkEndpoint(s.Endpoint); msg != "" {
		errs = append(errs, p.Key("endpoint").Errorf("%s", msg))
	}
	if s.ClientID == "" {
		errs = append(errs, p.Key("client_id").Errorf("is required"))
	}
	if s.ClientSecret == "" {
		errs = append(errs, p.Key("client_secret").Errorf("is required"))
	}
	if s.Timeout <= 0 {
		errs = append(errs, p.Key("timeout").Errorf("must be positive, like 2s"))
	}
	if s.TTL <= 0 {
		errs = append(errs, p.Key("ttl").Errorf("must be positive, like 60s"))
	}
	if s.MaxCacheEntries < 1 {
		errs = append(errs, p.Key("max_cache_entries").Errorf("must be at least 1"))
	}
	for i, sc := range s.RequiredScopes {
		if sc == "" || strings.ContainsAny(sc, " \t\r\n\"\\") {
			errs = append(errs, p.Key("required_scopes").At(i).Errorf("must be one scope without spaces or quotes"))
		}
	}
	if s.Cookie != "" && !tokenName(s.Cookie) {
		errs = append(errs, p.Key("cookie").Errorf("must be a valid cookie name"))
	}
	if s.Query != "" && !tokenName(s.Query) {
		errs = append(errs, p.Key("query").Errorf("must be a query parameter name of letters, digits, '-', '_' or '.'"))
	}
	return errors.Join(errs...)
}

// checkEndpoint returns what is wrong with the endpoint, or "".
func checkEndpoint(s string) string {
	if s == "" {
		return "is required"
	}
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || u.User != nil || u.Fragment != "" {
		return "must be an absolute URL like https://idp.example.com/oauth2/introspect, without user info or fragment"
	}
	switch u.Scheme {
	case "https":
		return ""
	case "http":
		h := u.Hostname()
		if h == "localhost" {
			return ""
		}
		if ip := net.ParseIP(h); ip != nil && ip.IsLoopback() {
			return ""
		}
		return "must be https (http is allowed only for 127.0.0.1, ::1 or localhost)"
	default:
		return "must be https (http is allowed only for 127.0.0.1, ::1 or localhost)"
	}
}

// tokenName reports whether s is a plain name: letters, digits, '-', '_', '.'.
func tokenName(s string) bool {
	if len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case c == '-' || c == '_' || c == '.':
		default:
			return false
		}
	}
	return s != ""
}
