package transform

import (
	"errors"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/portico-gateway/portico/internal/config"
	"github.com/portico-gateway/portico/internal/pipeline"
)

// DefaultMaxBody is the largest JSON body the body operations rewrite
// when max_size is not set; larger bodies pass unchanged.
const DefaultMaxBody = 1 << 20

// maxQueryValues bounds query.set and query.add (each).
const maxQueryValues = 64

// Ops are the operations on a set of named values (headers or query
// parameters). They run in the order remove, rename, set, add.
type Ops struct {
	// Add sets a value (a template) only when the name is absent.
	Add map[string]string `yaml:"add"`
	// Set replaces every value of the name with one value (a template).
	// A value that renders empty removes the name.
	Set map[string]string `yaml:"set"`
	// Remove deletes the names.
	Remove []string `yaml:"remove"`
	// Rename moves the values of old names (keys) to new names (values),
	// replacing values the new name had.
	Rename map[string]string `yaml:"rename"`
}

func (o *Ops) empty() bool {
	return len(o.Add) == 0 && len(o.Set) == 0 && len(o.Remove) == 0 && len(o.Rename) == 0
}

// PathSpec rewrites the path the upstream receives.
type PathSpec struct {
	// Pattern is an RE2 regular expression matched against the upstream
	// path (escaped, without query). Required.
	Pattern string `yaml:"pattern"`
	// Replacement becomes the whole upstream path when Pattern matches:
	// $1 or ${name} insert captures, $$ is a literal "$". It must start
	// with "/".
	Replacement string `yaml:"replacement"`
}

// RequestBodySpec are the operations on a JSON request body. Paths are
// dotted ("user.address.city"); a path walks into every element of an
// array it meets.
type RequestBodySpec struct {
	// Add sets a path to a YAML value only when it is absent; strings may
	// be templates.
	Add map[string]yaml.Node `yaml:"add"`
	// Set sets a path to a YAML value, creating missing parent objects.
	Set map[string]yaml.Node `yaml:"set"`
	// Remove deletes paths.
	Remove []string `yaml:"remove"`
	// Rename gives the last segment of a path a new name.
	Rename map[string]string `yaml:"rename"`
	// MaxSize is the largest body rewritten; larger bodies pass unchanged.
	// Default 1MiB.
	MaxSize config.ByteSize `yaml:"max_size"`
	// OnInvalid is what happens to a body that is not valid JSON: "pass"
	// (default) forwards it unchanged, "reject" answers 400.
	OnInvalid string `yaml:"on_invalid"`
}

func (b *RequestBodySpec) empty() bool {
	return len(b.Add) == 0 && len(b.Set) == 0 && len(b.Remove) == 0 && len(b.Rename) == 0
}

// RequestSpec configures request_transform.
type RequestSpec struct {
	// Headers changes request headers.
	Headers Ops `yaml:"headers"`
	// Query changes query parameters.
	Query Ops `yaml:"query"`
	// Path rewrites the upstream path.
	Path *PathSpec `yaml:"path"`
	// Host is a template for the Host header the upstream receives.
	Host string `yaml:"host"`
	// Body changes JSON request bodies.
	Body RequestBodySpec `yaml:"body"`
}

var _ pipeline.Spec = (*RequestSpec)(nil)

// ResponseBodySpec are the operations on a JSON response body.
type ResponseBodySpec struct {
	// Allow keeps only these dotted paths (and their parents). Not with Deny.
	Allow []string `yaml:"allow"`
	// Deny removes these dotted paths. Not with Allow.
	Deny []string `yaml:"deny"`
	// Rename gives the last segment of a dotted path a new name.
	Rename map[string]string `yaml:"rename"`
	// MaxSize is the largest body rewritten; larger bodies stream
	// unchanged. Default 1MiB.
	MaxSize config.ByteSize `yaml:"max_size"`
}

func (b *ResponseBodySpec) empty() bool {
	return len(b.Allow) == 0 && len(b.Deny) == 0 && len(b.Rename) == 0
}

// ResponseSpec configures response_transform.
type ResponseSpec struct {
	// Headers changes response headers; templates may also use $(status)
	// and $(latency_ms).
	Headers Ops `yaml:"headers"`
	// Status maps an upstream status ("500") to the status the client
	// gets (502).
	Status map[string]int `yaml:"status"`
	// Body filters JSON response bodies.
	Body ResponseBodySpec `yaml:"body"`
}

var _ pipeline.Spec = (*ResponseSpec)(nil)

// Validate compiles the settings and reports every problem.
func (s *RequestSpec) Validate(p config.Path) error {
	_, err := compileRequest(s, p)
	return err
}

// Validate compiles the settings and reports every problem.
func (s *ResponseSpec) Validate(p config.Path) error {
	_, err := compileResponse(s, p)
	return err
}

// protectedHeader reports whether a transform may not touch the header:
// framing, connection management and Host belong to the proxy.
func protectedHeader(canonical string) bool {
	switch canonical {
	case "Host", "Content-Length", "Transfer-Encoding", "Connection", "Upgrade", "Te", "Trailer", "Keep-Alive":
		return true
	}
	return strings.HasPrefix(canonical, "Proxy-")
}

// forwardingHeader reports whether the proxy writes the request header
// itself, replacing whatever a plugin set.
func forwardingHeader(canonical string) bool {
	switch canonical {
	case "X-Forwarded-For", "X-Real-Ip", "Forwarded":
		return true
	}
	return false
}

const protectedList = "Host, Content-Length, Transfer-Encoding, Connection, Upgrade, TE, Trailer, Keep-Alive and Proxy-*"

// errs collects problems.
type errs []error

func (e *errs) add(err error) {
	if err != nil {
		*e = append(*e, err)
	}
}

// sortedKeys returns the keys of m in order, so operations and error
// reports are deterministic.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// headerName checks a configured header name and returns it canonical.
func headerName(name string, response bool, p config.Path, es *errs) (string, bool) {
	if !config.IsHeaderName(name) {
		es.add(p.Errorf("%q is not a header name: use letters, digits, \"-\" and \"_\"", name))
		return "", false
	}
	c := http.CanonicalHeaderKey(name)
	if protectedHeader(c) {
		es.add(p.Errorf("header %s may not be changed by a transform (%s are managed by the gateway)", c, protectedList))
		return "", false
	}
	if !response && forwardingHeader(c) {
		es.add(p.Errorf("header %s is written by the proxy itself (from the client address, after every plugin); a transform cannot change it", c))
		return "", false
	}
	return c, true
}

// headerTemplate parses a header value template; its literal text may not
// hold control characters.
func headerTemplate(v string, response bool, p config.Path, es *errs) *template {
	if !clean(v) {
		es.add(p.Errorf("must not contain control characters (CR, LF, NUL)"))
		return nil
	}
	t, err := parseTemplate(v, response)
	if err != nil {
		es.add(p.Errorf("%s", err.Error()))
		return nil
	}
	return t
}

// namedValue is one name with its template.
type namedValue struct {
	name string
	tmpl *template
}

// rename is one old → new name.
type rename struct{ from, to string }

// headerOps are compiled header operations.
type headerOps struct {
	remove []string
	rename []rename
	set    []namedValue
	add    []namedValue
}

func (h *headerOps) empty() bool {
	return len(h.remove) == 0 && len(h.rename) == 0 && len(h.set) == 0 && len(h.add) == 0
}

func compileHeaderOps(o *Ops, response bool, p config.Path, es *errs) headerOps {
	var h headerOps
	for i, name := range o.Remove {
		if c, ok := headerName(name, response, p.Key("remove").At(i), es); ok {
			h.remove = append(h.remove, c)
		}
	}
	for _, from := range sortedKeys(o.Rename) {
		kp := p.Key("rename").Key(from)
		cf, ok1 := headerName(from, response, kp, es)
		ct, ok2 := headerName(o.Rename[from], response, kp, es)
		if ok1 && ok2 {
			if cf == ct {
				es.add(kp.Errorf("renames a header to itself"))
				continue
			}
			h.rename = append(h.rename, rename{cf, ct})
		}
	}
	seen := map[string]bool{}
	for _, what := range []struct {
		key string
		m   map[string]string
		out *[]namedValue
	}{{"set", o.Set, &h.set}, {"add", o.Add, &h.add}} {
		for _, name := range sortedKeys(what.m) {
			kp := p.Key(what.key).Key(name)
			c, ok := headerName(name, response, kp, es)
			t := headerTemplate(what.m[name], response, kp, es)
			if !ok || t == nil {
				continue
			}
			if seen[c] {
				es.add(kp.Errorf("header %s is both set and added (or listed twice): keep one", c))
				continue
			}
			seen[c] = true
			*what.out = append(*what.out, namedValue{c, t})
		}
	}
	return h
}

// queryOps are compiled query operations. Names are decoded parameter
// names.
type queryOps struct {
	remove []string
	rename []rename
	set    []namedValue
	add    []namedValue
}

func (q *queryOps) empty() bool {
	return len(q.remove) == 0 && len(q.rename) == 0 && len(q.set) == 0 && len(q.add) == 0
}

func compileQueryOps(o *Ops, p config.Path, es *errs) queryOps {
	var q queryOps
	check := func(name string, kp config.Path) bool {
		if name == "" {
			es.add(kp.Errorf("query parameter names must not be empty"))
			return false
		}
		return true
	}
	for i, name := range o.Remove {
		if check(name, p.Key("remove").At(i)) {
			q.remove = append(q.remove, name)
		}
	}
	for _, from := range sortedKeys(o.Rename) {
		kp := p.Key("rename").Key(from)
		if check(from, kp) && check(o.Rename[from], kp) {
			if from == o.Rename[from] {
				es.add(kp.Errorf("renames a parameter to itself"))
				continue
			}
			q.rename = append(q.rename, rename{from, o.Rename[from]})
		}
	}
	seen := map[string]bool{}
	for _, what := range []struct {
		key string
		m   map[string]string
		out *[]namedValue
	}{{"set", o.Set, &q.set}, {"add", o.Add, &q.add}} {
		if len(what.m) > maxQueryValues {
			es.add(p.Key(what.key).Errorf("at most %d parameters", maxQueryValues))
			continue
		}
		for _, name := range sortedKeys(what.m) {
			kp := p.Key(what.key).Key(name)
			if !check(name, kp) {
				continue
			}
			t, err := parseTemplate(what.m[name], false)
			if err != nil {
				es.add(kp.Errorf("%s", err.Error()))
				continue
			}
			if seen[name] {
				es.add(kp.Errorf("parameter %q is both set and added: keep one", name))
				continue
			}
			seen[name] = true
			*what.out = append(*what.out, namedValue{name, t})
		}
	}
	return q
}

// pathRewrite is a compiled path rewrite.
type pathRewrite struct {
	re          *regexp.Regexp
	replacement string
}

func compilePath(ps *PathSpec, p config.Path, es *errs) *pathRewrite {
	if ps == nil {
		return nil
	}
	if ps.Pattern == "" {
		es.add(p.Key("pattern").Errorf("is required"))
		return nil
	}
	re, err := regexp.Compile(ps.Pattern)
	if err != nil {
		es.add(p.Key("pattern").Errorf("is not a valid RE2 regular expression: %s", err.Error()))
		return nil
	}
	rp := p.Key("replacement")
	switch {
	case !strings.HasPrefix(ps.Replacement, "/"):
		es.add(rp.Errorf(`must start with "/"`))
		return nil
	case !validPathText(ps.Replacement):
		es.add(rp.Errorf(`must be printable ASCII without spaces, "?" or "#"`))
		return nil
	}
	if msg := checkExpand(ps.Replacement, re); msg != "" {
		es.add(rp.Errorf("%s", msg))
		return nil
	}
	return &pathRewrite{re: re, replacement: ps.Replacement}
}

func validPathText(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c >= 0x7f || c == '?' || c == '#' {
			return false
		}
	}
	return true
}

// checkExpand reports a $ reference in repl that names no capture of re
// (regexp.Expand would silently insert nothing).
func checkExpand(repl string, re *regexp.Regexp) string {
	names := re.SubexpNames()
	for i := 0; i < len(repl); i++ {
		if repl[i] != '$' {
			continue
		}
		i++
		if i < len(repl) && repl[i] == '$' {
			continue
		}
		var name string
		if i < len(repl) && repl[i] == '{' {
			end := strings.IndexByte(repl[i:], '}')
			if end < 0 {
				return `unterminated "${" in replacement`
			}
			name = repl[i+1 : i+end]
			i += end
		} else {
			j := i
			for j < len(repl) && (repl[j] == '_' || repl[j] >= '0' && repl[j] <= '9' ||
				repl[j] >= 'a' && repl[j] <= 'z' || repl[j] >= 'A' && repl[j] <= 'Z') {
				j++
			}
			name = repl[i:j]
			i = j - 1
		}
		if name == "" {
			return `"$" must be followed by a capture number or name (write $$ for a literal "$")`
		}
		if n, err := strconv.Atoi(name); err == nil {
			if n > re.NumSubexp() {
				return "$" + name + " refers to a capture the pattern does not have (it has " + strconv.Itoa(re.NumSubexp()) + ")"
			}
			continue
		}
		if !slices.Contains(names, name) {
			return "${" + name + "} names no capture of the pattern; use ${name} with (?P<name>...) in the pattern"
		}
	}
	return ""
}

// compileHost checks and parses the host template.
func compileHost(host string, p config.Path, es *errs) *template {
	if host == "" {
		return nil
	}
	for i := 0; i < len(host); i++ {
		if c := host[i]; c <= ' ' || c >= 0x7f || strings.IndexByte(`/?#@\`, c) >= 0 {
			es.add(p.Errorf("must be a host name or host:port (printable, no spaces, \"/\", \"?\", \"#\", \"@\")"))
			return nil
		}
	}
	t, err := parseTemplate(host, false)
	if err != nil {
		es.add(p.Errorf("%s", err.Error()))
		return nil
	}
	return t
}

// compileStatus checks and converts the status map.
func compileStatus(m map[string]int, p config.Path, es *errs) map[int]int {
	if len(m) == 0 {
		return nil
	}
	out := make(map[int]int, len(m))
	for _, k := range sortedKeys(m) {
		kp := p.Key(k)
		from, err := strconv.Atoi(k)
		if err != nil || from < 100 || from > 599 || from == http.StatusSwitchingProtocols {
			es.add(kp.Errorf("keys must be upstream statuses between 100 and 599 (not 101)"))
			continue
		}
		if to := m[k]; to < 200 || to > 599 {
			es.add(kp.Errorf("must be a status between 200 and 599 (got %d)", to))
			continue
		}
		out[from] = m[k]
	}
	return out
}

// maxSize returns the configured size or the default.
func maxSize(s config.ByteSize) int64 {
	if s == 0 {
		return DefaultMaxBody
	}
	return int64(s)
}

func joinErrs(es errs) error { return errors.Join(es...) }
