package cache

import (
	"strings"
	"testing"

	"github.com/portico-gateway/portico/internal/plugins/authtest"
)

func TestSpecValidate(t *testing.T) {
	tests := []struct {
		name, src, want string
	}{
		{"defaults", "", ""},
		{"full memory", "store: memory\nmemory_max_bytes: 128MiB\nmax_object_size: 2MiB\ndefault_ttl: 30s\nmax_ttl: 1h\n" +
			"stale_while_revalidate: 10s\nstale_if_error: 10m\nhonor_request_directives: true\nquery: {include: [category, page]}\n" +
			"key_headers: [X-Tenant]\nauthenticated: per_consumer\nx_cache_header: true\ncoalesce_timeout: 2s", ""},
		{"redis with compress", "store: redis\ncompress: true\nmax_object_size: 4MiB", ""},
		{"redis object too large", "store: redis\nmax_object_size: 8MiB", "max_object_size: must be at most 4194304 bytes with the redis store"},
		{"unknown store", "store: disk", "store: must be memory or redis"},
		{"compress needs redis", "compress: true", "compress: is only used with store: redis"},
		{"small memory", "memory_max_bytes: 1KiB", "memory_max_bytes: must be at least 1MiB"},
		{"object too big for memory", "memory_max_bytes: 16MiB\nmax_object_size: 2MiB", "max_object_size: must be at most memory_max_bytes/16"},
		{"zero object size", "store: redis\nmax_object_size: 0", "max_object_size: must be more than 0"},
		{"negative ttl", "default_ttl: -1s", "must not be negative"},
		{"default above max", "default_ttl: 1h\nmax_ttl: 1m", "default_ttl: must not be more than max_ttl"},
		{"negative window", "stale_if_error: -1s", "must not be negative"},
		{"coalesce too long", "coalesce_timeout: 2m", "coalesce_timeout: must be between 0"},
		{"include and exclude", "query: {include: [a], exclude: [b]}", "query: set include or exclude, not both"},
		{"empty query name", "query: {exclude: ['']}", "query.exclude[0]: must not be empty"},
		{"duplicate query name", "query: {include: [a, a]}", "query.include[1]: is listed twice"},
		{"bad header", "key_headers: ['X Tenant']", "key_headers[0]: must be a header name"},
		{"duplicate header", "key_headers: [x-tenant, X-Tenant]", "key_headers[1]: is listed twice"},
		{"authenticated", "authenticated: share", "authenticated: must be bypass or per_consumer"},
		{"unknown key", "ttl: 5s", "ttl"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := authtest.TryConfigure(Registration(), tt.src)
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("got %s, want no error", err.Error())
			case tt.want != "" && err == nil:
				t.Fatalf("got no error, want %q", tt.want)
			case tt.want != "" && !strings.Contains(err.Error(), tt.want):
				t.Fatalf("got %s, want %q", err.Error(), tt.want)
			}
		})
	}
}

func TestSpecReportsEveryProblem(t *testing.T) {
	_, err := authtest.TryConfigure(Registration(), "store: disk\ndefault_ttl: 1h\nmax_ttl: 1m\nauthenticated: x")
	if err == nil {
		t.Fatal("got no error")
	}
	for _, want := range []string{"store:", "default_ttl:", "authenticated:"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("got %s, want it to mention %s", err.Error(), want)
		}
	}
}

// TestMemoryBoundLargestWins: routes share one memory store whose bound
// is the largest configured; a reload that drops it lowers the bound.
func TestMemoryBoundLargestWins(t *testing.T) {
	o := newOrigin(t, answer(200, "x", "Cache-Control", "max-age=60"))
	g := startGateway(t, o, "memory_max_bytes: 16MiB", gwOptions{route: "a"})
	startGateway(t, o, "memory_max_bytes: 32MiB", gwOptions{route: "b", shared: g.shared})
	reg := registryFor(g.shared)
	mem := reg.stores[sharedMemory.String()].(interface{ Limit() int64 })
	if got := mem.Limit(); got != 32<<20 {
		t.Fatalf("got limit %d, want 32MiB", got)
	}
	// A reload with only the 8MiB route retires the 32MiB hold.
	g.shared.Begin()
	startGateway(t, o, "memory_max_bytes: 16MiB", gwOptions{route: "a", shared: g.shared})
	g.shared.Retire()
	if got := mem.Limit(); got != 16<<20 {
		t.Errorf("got limit %d after the reload, want 16MiB", got)
	}
}

// TestRefusesUnkeyedQueryCredential: query rules that leave out of the key
// the parameter key_auth reads and forwards are refused at compile time,
// since the cache would remove it before forwarding; with
// hide_credentials, or with the parameter in the key, they are accepted.
func TestRefusesUnkeyedQueryCredential(t *testing.T) {
	o := newOrigin(t, answer(200, "ok"))
	tests := []struct {
		name, keyAuth, cache string
		refused              bool
	}{
		{"excluded", "{query: apikey}", "query: {exclude: [apikey]}", true},
		{"not included", "{query: apikey}", "query: {include: [page]}", true},
		{"included", "{query: apikey}", "query: {include: [page, apikey]}", false},
		{"every parameter", "{query: apikey}", "", false},
		{"hidden", "{query: apikey, hide_credentials: true}", "query: {exclude: [apikey]}", false},
		{"header only", "{}", "query: {include: [page]}", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := buildGateway(t, o.URL, tt.cache, gwOptions{keyAuth: true, keyAuthIn: tt.keyAuth, consumers: testConsumers})
			if tt.refused != (err != nil) {
				t.Fatalf("got error %v, want refused %t", err, tt.refused)
			}
			if err != nil && !strings.Contains(err.Error(), `query: leaves out of the key the parameter "apikey" that key_auth reads`) {
				t.Errorf("got %q, want it to name the parameter and key_auth", err.Error())
			}
		})
	}
}
