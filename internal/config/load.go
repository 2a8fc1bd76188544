package config

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// MaxFileSize is the largest config file Portico accepts: 4 MiB.
const MaxFileSize = 4 << 20

// Load reads the config file at path and parses it with Parse, expanding
// ${VAR} from the process environment. A file that cannot be read is
// reported as a plain wrapped error; problems inside it as *FieldError
// values, joined.
func Load(path string) (*Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("load config: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("load config %s: %w", path, err)
	}
	return Parse(data, path, nil)
}

// Parse decodes data, one YAML document read from file (used only in
// messages), into a Config, applies the defaults and validates it.
// ${VAR} and ${VAR:-default} in scalar values are looked up with lookupEnv
// (os.LookupEnv when nil); "$${" writes a literal "${". On success Parse
// returns the Config and nil. Otherwise it returns every problem found, each
// a *FieldError with file, line, column and key path, joined with
// errors.Join and sorted by position; the Config is then nil, or, when the
// document could be decoded, the invalid config, which callers may only use
// to look for more errors (such as the plugin settings) and never serve.
func Parse(data []byte, file string, lookupEnv func(string) (string, bool)) (*Config, error) {
	if len(data) > MaxFileSize {
		return nil, &FieldError{File: file, Msg: fmt.Sprintf("config is larger than %d MiB", MaxFileSize>>20)}
	}
	root, err := parseDocument(data, file)
	if err != nil {
		return nil, err
	}
	c := &Config{File: file, lookupEnv: lookupEnv}
	d := c.newDecoder()
	d.decode(root, Path{}, reflect.ValueOf(c).Elem(), 0)
	errs := d.errs
	if !d.stop {
		c.ApplyDefaults()
		for _, e := range c.validate() {
			if !followsFrom(e, d.failed) {
				errs = append(errs, e)
			}
		}
	}
	if len(errs) > 0 {
		sortErrors(errs)
		if n := len(errs) - maxErrors; n > 0 && !d.stop {
			last := errPos(errs[maxErrors-1])
			errs = append(errs[:maxErrors], &FieldError{File: file, Line: last.Line, Col: last.Col,
				Msg: fmt.Sprintf("too many errors; %d more not shown", n)})
		}
		if d.stop {
			return nil, errors.Join(errs...)
		}
		// The partly valid config lets callers look for more errors (the
		// plugin settings) in the same run; it must not be served.
		return c, errors.Join(errs...)
	}
	return c, nil
}

// followsFrom reports whether validation error e lies inside an object that
// already failed to decode: "routes[0].service is required" after
// "routes[0].servce is unknown" would only add noise.
func followsFrom(e error, failed []string) bool {
	var fe *FieldError
	if !errors.As(e, &fe) {
		return false
	}
	for _, f := range failed {
		if within(fe.Path.s, parent(f)) {
			return true
		}
	}
	return false
}

// parseDocument parses data into a node tree and returns the root value of
// its single document.
func parseDocument(data []byte, file string) (*yaml.Node, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, &FieldError{File: file, Msg: "config is empty"}
		}
		return nil, syntaxError(data, file, err)
	}
	var next yaml.Node
	switch err := dec.Decode(&next); {
	case errors.Is(err, io.EOF):
	case err != nil:
		return nil, syntaxError(data, file, err)
	default:
		at := &next
		if len(next.Content) > 0 {
			at = next.Content[0]
		}
		return nil, &FieldError{File: file, Line: at.Line, Col: at.Column,
			Msg: "config must be a single YAML document; remove the second one (after ---)"}
	}
	if len(doc.Content) == 0 || isNull(doc.Content[0]) {
		return nil, &FieldError{File: file, Msg: "config is empty"}
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return nil, &FieldError{File: file, Line: root.Line, Col: root.Column, Msg: "must be a mapping"}
	}
	return root, nil
}

// syntaxError turns a parser error, "yaml: line 3: mapping values are not
// allowed in this context", into a located FieldError. The parser reports
// only the line, so the column is 1.
func syntaxError(data []byte, file string, err error) error {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	fe := &FieldError{File: file, Msg: "invalid YAML: " + msg}
	if rest, ok := strings.CutPrefix(msg, "line "); ok {
		num, text, ok := strings.Cut(rest, ": ")
		if line, err := strconv.Atoi(num); ok && err == nil {
			fe.Line, fe.Col, fe.Msg = line, 1, "invalid YAML: "+text
			if indentedWithTab(data, line) {
				fe.Msg += "; indent with spaces, not tabs"
			}
		}
	}
	return fe
}

// indentedWithTab reports whether line (counted from 1) of data begins
// with white space that holds a tab.
func indentedWithTab(data []byte, line int) bool {
	for range line - 1 {
		i := bytes.IndexByte(data, '\n')
		if i < 0 {
			return false
		}
		data = data[i+1:]
	}
	indent := data[:len(data)-len(bytes.TrimLeft(data, " \t"))]
	return bytes.IndexByte(indent, '\t') >= 0
}

// expandEnv replaces ${VAR} and ${VAR:-default} in s using lookup; "$${"
// stands for a literal "${". The default applies when VAR is unset or
// empty. expanded reports whether any variable was referenced. Errors name
// the variable, never its value.
func expandEnv(s string, lookup func(string) (string, bool)) (out string, expanded bool, err error) {
	if !strings.Contains(s, "${") {
		return s, false, nil
	}
	var b strings.Builder
	for {
		i := strings.IndexByte(s, '$')
		if i < 0 {
			b.WriteString(s)
			return b.String(), expanded, nil
		}
		b.WriteString(s[:i])
		s = s[i:]
		switch {
		case strings.HasPrefix(s, "$${"):
			b.WriteString("${")
			s = s[3:]
		case strings.HasPrefix(s, "${"):
			end := strings.IndexByte(s, '}')
			if end < 0 {
				return "", false, errors.New(`unterminated "${"; write "$${" for a literal "${"`)
			}
			name, def, hasDef := strings.Cut(s[2:end], ":-")
			if !validEnvName(name) {
				return "", false, fmt.Errorf("invalid environment variable name %q in ${...}; use letters, digits and _", name)
			}
			val, ok := lookup(name)
			switch {
			case hasDef && val == "":
				val = def
			case !ok:
				return "", false, fmt.Errorf("environment variable %s is not set", name)
			}
			b.WriteString(val)
			expanded = true
			s = s[end+1:]
		default:
			b.WriteByte('$')
			s = s[1:]
		}
	}
}

// redact removes value, which came from the environment, from msg. The
// quoted value is replaced by the raw text ("${TIMEOUT}"); if the value
// still shows, msg is replaced by a generic one.
func redact(msg, raw, value, want string) string {
	if value == "" {
		return msg
	}
	msg = strings.ReplaceAll(msg, strconv.Quote(value), strconv.Quote(raw))
	if strings.Contains(msg, value) {
		return fmt.Sprintf("invalid value from %s: %s", raw, want)
	}
	return msg
}

func parseInt(s string, bits int) (int64, string) {
	base := 10
	if hasBasePrefix(s) {
		base = 0
	}
	i, err := strconv.ParseInt(s, base, bits)
	if err == nil {
		return i, ""
	}
	if errors.Is(err, strconv.ErrRange) {
		lo, hi := -(int64(1) << (bits - 1)), int64(1)<<(bits-1)-1
		return 0, fmt.Sprintf("must be between %d and %d", lo, hi)
	}
	return 0, "must be a whole number"
}

func parseUint(s string, bits int) (uint64, string) {
	if strings.HasPrefix(s, "-") {
		if _, msg := parseInt(s, 64); msg == "" {
			return 0, "must not be negative"
		}
		return 0, "must be a whole number"
	}
	base := 10
	if hasBasePrefix(s) {
		base = 0
	}
	u, err := strconv.ParseUint(s, base, bits)
	if err == nil {
		return u, ""
	}
	if errors.Is(err, strconv.ErrRange) {
		return 0, fmt.Sprintf("must be between 0 and %d", uint64(1)<<bits-1)
	}
	return 0, "must be a whole number"
}

// hasBasePrefix reports whether s is written in hex, octal or binary
// (0x1f, 0o17, 0b101), as YAML allows.
func hasBasePrefix(s string) bool {
	s = strings.TrimPrefix(strings.TrimPrefix(s, "-"), "+")
	return len(s) > 2 && s[0] == '0' && strings.ContainsRune("xXoObB", rune(s[1]))
}

func validEnvName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '_' && !isAlpha(c) && (i == 0 || !isDigit(c)) {
			return false
		}
	}
	return true
}

func isAlpha(c byte) bool { return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' }
func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// Locate fills File, Line and Col on every *FieldError in the tree of err
// (joined and wrapped errors alike) that has no line yet, from the position
// of its path or, when that key was not written, of its nearest written
// ancestor: routes[2].plugins.jwt.x falls back to routes[2].plugins.jwt,
// then routes[2].plugins, then routes[2]. It returns err, whose
// FieldErrors it modified in place; a nil err gives nil. Plugin Validate
// errors pass through Locate.
func (c *Config) Locate(err error) error {
	c.locate(err, 0)
	return err
}

func (c *Config) locate(err error, depth int) {
	if err == nil || depth > 1000 {
		return
	}
	switch e := err.(type) {
	case *FieldError:
		c.fill(e)
	case interface{ Unwrap() []error }:
		for _, inner := range e.Unwrap() {
			c.locate(inner, depth+1)
		}
	case interface{ Unwrap() error }:
		c.locate(e.Unwrap(), depth+1)
	}
}

func (c *Config) fill(e *FieldError) {
	if e == nil || e.Line > 0 {
		return
	}
	if e.File == "" {
		e.File = c.File
	}
	for s := e.Path.s; s != ""; s = parent(s) {
		if pos, ok := c.pos[s]; ok {
			e.Line, e.Col = pos.Line, pos.Col
			return
		}
	}
}

// parent returns the path one level up: routes[2].plugins → routes[2] →
// routes → "" (the root).
func parent(s string) string {
	if i := strings.LastIndexAny(s, ".["); i >= 0 {
		return s[:i]
	}
	return ""
}

// within reports whether path s is anc or lies below it.
func within(s, anc string) bool {
	if anc == "" {
		return true
	}
	if !strings.HasPrefix(s, anc) {
		return false
	}
	return len(s) == len(anc) || s[len(anc)] == '.' || s[len(anc)] == '['
}

// sortErrors orders errors by position; errors without one keep their
// order, first.
func sortErrors(errs []error) {
	slices.SortStableFunc(errs, func(a, b error) int {
		pa, pb := errPos(a), errPos(b)
		return cmp.Or(cmp.Compare(pa.Line, pb.Line), cmp.Compare(pa.Col, pb.Col))
	})
}

func errPos(err error) Pos {
	var fe *FieldError
	if errors.As(err, &fe) {
		return Pos{Line: fe.Line, Col: fe.Col}
	}
	return Pos{}
}

// Report locates every *FieldError in err (see Locate) and returns the
// leaves of the error tree joined in file order, so errors from several
// stages (decode, validate, plugin settings) read top to bottom. It returns
// nil for a nil err.
func (c *Config) Report(err error) error {
	if err == nil {
		return nil
	}
	c.Locate(err)
	var leaves []error
	var walk func(error)
	walk = func(e error) {
		if j, ok := e.(interface{ Unwrap() []error }); ok {
			for _, x := range j.Unwrap() {
				walk(x)
			}
			return
		}
		if e != nil {
			leaves = append(leaves, e)
		}
	}
	walk(err)
	sortErrors(leaves)
	return errors.Join(leaves...)
}
