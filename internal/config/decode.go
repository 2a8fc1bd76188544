package config

import (
	"encoding"
	"errors"
	"fmt"
	"math"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.yaml.in/yaml/v3"
)

// MaxNodes bounds the number of YAML values one config may decode to,
// counting every expansion of an alias, so that anchor "bombs" fail fast
// instead of exhausting memory.
const MaxNodes = 1_000_000

const (
	// maxErrors stops decoding once this many errors are collected.
	maxErrors = 100
	// maxDepth bounds nesting (recursive Go types, chained merge keys).
	maxDepth = 64
)

var (
	textUnmarshalerType = reflect.TypeFor[encoding.TextUnmarshaler]()
	pluginSetType       = reflect.TypeFor[PluginSet]()
	nodeType            = reflect.TypeFor[yaml.Node]()
	stdDurationType     = reflect.TypeFor[time.Duration]()
	durationType        = reflect.TypeFor[Duration]()
	byteSizeType        = reflect.TypeFor[ByteSize]()
)

// unavailableKeys are keys of features that a later version of Portico
// will offer. Naming one gets a clear message instead of a did-you-mean.
// Remove an entry when its feature ships.
var unavailableKeys = map[string]bool{}

// DecodeNode decodes n strictly into out, which must be a non-nil pointer,
// usually to a plugin's Spec already holding its defaults: keys absent from
// n keep their values. A nil n or a YAML null ("request_id:" or
// "request_id: ~") leaves out unchanged, meaning "enabled with defaults".
// Unknown keys, wrong types and unset ${VAR}s are reported as
// *FieldError values below p, located in c's file, and joined. Positions of
// the decoded keys are recorded in c so that Locate can find them later.
// DecodeNode works on a Config built by hand too. It is not safe for
// concurrent use on the same Config.
func (c *Config) DecodeNode(n *yaml.Node, p Path, out any) error {
	v := reflect.ValueOf(out)
	if v.Kind() != reflect.Pointer || v.IsNil() {
		return fmt.Errorf("config: DecodeNode needs a non-nil pointer, got %T", out)
	}
	if n == nil {
		return nil
	}
	d := c.newDecoder()
	d.decode(n, p, v.Elem(), 0)
	sortErrors(d.errs)
	return errors.Join(d.errs...)
}

// decoder walks a yaml.Node tree against a Go type. Errors are collected,
// not returned, so that one pass reports every problem.
type decoder struct {
	c      *Config
	lookup func(string) (string, bool)
	errs   []error
	failed []string // paths of the errors, to hide follow-on validation errors
	stop   bool
	// aliased counts the aliases being expanded. Positions are not recorded
	// inside an expansion: Locate then points at the alias, where the
	// value is used, and an expansion bomb cannot fill c.pos.
	aliased int
}

func (c *Config) newDecoder() *decoder {
	if c.pos == nil {
		c.pos = make(map[string]Pos)
	}
	if c.envPaths == nil {
		c.envPaths = make(map[string]bool)
	}
	lookup := c.lookupEnv
	if lookup == nil {
		lookup = os.LookupEnv
	}
	return &decoder{c: c, lookup: lookup}
}

// fail records an error at n (which may be nil) for path p.
func (d *decoder) fail(n *yaml.Node, p Path, msg string) {
	if d.stop {
		return
	}
	fe := &FieldError{File: d.c.File, Path: p, Msg: msg}
	if n != nil {
		fe.Line, fe.Col = n.Line, n.Column
	}
	d.errs = append(d.errs, fe)
	d.failed = append(d.failed, p.s)
	if len(d.errs) >= maxErrors {
		d.errs = append(d.errs, &FieldError{File: d.c.File, Line: fe.Line, Col: fe.Col, Path: p,
			Msg: fmt.Sprintf("too many errors; stopped after %d", maxErrors)})
		d.stop = true
	}
}

// count charges one value against the MaxNodes budget.
func (d *decoder) count(n *yaml.Node, p Path) bool {
	d.c.nodes++
	if d.c.nodes > MaxNodes {
		d.fail(n, p, fmt.Sprintf("document expands to more than %d values; check anchors and aliases", MaxNodes))
		d.stop = true
		return false
	}
	return true
}

func (d *decoder) record(n *yaml.Node, p Path) {
	if d.aliased == 0 {
		d.c.pos[p.s] = Pos{Line: n.Line, Col: n.Column}
	}
}

func resolve(n *yaml.Node) *yaml.Node {
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		return n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

// decode stores n into v, which must be settable.
func (d *decoder) decode(n *yaml.Node, p Path, v reflect.Value, depth int) {
	if d.stop {
		return
	}
	if n.Kind == yaml.AliasNode {
		if n.Alias == nil {
			d.fail(n, p, "alias refers to no anchor")
			return
		}
		d.aliased++
		defer func() { d.aliased-- }()
		n = n.Alias
	}
	if !d.count(n, p) {
		return
	}
	if depth > maxDepth {
		d.fail(n, p, fmt.Sprintf("nested more than %d levels deep", maxDepth))
		return
	}
	t := v.Type()
	if t == nodeType {
		v.Set(reflect.ValueOf(*n))
		return
	}
	if isNull(n) {
		return // null keeps the current value: the default, or nil
	}
	switch {
	case t == pluginSetType:
		d.pluginSet(n, p, v.Addr().Interface().(*PluginSet))
		return
	case t.Kind() == reflect.Pointer:
		if v.IsNil() {
			v.Set(reflect.New(t.Elem()))
		}
		d.decode(n, p, v.Elem(), depth+1)
		return
	case t == stdDurationType:
		var dur Duration
		if d.text(n, p, &dur, durationType) {
			v.SetInt(int64(dur))
		}
		return
	case reflect.PointerTo(t).Implements(textUnmarshalerType):
		d.text(n, p, v.Addr().Interface().(encoding.TextUnmarshaler), t)
		return
	}
	switch t.Kind() {
	case reflect.Struct:
		d.structure(n, p, v, depth)
	case reflect.Slice:
		d.sequence(n, p, v, depth)
	case reflect.Map:
		d.mapping(n, p, v, depth)
	case reflect.String:
		if s, ok := d.scalar(n, p, "must be a string"); ok {
			v.SetString(s)
		}
	case reflect.Bool:
		if s, ok := d.scalar(n, p, "must be true or false"); ok {
			switch s {
			case "true":
				v.SetBool(true)
			case "false":
				v.SetBool(false)
			default:
				d.fail(n, p, "must be true or false")
			}
		}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		if s, ok := d.scalar(n, p, "must be a whole number"); ok {
			if i, msg := parseInt(s, t.Bits()); msg != "" {
				d.fail(n, p, msg)
			} else {
				v.SetInt(i)
			}
		}
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		if s, ok := d.scalar(n, p, "must be a whole number"); ok {
			if u, msg := parseUint(s, t.Bits()); msg != "" {
				d.fail(n, p, msg)
			} else {
				v.SetUint(u)
			}
		}
	case reflect.Float32, reflect.Float64:
		if s, ok := d.scalar(n, p, "must be a number"); ok {
			f, err := strconv.ParseFloat(s, t.Bits())
			if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
				d.fail(n, p, "must be a number")
			} else {
				v.SetFloat(f)
			}
		}
	default:
		d.fail(n, p, fmt.Sprintf("cannot decode into %s", t))
	}
}

// scalar returns the text of a scalar node with ${VAR}s expanded, or
// reports want when n is not a scalar.
func (d *decoder) scalar(n *yaml.Node, p Path, want string) (string, bool) {
	if n.Kind != yaml.ScalarNode {
		d.fail(n, p, want)
		return "", false
	}
	s, expanded, err := expandEnv(n.Value, d.lookup)
	if err != nil {
		d.fail(n, p, err.Error())
		return "", false
	}
	if expanded {
		d.c.envPaths[p.s] = true
	}
	return s, true
}

// text feeds a scalar to an encoding.TextUnmarshaler; its error message
// becomes the FieldError message. A value that came from the environment is
// never echoed: see redact.
func (d *decoder) text(n *yaml.Node, p Path, u encoding.TextUnmarshaler, t reflect.Type) bool {
	want := wantText(t)
	s, ok := d.scalar(n, p, want)
	if !ok {
		return false
	}
	if err := u.UnmarshalText([]byte(s)); err != nil {
		msg := err.Error()
		if d.c.envPaths[p.s] {
			msg = redact(msg, n.Value, s, want)
		}
		d.fail(n, p, msg)
		return false
	}
	return true
}

func wantText(t reflect.Type) string {
	switch t {
	case durationType:
		return "must be a duration, like 250ms, 10s or 1m"
	case byteSizeType:
		return "must be a size, like 512, 16KiB or 1MiB"
	}
	return "must be a string"
}

// pair is one key and value of a mapping.
type pair struct{ key, val *yaml.Node }

// pairs returns the entries of mapping n: explicit keys in document order,
// then keys merged in with "<<" that were not set explicitly. Duplicate and
// non-string keys are reported.
func (d *decoder) pairs(n *yaml.Node, p Path, depth int) []pair {
	out := make([]pair, 0, len(n.Content)/2)
	seen := make(map[string]*yaml.Node, len(n.Content)/2)
	var merged []pair
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		if k.Kind == yaml.ScalarNode && k.Value == "<<" && k.ShortTag() == "!!merge" {
			merged = append(merged, d.merge(val, p, depth+1)...)
			continue
		}
		if k.Kind != yaml.ScalarNode || isNull(k) {
			d.fail(k, p, "keys must be strings")
			continue
		}
		if first, dup := seen[k.Value]; dup {
			d.fail(k, p.Key(k.Value), fmt.Sprintf("duplicate key %q; first set at line %d", k.Value, first.Line))
			continue
		}
		seen[k.Value] = k
		out = append(out, pair{k, val})
	}
	for _, m := range merged {
		if _, ok := seen[m.key.Value]; !ok {
			seen[m.key.Value] = m.key
			out = append(out, m)
		}
	}
	return out
}

// merge returns the entries that "<<: value" brings in: value is a mapping
// or a list of mappings, earlier ones taking precedence.
func (d *decoder) merge(val *yaml.Node, p Path, depth int) []pair {
	val = resolve(val)
	if d.stop || !d.count(val, p) {
		return nil
	}
	if depth > maxDepth {
		d.fail(val, p, fmt.Sprintf("merge keys nested more than %d levels deep", maxDepth))
		return nil
	}
	switch val.Kind {
	case yaml.MappingNode:
		// Merged entries are charged: ones that explicit keys override are
		// never decoded, so decode would not count them.
		kvs := d.pairs(val, p, depth)
		for _, kv := range kvs {
			if !d.count(kv.key, p) {
				return nil
			}
		}
		return kvs
	case yaml.SequenceNode:
		var out []pair
		for _, item := range val.Content {
			if item = resolve(item); item.Kind != yaml.MappingNode {
				d.fail(item, p, "merge key << needs a mapping or a list of mappings")
				continue
			}
			out = append(out, d.merge(item, p, depth+1)...)
		}
		return out
	}
	d.fail(val, p, "merge key << needs a mapping or a list of mappings")
	return nil
}

// structInfo maps YAML keys to struct fields.
type structInfo struct {
	fields map[string][]int
	names  []string // sorted, for messages
}

var structInfos sync.Map // reflect.Type → *structInfo

func structInfoFor(t reflect.Type) *structInfo {
	if si, ok := structInfos.Load(t); ok {
		return si.(*structInfo)
	}
	si := &structInfo{fields: make(map[string][]int)}
	addFields(si, t, nil)
	slices.Sort(si.names)
	actual, _ := structInfos.LoadOrStore(t, si)
	return actual.(*structInfo)
}

// addFields adds t's fields by their yaml tag: `yaml:"-"` and unexported
// fields are skipped; `yaml:",inline"` on a struct field adds its fields;
// an untagged field is known by its lower-cased name.
func addFields(si *structInfo, t reflect.Type, index []int) {
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		tag := f.Tag.Get("yaml")
		if tag == "-" {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		idx := append(slices.Clone(index), i)
		if opts == "inline" && f.Type.Kind() == reflect.Struct {
			addFields(si, f.Type, idx)
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		if _, dup := si.fields[name]; !dup {
			si.names = append(si.names, name)
		}
		si.fields[name] = idx
	}
}

func (d *decoder) structure(n *yaml.Node, p Path, v reflect.Value, depth int) {
	if n.Kind != yaml.MappingNode {
		d.fail(n, p, "must be a mapping")
		return
	}
	si := structInfoFor(v.Type())
	for _, kv := range d.pairs(n, p, depth) {
		name := kv.key.Value
		kp := p.Key(name)
		idx, ok := si.fields[name]
		if !ok {
			d.fail(kv.key, kp, unknownKey(kp, name, si.names))
			continue
		}
		d.record(kv.key, kp)
		d.decode(kv.val, kp, v.FieldByIndex(idx), depth+1)
	}
}

func unknownKey(kp Path, name string, allowed []string) string {
	if unavailableKeys[kp.s] {
		return fmt.Sprintf("%q is not available in this version of portico", name)
	}
	if s := Suggest(name, allowed); s != "" {
		return fmt.Sprintf("unknown key %q; did you mean %q?", name, s)
	}
	return fmt.Sprintf("unknown key %q; allowed keys: %s", name, strings.Join(allowed, ", "))
}

func (d *decoder) sequence(n *yaml.Node, p Path, v reflect.Value, depth int) {
	if n.Kind != yaml.SequenceNode {
		d.fail(n, p, "must be a list")
		return
	}
	s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
	for i, item := range n.Content {
		ip := p.At(i)
		d.record(item, ip)
		d.decode(item, ip, s.Index(i), depth+1)
	}
	v.Set(s)
}

func (d *decoder) mapping(n *yaml.Node, p Path, v reflect.Value, depth int) {
	t := v.Type()
	if t.Key().Kind() != reflect.String {
		d.fail(n, p, fmt.Sprintf("cannot decode into %s", t))
		return
	}
	if n.Kind != yaml.MappingNode {
		d.fail(n, p, "must be a mapping")
		return
	}
	kvs := d.pairs(n, p, depth)
	m := reflect.MakeMapWithSize(t, len(kvs))
	for _, kv := range kvs {
		kp := p.Key(kv.key.Value)
		d.record(kv.key, kp)
		ev := reflect.New(t.Elem()).Elem()
		d.decode(kv.val, kp, ev, depth+1)
		m.SetMapIndex(reflect.ValueOf(kv.key.Value).Convert(t.Key()), ev)
	}
	v.Set(m)
}

// pluginSet keeps each plugin's settings as a node, in document order; the
// plugin registry decodes them later with DecodeNode.
func (d *decoder) pluginSet(n *yaml.Node, p Path, ps *PluginSet) {
	if n.Kind != yaml.MappingNode {
		d.fail(n, p, "must be a mapping of plugin names to their settings")
		return
	}
	ps.Entries = nil
	for _, kv := range d.pairs(n, p, 0) {
		if !d.count(kv.key, p) { // the settings are decoded later, so count here
			return
		}
		kp := p.Key(kv.key.Value)
		d.record(kv.key, kp)
		ps.Entries = append(ps.Entries, PluginEntry{Name: kv.key.Value, Node: resolve(kv.val), Path: kp})
	}
}
