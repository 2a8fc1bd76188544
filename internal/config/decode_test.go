package config

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

// parseNode parses one YAML document and returns its root value.
func parseNode(t *testing.T, src string) *yaml.Node {
	t.Helper()
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(src), &doc); err != nil {
		t.Fatalf("parse %q: %v", src, err)
	}
	if len(doc.Content) == 0 {
		return nil
	}
	return doc.Content[0]
}

func envOf(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		v, ok := m[k]
		return v, ok
	}
}

func TestExpandEnv(t *testing.T) {
	env := envOf(map[string]string{"A": "alpha", "EMPTY": "", "B_2": "b"})
	tests := []struct {
		name, in, want, wantErr string
		wantExpanded            bool
	}{
		{name: "plain", in: "no vars", want: "no vars"},
		{name: "dollar alone", in: "cost $5 and $A", want: "cost $5 and $A"},
		{name: "whole", in: "${A}", want: "alpha", wantExpanded: true},
		{name: "inside", in: "x-${A}-${B_2}", want: "x-alpha-b", wantExpanded: true},
		{name: "default unused", in: "${A:-x}", want: "alpha", wantExpanded: true},
		{name: "default for unset", in: "${NOPE:-x}", want: "x", wantExpanded: true},
		{name: "default for empty", in: "${EMPTY:-x}", want: "x", wantExpanded: true},
		{name: "empty default", in: "${NOPE:-}", want: "", wantExpanded: true},
		{name: "set but empty", in: "[${EMPTY}]", want: "[]", wantExpanded: true},
		{name: "escaped", in: "$${A}", want: "${A}"},
		{name: "escaped then var", in: "$${A}${A}", want: "${A}alpha", wantExpanded: true},
		{name: "unset", in: "${DB_PASSWORD}", wantErr: "environment variable DB_PASSWORD is not set"},
		{name: "unterminated", in: "${A", wantErr: `unterminated "${"; write "$${" for a literal "${"`},
		{name: "empty name", in: "${}", wantErr: `invalid environment variable name "" in ${...}; use letters, digits and _`},
		{name: "bad name", in: "${A-B}", wantErr: `invalid environment variable name "A-B" in ${...}; use letters, digits and _`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, expanded, err := expandEnv(tt.in, env)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("got error %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("got error %v, want none", err)
			}
			if got != tt.want || expanded != tt.wantExpanded {
				t.Errorf("got %q (expanded %v), want %q (expanded %v)", got, expanded, tt.want, tt.wantExpanded)
			}
		})
	}
}

func TestDecodeUnits(t *testing.T) {
	type spec struct {
		D   Duration      `yaml:"d"`
		S   ByteSize      `yaml:"s"`
		Std time.Duration `yaml:"std"`
	}
	tests := []struct {
		in      string
		want    spec
		wantErr string
	}{
		{in: "d: 250ms", want: spec{D: Duration(250 * time.Millisecond)}},
		{in: "d: 1m30s", want: spec{D: Duration(90 * time.Second)}},
		{in: "d: 0s", want: spec{}},
		{in: "d: 10", wantErr: `x.d: invalid duration "10": use a number with a unit, like 250ms, 10s or 1m`},
		{in: "d: -1s", wantErr: `x.d: duration "-1s" must not be negative`},
		{in: "d: [1s]", wantErr: `x.d: must be a duration, like 250ms, 10s or 1m`},
		{in: "std: 2s", want: spec{Std: 2 * time.Second}},
		{in: "std: 2", wantErr: `x.std: invalid duration "2": use a number with a unit, like 250ms, 10s or 1m`},
		{in: "s: 512", want: spec{S: 512}},
		{in: "s: 16KiB", want: spec{S: 16 << 10}},
		{in: "s: 1MiB", want: spec{S: 1 << 20}},
		{in: "s: 10MB", want: spec{S: 10_000_000}},
		{in: "s: 2GiB", want: spec{S: 2 << 30}},
		{in: "s: 1 KiB", want: spec{S: 1 << 10}},
		{in: "s: 16kib", wantErr: `x.s: invalid size "16kib": use bytes or a unit, like 512, 16KiB, 1MiB or 10MB`},
		{in: "s: -1", wantErr: `x.s: invalid size "-1": use bytes or a unit, like 512, 16KiB, 1MiB or 10MB`},
		{in: "s: 99999999999GiB", wantErr: `x.s: size "99999999999GiB" is too large`},
		{in: "s: {a: 1}", wantErr: `x.s: must be a size, like 512, 16KiB or 1MiB`},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			t.Parallel()
			var c Config
			var got spec
			err := c.DecodeNode(parseNode(t, tt.in), Path{}.Key("x"), &got)
			if tt.wantErr != "" {
				if err == nil || !strings.HasSuffix(err.Error(), tt.wantErr) {
					t.Fatalf("got error %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("got error %v, want none", err)
			}
			if got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

type innerSpec struct {
	Depth int `yaml:"depth"`
}

type Common struct {
	Shared string `yaml:"shared"`
}

type testSpec struct {
	Common    `yaml:",inline"`
	Name      string            `yaml:"name"`
	Enabled   bool              `yaml:"enabled"`
	Limit     int               `yaml:"limit"`
	Small     int8              `yaml:"small"`
	Count     uint16            `yaml:"count"`
	Ratio     float64           `yaml:"ratio"`
	Window    Duration          `yaml:"window"`
	Methods   []string          `yaml:"methods"`
	Headers   map[string]string `yaml:"headers"`
	Inner     innerSpec         `yaml:"inner"`
	Optional  *innerSpec        `yaml:"optional"`
	Key       Secret            `yaml:"key"`
	Untagged  string
	Ignored   string `yaml:"-"`
	unexposed string
}

func defaultSpec() *testSpec {
	return &testSpec{
		Name:    "default",
		Limit:   100,
		Window:  Duration(time.Minute),
		Methods: []string{"GET"},
		Inner:   innerSpec{Depth: 3},
	}
}

func TestDecodeNodeKeepsDefaults(t *testing.T) {
	t.Parallel()
	var c Config // built by hand: nil maps, nil lookupEnv
	got := defaultSpec()
	n := parseNode(t, "limit: 0x5\nmethods: [POST, PUT]\noptional: {depth: 2}\nshared: s\nuntagged: u\nkey: k\ncount: 0o17\n")
	if err := c.DecodeNode(n, Path{}.Index("routes", 2).Key("plugins").Key("x"), got); err != nil {
		t.Fatal(err)
	}
	want := defaultSpec()
	want.Limit, want.Methods, want.Optional = 5, []string{"POST", "PUT"}, &innerSpec{Depth: 2}
	want.Shared, want.Untagged, want.Key, want.Count = "s", "u", "k", 15
	if got.Optional == nil || *got.Optional != *want.Optional {
		t.Fatalf("got optional %v, want %v", got.Optional, want.Optional)
	}
	got.Optional, want.Optional = nil, nil
	if fmt.Sprint(*got) != fmt.Sprint(*want) {
		t.Errorf("got %+v, want %+v", *got, *want)
	}
	if pos, ok := c.pos["routes[2].plugins.x.methods[1]"]; !ok || pos != (Pos{Line: 2, Col: 17}) {
		t.Errorf("got position %v (recorded %v), want 2:17", pos, ok)
	}
}

func TestDecodeNodeNullMeansDefaults(t *testing.T) {
	t.Parallel()
	for _, src := range []string{"", "~", "null"} {
		var c Config
		got := defaultSpec()
		var n *yaml.Node
		if src != "" {
			n = parseNode(t, src)
		}
		if err := c.DecodeNode(n, Path{}.Key("plugins").Key("x"), got); err != nil {
			t.Fatalf("%q: %v", src, err)
		}
		if fmt.Sprint(*got) != fmt.Sprint(*defaultSpec()) {
			t.Errorf("%q: got %+v, want the defaults", src, *got)
		}
	}
	// A null value inside keeps that field's default too.
	var c Config
	got := defaultSpec()
	if err := c.DecodeNode(parseNode(t, "limit:\noptional: ~"), Path{}.Key("x"), got); err != nil {
		t.Fatal(err)
	}
	if got.Limit != 100 || got.Optional != nil {
		t.Errorf("got limit %d optional %v, want 100 and nil", got.Limit, got.Optional)
	}
}

func TestDecodeNodeErrors(t *testing.T) {
	tests := []struct {
		in, want string
	}{
		{"name: [a]", "p.name: must be a string"},
		{"enabled: yes", "p.enabled: must be true or false"},
		{"enabled: True", "p.enabled: must be true or false"},
		{"limit: 1.5", "p.limit: must be a whole number"},
		{"limit: ten", "p.limit: must be a whole number"},
		{"small: 200", "p.small: must be between -128 and 127"},
		{"count: -1", "p.count: must not be negative"},
		{"count: 70000", "p.count: must be between 0 and 65535"},
		{"count: -x", "p.count: must be a whole number"},
		{"count: 1e3", "p.count: must be a whole number"},
		{"ratio: .nan", "p.ratio: must be a number"},
		{"ratio: x", "p.ratio: must be a number"},
		{"methods: GET", "p.methods: must be a list"},
		{"headers: [a]", "p.headers: must be a mapping"},
		{"inner: 3", "p.inner: must be a mapping"},
		{"inner: {depht: 1}", `p.inner.depht: unknown key "depht"; did you mean "depth"?`},
		{"optional: {bad: 1}", `p.optional.bad: unknown key "bad"; allowed keys: depth`},
		{"ignored: x", `p.ignored: unknown key "ignored"; allowed keys: count, enabled, headers, inner, key, limit, methods, name, optional, ratio, shared, small, untagged, window`},
		{"unexposed: x", `p.unexposed: unknown key "unexposed"; allowed keys: count, enabled, headers, inner, key, limit, methods, name, optional, ratio, shared, small, untagged, window`},
		{"limt: 1\nlimit: 2\nlimit: 3", "p.limt: unknown key \"limt\"; did you mean \"limit\"?\n" +
			"p.limit: duplicate key \"limit\"; first set at line 2"},
		{"[1]: x", "p: keys must be strings"},
		{"headers: {[a]: b}", "p.headers: keys must be strings"},
		{"key: \"\"", "p.key: must not be empty"},
		{"<<: 5", "p: merge key << needs a mapping or a list of mappings"},
		{"- a", "p: must be a mapping"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			t.Parallel()
			var c Config
			err := c.DecodeNode(parseNode(t, tt.in), Path{}.Key("p"), defaultSpec())
			if err == nil {
				t.Fatal("got no error")
			}
			var got []string
			for line := range strings.SplitSeq(err.Error(), "\n") {
				_, rest, _ := strings.Cut(line, "p")
				got = append(got, "p"+rest)
			}
			if strings.Join(got, "\n") != tt.want {
				t.Errorf("got %q, want %q", strings.Join(got, "\n"), tt.want)
			}
		})
	}
}

func TestDecodeNodeLocatesErrors(t *testing.T) {
	t.Parallel()
	c := &Config{File: "portico.yaml"}
	n := parseNode(t, "name: a\nlimit: many\n")
	err := c.DecodeNode(n, Path{}.Key("plugins").Key("x"), defaultSpec())
	var fe *FieldError
	if !errors.As(err, &fe) {
		t.Fatalf("got %v, want a *FieldError", err)
	}
	if fe.File != "portico.yaml" || fe.Line != 2 || fe.Col != 8 || fe.Path.String() != "plugins.x.limit" {
		t.Errorf("got %s:%d:%d %s, want portico.yaml:2:8 plugins.x.limit", fe.File, fe.Line, fe.Col, fe.Path)
	}
}

func TestDecodeNodeRejectsNonPointer(t *testing.T) {
	t.Parallel()
	var c Config
	if err := c.DecodeNode(parseNode(t, "a: 1"), Path{}, testSpec{}); err == nil {
		t.Error("got no error for a non-pointer, want one")
	}
	if err := c.DecodeNode(parseNode(t, "a: 1"), Path{}, (*testSpec)(nil)); err == nil {
		t.Error("got no error for a nil pointer, want one")
	}
}

func TestDecodeNodeUsesConfigEnv(t *testing.T) {
	t.Parallel()
	c := &Config{lookupEnv: envOf(map[string]string{"LIMIT": "7", "NAME": "n"})}
	got := defaultSpec()
	if err := c.DecodeNode(parseNode(t, "limit: ${LIMIT}\nname: pre-${NAME}"), Path{}.Key("x"), got); err != nil {
		t.Fatal(err)
	}
	if got.Limit != 7 || got.Name != "pre-n" {
		t.Errorf("got limit %d name %q, want 7 and pre-n", got.Limit, got.Name)
	}
}

func TestMergeKeys(t *testing.T) {
	t.Parallel()
	src := `
base: &base {name: base, limit: 1, enabled: true}
other: &other {name: other, ratio: 0.5, limit: 2}
spec:
  <<: [*base, *other]
  name: own
`
	var wrapper struct {
		Base  yaml.Node `yaml:"base"`
		Other yaml.Node `yaml:"other"`
		Spec  testSpec  `yaml:"spec"`
	}
	var c Config
	if err := c.DecodeNode(parseNode(t, src), Path{}, &wrapper); err != nil {
		t.Fatal(err)
	}
	got := wrapper.Spec
	if got.Name != "own" || got.Limit != 1 || !got.Enabled || got.Ratio != 0.5 {
		t.Errorf("got name %q limit %d enabled %v ratio %v, want own 1 true 0.5", got.Name, got.Limit, got.Enabled, got.Ratio)
	}
}

func TestPluginSetKeepsDocumentOrder(t *testing.T) {
	t.Parallel()
	src := `
plugins:
  rate_limit: {limit: 1}
  jwt: &jwt {algorithms: [RS256]}
  cors:
  access_log: {}
other: *jwt
`
	var got struct {
		Plugins PluginSet `yaml:"plugins"`
		Other   PluginSet `yaml:"other"`
	}
	c := &Config{File: "f.yaml"}
	if err := c.DecodeNode(parseNode(t, src), Path{}, &got); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range got.Plugins.Entries {
		names = append(names, e.Name+"@"+e.Path.String())
	}
	want := "rate_limit@plugins.rate_limit jwt@plugins.jwt cors@plugins.cors access_log@plugins.access_log"
	if strings.Join(names, " ") != want {
		t.Errorf("got %q, want %q", strings.Join(names, " "), want)
	}
	if n := got.Plugins.Entries[1].Node; n.Kind != yaml.MappingNode || n.Line != 4 {
		t.Errorf("got jwt node kind %v line %d, want a mapping on line 4", n.Kind, n.Line)
	}
	if n := got.Plugins.Entries[2].Node; !isNull(n) {
		t.Errorf("got cors node %v, want null", n)
	}
	// Aliased plugin settings are resolved to the anchored mapping.
	if e := got.Other.Entries; len(e) != 1 || e[0].Name != "algorithms" {
		t.Errorf("got %+v, want the aliased mapping's single key", e)
	}
}

// TestDecodeNodeRejectsAliasBomb checks the expansion budget for plugin
// settings: a few lines that expand to billions of values.
func TestDecodeNodeRejectsAliasBomb(t *testing.T) {
	t.Parallel()
	src := `
a: &a [x, x, x, x, x, x, x, x, x, x]
b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]
c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]
d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]
e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]
f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]
g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f, *f]
h: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g, *g]
`
	var out struct {
		A, B, C, D, E, F, G yaml.Node
		H                   [][][][][][][][]string
	}
	var c Config
	err := c.DecodeNode(parseNode(t, src), Path{}.Key("x"), &out)
	if err == nil || !strings.Contains(err.Error(), "document expands to more than") {
		t.Fatalf("got %.200v, want the expansion limit error", err)
	}
	// The budget is shared: the same Config refuses further work.
	var small []string
	if err := c.DecodeNode(parseNode(t, "[a]"), Path{}.Key("y"), &small); err == nil {
		t.Error("got no error after the budget was spent, want one")
	}
}

func TestDecodeRecursiveAlias(t *testing.T) {
	t.Parallel()
	type tree struct {
		Kids []tree `yaml:"kids"`
	}
	var c Config
	var got tree
	err := c.DecodeNode(parseNode(t, "&t {kids: [*t]}"), Path{}.Key("x"), &got)
	if err == nil || !strings.Contains(err.Error(), "nested more than") {
		t.Fatalf("got %.200v, want the nesting error", err)
	}
}

// TestSecretsNeverEchoed checks that neither a Secret's value nor an
// environment variable's value appears in any error message.
func TestSecretsNeverEchoed(t *testing.T) {
	const secret = "s3cr3t-Value"
	env := envOf(map[string]string{
		"SECRET":       secret,
		"EMPTY":        "",
		"BAD_DURATION": secret,
		"SHORT":        "1",
		"SERVICE":      secret,
		"UPSTREAM":     "http://admin:" + secret + "@127.0.0.1:1/path",
		"REGEX":        "^/(" + secret,
	})
	t.Run("plugin spec", func(t *testing.T) {
		t.Parallel()
		tests := []string{
			"key: ${EMPTY}",
			"key: {value: " + secret + "}",
			"key: [" + secret + "]",
			"window: ${BAD_DURATION}",
			"window: x${BAD_DURATION}",
			"window: ${SHORT}",
			"limit: ${BAD_DURATION}",
			"enabled: ${BAD_DURATION}",
			"inner: ${BAD_DURATION}",
		}
		for _, src := range tests {
			c := &Config{lookupEnv: env}
			err := c.DecodeNode(parseNode(t, src), Path{}.Key("x"), defaultSpec())
			if err == nil {
				t.Errorf("%s: got no error, want one", src)
				continue
			}
			if strings.Contains(err.Error(), secret) {
				t.Errorf("%s: error %q echoes the secret", src, err)
			}
		}
	})
	t.Run("short value", func(t *testing.T) {
		t.Parallel()
		c := &Config{lookupEnv: env}
		err := c.DecodeNode(parseNode(t, "window: ${SHORT}"), Path{}.Key("x"), defaultSpec())
		want := "x.window: invalid value from ${SHORT}: must be a duration, like 250ms, 10s or 1m"
		if err == nil || !strings.HasSuffix(err.Error(), want) {
			t.Errorf("got %v, want %q", err, want)
		}
	})
	t.Run("config", func(t *testing.T) {
		t.Parallel()
		src := `
services:
  - name: api
    url: ${UPSTREAM}
  - name: other
    targets: [{url: "${UPSTREAM}"}]
routes:
  - name: r
    match: { paths: ["~${REGEX}"], hosts: ["${SERVICE}"] }
    service: ${SERVICE}
  - name: s
    match: { paths: ["/"] }
    service: api
    path_rewrite: { pattern: "${REGEX}", replacement: "/" }
`
		_, err := Parse([]byte(src), "portico.yaml", env)
		if err == nil {
			t.Fatal("got no error, want several")
		}
		if strings.Contains(err.Error(), secret) {
			t.Errorf("error echoes the secret:\n%s", err)
		}
		if got := strings.Count(err.Error(), "\n") + 1; got != 6 {
			t.Errorf("got %d errors, want 6:\n%s", got, err)
		}
	})
	t.Run("secret formatting", func(t *testing.T) {
		t.Parallel()
		s := Secret(secret)
		for _, out := range []string{fmt.Sprint(s), fmt.Sprintf("%v %s %+v", s, s, struct{ K Secret }{s})} {
			if strings.Contains(out, secret) {
				t.Errorf("formatted %q echoes the secret", out)
			}
		}
	})
}
