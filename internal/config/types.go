// Package config holds Portico's configuration schema and turns a YAML file
// into a validated *Config.
//
// The lifecycle is parse → validate → (compile, in package gateway):
//
//   - Load reads the file into a yaml.Node tree and decodes it strictly into
//     the typed structs below: unknown keys, wrong types and unset ${ENV}
//     variables are errors that carry the file, line, column and key path.
//     Environment variables are expanded in scalar values after parsing,
//     never in the raw text.
//   - Validate is pure (no I/O) and collects every error at once.
//
// Plugin settings stay as yaml.Node (PluginSet) until the plugin registry
// decodes them into each plugin's own typed Spec with DecodeNode, so the
// same strict rules and positions apply to them.
package config

import (
	"time"

	"go.yaml.in/yaml/v3"
)

// Config is the whole gateway configuration: one YAML file.
type Config struct {
	// Listen is the address of the public listener, in the one-listener
	// short form (listen, tls, h2c). Default ":8080".
	Listen string `yaml:"listen"`
	// TLS, when set, makes the short form's listener serve HTTPS (HTTP/1.1
	// and HTTP/2 by ALPN). Default: plain HTTP.
	TLS *TLS `yaml:"tls"`
	// H2C enables cleartext HTTP/2 (prior knowledge) on the short form's
	// plain listener. Default false.
	H2C bool `yaml:"h2c"`
	// Listeners are the public listeners, each with its own address and
	// protocols. Without it, listen, tls and h2c declare one listener
	// named "default"; the two forms cannot be combined. Read them with
	// PublicListeners, which gives either form as a list.
	Listeners []Listener `yaml:"listeners"`
	// Admin configures the admin listener (metrics, health, reload).
	Admin Admin `yaml:"admin"`
	// Server holds the public listener's limits and timeouts.
	Server Server `yaml:"server"`
	// TrustedProxies lists the CIDRs (or single addresses) whose
	// X-Forwarded-For, X-Forwarded-Proto and X-Forwarded-Host are believed.
	// Default: none, so client-sent forwarding headers are replaced.
	TrustedProxies []string `yaml:"trusted_proxies"`
	// Services are the upstreams that routes send traffic to.
	Services []Service `yaml:"services"`
	// Routes map requests to services. See Match for priorities.
	Routes []Route `yaml:"routes"`
	// Store configures where shared state (rate-limit counters) lives.
	// Without it, state is kept in this process's memory.
	Store *Store `yaml:"store"`
	// Tiers name rate-limit levels that consumers refer to with their tier.
	Tiers map[string]Tier `yaml:"tiers"`
	// Consumers are the known callers (applications or users) and their
	// credentials. Authentication plugins identify the consumer of a
	// request; its id, name and groups are forwarded upstream.
	Consumers []Consumer `yaml:"consumers"`
	// Plugins configured here apply to every route (and to requests that
	// match no route, where that makes sense: request_id, access_log).
	Plugins PluginSet `yaml:"plugins"`

	// File is the path the config was loaded from ("" for embedded).
	File string `yaml:"-"`
	// pos maps key paths to their position in File.
	pos map[string]Pos
	// lookupEnv resolves ${VAR} in scalar values; nil means os.LookupEnv.
	// DecodeNode uses it for plugin settings.
	lookupEnv func(string) (string, bool)
	// envPaths holds the key paths whose values came from ${VAR}
	// expansion; their values are never echoed in error messages.
	envPaths map[string]bool
	// nodes counts the YAML values decoded so far, across Parse and every
	// DecodeNode, against MaxNodes.
	nodes int
}

// Pos is a line and column in the config file, both counted from 1.
type Pos struct{ Line, Col int }

// TLS configures TLS termination on the public listener.
type TLS struct {
	// CertFile is a PEM certificate chain: the short form of a
	// Certificates list of one.
	CertFile string `yaml:"cert_file"`
	// KeyFile is the PEM private key for CertFile.
	KeyFile string `yaml:"key_file"`
	// Certificates are the listener's certificates, chosen for each
	// connection by the name the client asks for (SNI): exact names, then
	// one-label wildcards, then the default (the first, or the one marked
	// default). At least one certificate (here or CertFile) is required.
	Certificates []CertificateFiles `yaml:"certificates"`
	// MinVersion is "1.2" (default) or "1.3". Older versions are refused.
	MinVersion string `yaml:"min_version"`
	// ClientAuth, when set, asks clients for a certificate and verifies
	// it (downstream mutual TLS). Default: no certificate is asked for.
	ClientAuth *ClientAuth `yaml:"client_auth"`
	// HSTS is the Strict-Transport-Security header added to every answer
	// on the listener. Default: max_age one year, without subdomains or
	// preload; max_age 0 turns it off.
	HSTS *HSTS `yaml:"hsts"`
	// ACME obtains and renews certificates for the names it lists from an
	// ACME certificate authority (Let's Encrypt by default). With ACME,
	// certificate files are optional.
	ACME *ACME `yaml:"acme"`
}

// CertificateFiles is one certificate of a TLS listener.
type CertificateFiles struct {
	// CertFile is a PEM certificate chain, leaf first. Required.
	CertFile string `yaml:"cert_file"`
	// KeyFile is the PEM private key of the leaf. Required.
	KeyFile string `yaml:"key_file"`
	// Default makes this the certificate for clients that ask for no name
	// or a name no certificate has. Default: the first certificate.
	Default bool `yaml:"default"`
}

// HSTS configures the Strict-Transport-Security header (RFC 6797).
type HSTS struct {
	// MaxAge is how long browsers remember to use HTTPS only. Default
	// 8760h (a year); 0 turns the header off.
	MaxAge Duration `yaml:"max_age"`
	// IncludeSubdomains extends it to every subdomain. Default false.
	IncludeSubdomains bool `yaml:"include_subdomains"`
	// Preload asks to be listed in the browsers' preload lists; it needs
	// include_subdomains and a max_age of at least a year. Default false.
	Preload bool `yaml:"preload"`
}

// DefaultHSTSMaxAge is the Strict-Transport-Security max-age of TLS
// listeners.
const DefaultHSTSMaxAge = Duration(365 * 24 * time.Hour)

// Admin configures the admin listener and who may call it. It serves
// /metrics, /health, /ready, /routes, /upstreams, /version, POST /reload
// and the plugins' endpoints (POST /cache/purge).
//
// Without Tokens the admin API is open to anyone who can reach it, which
// is allowed only on a loopback address (127.0.0.0/8, ::1, localhost) or
// with Insecure. With Tokens, every endpoint but PublicPaths needs
// Authorization: Bearer <token>: the read role for GET endpoints, the write
// role for POST /reload and the plugins' write endpoints. Everything but
// Listen applies on reload.
type Admin struct {
	// Listen is the admin address. Default "127.0.0.1:9901"; "off" disables
	// it. Needs a restart to change.
	Listen string `yaml:"listen"`
	// Tokens are the bearer tokens accepted, each with a role. Default none:
	// the admin API is open (loopback only, unless Insecure).
	Tokens []AdminToken `yaml:"tokens"`
	// PublicPaths are the admin paths answered without a token. Only GET
	// endpoints may be listed. Default ["/health", "/ready"]; an empty list
	// opens none.
	PublicPaths []string `yaml:"public_paths"`
	// Insecure allows an admin API without tokens on a non-loopback
	// address. Default false: such a config is refused.
	Insecure bool `yaml:"insecure"`
	// AllowedOrigins are the browser origins ("https://ops.example.com")
	// whose requests may call write endpoints. A write request that carries
	// an Origin header not listed is refused (CSRF). Default none.
	AllowedOrigins []string `yaml:"allowed_origins"`
}

// AdminToken is one bearer token of the admin API.
type AdminToken struct {
	// Name identifies the token in logs. Required, unique.
	Name string `yaml:"name"`
	// Token is "sha256:<64 hex digits>", the SHA-256 of the token (the
	// recommended form: the config then never holds the token), or the
	// token itself, at least 32 characters from the RFC 6750 set (letters,
	// digits, "-", ".", "_", "~", "+", "/", then "=" padding). Required,
	// unique.
	Token Secret `yaml:"token"`
	// Role is "read" (GET endpoints) or "write" (every endpoint). Required.
	Role string `yaml:"role"`
}

// Admin token roles.
const (
	AdminRoleRead  = "read"
	AdminRoleWrite = "write"
)

// Server holds limits that protect the public listener. Every field has a
// safe default.
type Server struct {
	// ReadHeaderTimeout bounds the time to read request headers (slowloris).
	// Default 10s.
	ReadHeaderTimeout Duration `yaml:"read_header_timeout"`
	// IdleTimeout closes keep-alive client connections idle this long.
	// Default 75s.
	IdleTimeout Duration `yaml:"idle_timeout"`
	// ReadBodyTimeout is the longest wait for the next bytes of a request
	// body; a body that stalls longer ends with 408. Default 30s
	// (NGINX's client_body_timeout is 60s). Reloadable.
	ReadBodyTimeout Duration `yaml:"read_body_timeout"`
	// MinBodyRate is the lowest average rate, in bytes per second, at
	// which a request body may arrive once it has been arriving for
	// ReadBodyTimeout; a slower body ends with 408. Default 500 (as
	// Apache's mod_reqtimeout); 0 turns the check off. Reloadable.
	MinBodyRate ByteSize `yaml:"min_body_rate"`
	// WriteTimeout is the longest wait for a client to take more response
	// bytes; the connection closes after it. Default 60s (NGINX's
	// send_timeout).
	WriteTimeout Duration `yaml:"write_timeout"`
	// MaxHeaderBytes bounds the request line plus headers; larger requests
	// get 431. Default 32KiB.
	MaxHeaderBytes ByteSize `yaml:"max_header_bytes"`
	// MaxConnections bounds concurrent client connections; further
	// connections wait in the kernel backlog. Default 10000.
	MaxConnections int `yaml:"max_connections"`
	// DrainTimeout is how long in-flight requests may run after SIGTERM
	// before connections are closed. Default 30s.
	DrainTimeout Duration `yaml:"drain_timeout"`
	// HealthPath answers liveness probes from the gateway itself. Default
	// "/health"; "off" disables it on the public listener.
	HealthPath string `yaml:"health_path"`
	// ReadyPath answers readiness probes: 200 when serving, 503 while
	// starting or draining. Default "/ready"; "off" disables it.
	ReadyPath string `yaml:"ready_path"`
	// ProxyHeaders are header names, besides the built-in list
	// (edge.ProxyHeaders: X-Forwarded-Host, X-Original-URL,
	// X-HTTP-Method-Override, True-Client-IP, ...), that only a trusted
	// proxy may send: they are removed from requests of other peers before
	// any plugin runs. Reloadable.
	ProxyHeaders []string `yaml:"proxy_headers"`
	// UnderscoresInHeaders says what happens to request header names with
	// an underscore: "protected" (default) removes those that name a
	// protected header with "_" for "-" (X_Consumer_ID), which CGI-style
	// backends read as the real one; "drop" removes every such header (as
	// NGINX's default underscores_in_headers off); "allow" keeps them all.
	// Reloadable.
	UnderscoresInHeaders string `yaml:"underscores_in_headers"`
}

// The values of server.underscores_in_headers.
const (
	UnderscoresProtected = "protected"
	UnderscoresDrop      = "drop"
	UnderscoresAllow     = "allow"
)

// Service is an upstream: one or more targets that serve the same API.
type Service struct {
	// Name identifies the service; routes refer to it. Required, unique.
	Name string `yaml:"name"`
	// URL is shorthand for a single target: "http://127.0.0.1:3001".
	// Exactly one of URL and Targets is required.
	URL string `yaml:"url"`
	// Targets are the service's replicas, used in weighted round robin.
	Targets []Target `yaml:"targets"`
	// PreserveHost sends the client's Host header upstream instead of the
	// target's host. Default false (as Kong's preserve_host).
	PreserveHost bool `yaml:"preserve_host"`
	// HostHeader, when set, is sent as the Host header upstream. It cannot be
	// combined with PreserveHost.
	HostHeader string `yaml:"host_header"`
	// Timeouts bound each upstream request.
	Timeouts Timeouts `yaml:"timeouts"`
	// MaxIdleConns bounds idle keep-alive connections kept per target.
	// Default 256.
	MaxIdleConns int `yaml:"max_idle_conns"`
	// IdleConnTimeout closes idle upstream connections after this long.
	// Default 60s.
	IdleConnTimeout Duration `yaml:"idle_conn_timeout"`
	// LoadBalancer chooses a target per request. Default round_robin.
	LoadBalancer LoadBalancer `yaml:"load_balancer"`
	// HealthCheck says how unhealthy targets are found. Default: none.
	HealthCheck HealthCheck `yaml:"health_check"`
	// CircuitBreaker cuts the service off while it fails. Default: none.
	CircuitBreaker *CircuitBreaker `yaml:"circuit_breaker"`
	// Retries retries failed requests. Default: none (one attempt).
	Retries *Retries `yaml:"retries"`
	// TLS configures connections to https targets.
	TLS *UpstreamTLS `yaml:"tls"`
	// Plugins apply to every route of this service, overriding global
	// plugins of the same name.
	Plugins PluginSet `yaml:"plugins"`
}

// Target is one replica of a service.
type Target struct {
	// URL is "http://host:port"; no path, query or credentials. Required.
	URL string `yaml:"url"`
	// Weight is the target's share of traffic. Default 1, range 1..1000.
	Weight int `yaml:"weight"`
}

// Timeouts bound an upstream request. Zero means the default.
type Timeouts struct {
	// Connect bounds establishing a TCP connection. Default 5s. Failure → 502.
	Connect Duration `yaml:"connect"`
	// ResponseHeader bounds the time from sending the request to receiving
	// the response headers. Default 60s. Expiry → 504.
	ResponseHeader Duration `yaml:"response_header"`
	// Total bounds the whole exchange including streaming the body.
	// Default: no bound beyond ResponseHeader (long streams stay open).
	Total Duration `yaml:"total"`
}

// Route sends matching requests to a service.
type Route struct {
	// Name identifies the route in logs and metrics. Required, unique.
	Name string `yaml:"name"`
	// Match says which requests the route takes.
	Match Match `yaml:"match"`
	// Service is the name of the service that serves the route. Required.
	Service string `yaml:"service"`
	// StripPrefix removes the matched path prefix before forwarding:
	// "/api/orders" matching "/api/orders/7" forwards "/7". Only with prefix
	// paths. Default false.
	StripPrefix bool `yaml:"strip_prefix"`
	// PathRewrite rewrites the upstream path with a regular expression.
	PathRewrite *PathRewrite `yaml:"path_rewrite"`
	// Retries, when set, replaces the service's retries for this route.
	Retries *Retries `yaml:"retries"`
	// Fallback answers instead of a gateway error when the service cannot.
	Fallback *Fallback `yaml:"fallback"`
	// Listeners names the public listeners the route takes requests from.
	// Default: every listener.
	Listeners []string `yaml:"listeners"`
	// Plugins apply to this route only, overriding service and global plugins
	// of the same name.
	Plugins PluginSet `yaml:"plugins"`
}

// Match lists the conditions a request must meet; every listed condition
// must hold. Paths are "/prefix" (matches on segment boundaries: /api/orders
// matches /api/orders and /api/orders/7, not /api/ordersX), "=/exact", or
// "~regex" (RE2, anchored at the start, named captures usable in
// PathRewrite). Priority: exact > longest prefix > regex in config order;
// among routes with the same path, those with more conditions (methods,
// headers, query) are tried first, then config order.
type Match struct {
	// Hosts are exact names ("api.example.com") or one-label wildcards
	// ("*.example.com"). Default: any host.
	Hosts []string `yaml:"hosts"`
	// Methods are HTTP methods in upper case. Default: any method.
	Methods []string `yaml:"methods"`
	// Paths as described on Match. Required (at least one).
	Paths []string `yaml:"paths"`
	// Headers must be present with exactly these values.
	Headers map[string]string `yaml:"headers"`
	// Query parameters must be present with exactly these values.
	Query map[string]string `yaml:"query"`
}

// PathRewrite replaces the upstream path: Pattern (RE2) is matched against
// the routed path and Replacement may use $1 or $${name} captures (in YAML
// values ${name} expands an environment variable, so a named capture is
// written $${name}).
type PathRewrite struct {
	// Pattern is an RE2 regular expression matched against the routed
	// path. Required.
	Pattern string `yaml:"pattern"`
	// Replacement is the new path; it starts with "/" or with a capture
	// reference ("$1", "$${name}"). Required.
	Replacement string `yaml:"replacement"`
}

// Store configures shared state.
type Store struct {
	// Redis makes rate limits exact across every gateway instance that
	// shares it.
	Redis *Redis `yaml:"redis"`
}

// Redis configures the Redis (or Valkey, or Redis Cluster) store.
type Redis struct {
	// URL is redis://[user:password@]host:port[/db] or rediss:// for TLS.
	// Exactly one of URL and Addrs is required.
	URL Secret `yaml:"url"`
	// Addrs are Redis Cluster seed nodes ("host:port").
	Addrs []string `yaml:"addrs"`
	// Password for Addrs (URL carries its own).
	Password Secret `yaml:"password"`
	// Timeout bounds each Redis call. Default 50ms.
	Timeout Duration `yaml:"timeout"`
	// OnError is fail_open (default: allow, limited by a local limiter that
	// takes a per-instance share of the limit) or fail_closed (503).
	OnError string `yaml:"on_error"`
	// Instances is the number of gateway instances sharing the limits, used
	// for the local share while Redis is unreachable. Default 1.
	Instances int `yaml:"instances"`
	// KeyPrefix starts every key Portico writes. Default "portico:".
	KeyPrefix string `yaml:"key_prefix"`
	// PoolSize bounds connections per node. Default 10 per CPU.
	PoolSize int `yaml:"pool_size"`
}

// Tier is a named service level.
type Tier struct {
	// RateLimit is the tier's limits; empty with unlimited: true means no
	// limit.
	RateLimit TierLimits `yaml:"rate_limit"`
}

// TierLimits are the limits of one tier.
type TierLimits struct {
	// Limits apply together (for example 10/s and 1000/min).
	Limits []RateLimit `yaml:"limits"`
	// Unlimited exempts the tier from rate limits.
	Unlimited bool `yaml:"unlimited"`
}

// RateLimit is one limit: Limit requests per Window, with Burst extra
// requests allowed at once (gcra only).
type RateLimit struct {
	// Name distinguishes limits of one plugin in headers, metrics and
	// counter keys. Default: the window, e.g. "1m".
	Name string `yaml:"name"`
	// Limit is the number of requests per window. Required, >= 1.
	Limit int64 `yaml:"limit"`
	// Window is the period. Required, 1s..24h.
	Window Duration `yaml:"window"`
	// Burst is how many requests above the smooth rate may arrive at once
	// (gcra). Default: Limit (a full window may be spent at once).
	Burst int64 `yaml:"burst"`
	// Algorithm is gcra (default), sliding_window or fixed_window.
	Algorithm string `yaml:"algorithm"`
}

// Consumer is one known caller.
type Consumer struct {
	// Name identifies the consumer (X-Consumer-Name upstream). Required,
	// unique, same characters as route names.
	Name string `yaml:"name"`
	// ID is forwarded as X-Consumer-ID. Default: the name. Unique.
	ID string `yaml:"id"`
	// Groups are labels for the acl plugin (X-Consumer-Groups upstream).
	Groups []string `yaml:"groups"`
	// Tier names the consumer's rate-limit tier (a key of tiers).
	Tier string `yaml:"tier"`
	// Credentials are the ways this consumer can authenticate.
	Credentials Credentials `yaml:"credentials"`
	// Plugins apply to this consumer's requests on every route, overriding
	// route, service and global plugins of the same name. Only rate_limit
	// may be set on a consumer.
	Plugins PluginSet `yaml:"plugins"`
}

// Credentials of one consumer.
type Credentials struct {
	// APIKeys for key_auth: the key itself, or "sha256:<64 hex digits>" (the
	// SHA-256 of the key) so the config need not hold the key. Unique across
	// all consumers.
	APIKeys []Secret `yaml:"api_keys"`
	// JWT credentials for the jwt plugin, selected by a claim's value.
	JWT []JWTCredential `yaml:"jwt"`
	// BasicAuth users for basic_auth, with bcrypt password hashes only.
	BasicAuth []BasicCredential `yaml:"basic_auth"`
	// Certificates for mtls_auth: the client certificates, verified by a
	// listener's tls.client_auth, that belong to this consumer. Unique
	// across all consumers.
	Certificates []CertificateCredential `yaml:"certificates"`
}

// JWTCredential is a consumer's own JWT signing key, as in Kong: a token
// whose key claim (the jwt plugin's key_claim, default "iss") equals Key is
// verified with this credential's key and belongs to this consumer.
type JWTCredential struct {
	// Key is the value of the key claim that selects this credential.
	// Required, unique across consumers.
	Key string `yaml:"key"`
	// Algorithm is the only algorithm accepted with this key: HS256, HS384,
	// HS512, RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, ES512 or
	// EdDSA. Required.
	Algorithm string `yaml:"algorithm"`
	// Secret is the HMAC key for HS* algorithms (at least 32 bytes).
	Secret Secret `yaml:"secret"`
	// PublicKey is a PEM public key for the RS*, PS*, ES* and EdDSA
	// algorithms.
	PublicKey string `yaml:"public_key"`
}

// BasicCredential is one basic-auth user.
type BasicCredential struct {
	// Username is required and unique across consumers.
	Username string `yaml:"username"`
	// PasswordHash is a bcrypt hash ($2a$, $2b$ or $2y$). Plain passwords are
	// refused.
	PasswordHash Secret `yaml:"password_hash"`
}

// CertificateCredential names one client certificate of a consumer by one
// of its fields; exactly one field is set.
type CertificateCredential struct {
	// SubjectCN is the certificate's subject common name, compared
	// exactly.
	SubjectCN string `yaml:"subject_cn"`
	// SANURI is a URI subject alternative name ("spiffe://example.org/ns/
	// prod/sa/billing"), compared exactly.
	SANURI string `yaml:"san_uri"`
	// SANDNS is a DNS subject alternative name, compared without regard
	// to case or a trailing dot.
	SANDNS string `yaml:"san_dns"`
	// SHA256 is the SHA-256 fingerprint of the DER certificate: 64 hex
	// digits, in either case, optionally in colon-separated pairs (as
	// "openssl x509 -fingerprint -sha256" prints it).
	SHA256 string `yaml:"sha256"`
}

// PluginSet is a mapping from plugin name to that plugin's settings, kept as
// YAML nodes until the plugin registry decodes each into its typed Spec.
type PluginSet struct {
	// Entries are the plugins in document order.
	Entries []PluginEntry
}

// PluginEntry is one plugin's raw settings and where they were written.
type PluginEntry struct {
	// Name is the plugin's key, such as "jwt" or "rate_limit".
	Name string
	// Node is the plugin's settings (aliases resolved); nil or a YAML null
	// means "enabled with defaults".
	Node *yaml.Node
	// Path is where the settings were written: routes[2].plugins.jwt.
	Path Path
}
