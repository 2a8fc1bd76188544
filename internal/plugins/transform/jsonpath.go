package transform

import (
	"bytes"
	"encoding/json"
	"math"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/portico-gateway/portico/internal/config"
)

// This file holds the operations on decoded JSON documents (the values
// encoding/json produces with UseNumber: map[string]any, []any, string,
// json.Number, bool, nil). A dotted path names object members from the
// root; where a path meets an array, it applies to every element.

// maxPathSegments bounds the depth of a configured path.
const maxPathSegments = 32

// parsePath splits a dotted path and checks its segments.
func parsePath(s string, p config.Path, es *errs) ([]string, bool) {
	segs := strings.Split(s, ".")
	if len(segs) > maxPathSegments {
		es.add(p.Errorf("path %q has more than %d segments", s, maxPathSegments))
		return nil, false
	}
	for _, seg := range segs {
		if seg == "" {
			es.add(p.Errorf("path %q has an empty segment: write names separated by single dots, like user.address.city", s))
			return nil, false
		}
	}
	return segs, true
}

// trie is a set of paths: each node is one segment.
type trie struct {
	children map[string]*trie
	// end marks the end of a configured path.
	end bool
	// to is the new name of the segment (rename), toJSON the same as a
	// JSON string.
	to     string
	toJSON []byte
	// targets holds the new names of the renamed children, so that the
	// streaming filter can drop a member a renamed sibling replaces.
	targets map[string]bool
}

func (t *trie) insert(segs []string) *trie {
	n := t
	for _, s := range segs {
		if n.children == nil {
			n.children = make(map[string]*trie)
		}
		c := n.children[s]
		if c == nil {
			c = &trie{}
			n.children[s] = c
		}
		n = c
	}
	n.end = true
	return n
}

// compilePaths builds a trie from a list of dotted paths.
func compilePaths(list []string, p config.Path, es *errs) *trie {
	if len(list) == 0 {
		return nil
	}
	t := &trie{}
	for i, s := range list {
		if segs, ok := parsePath(s, p.At(i), es); ok {
			t.insert(segs)
		}
	}
	return t
}

// compileRenames builds a trie whose path ends carry the new names.
func compileRenames(m map[string]string, p config.Path, es *errs) *trie {
	if len(m) == 0 {
		return nil
	}
	t := &trie{}
	for _, k := range sortedKeys(m) {
		kp := p.Key(k)
		segs, ok := parsePath(k, kp, es)
		to := m[k]
		switch {
		case !ok:
			continue
		case to == "" || strings.Contains(to, "."):
			es.add(kp.Errorf("the new name must be one non-empty segment without dots (it replaces the last segment of the path)"))
			continue
		case to == segs[len(segs)-1]:
			es.add(kp.Errorf("renames a member to itself"))
			continue
		}
		end := t.insert(segs)
		end.to, end.toJSON = to, quoteJSON(to)
		n := t
		for _, seg := range segs[:len(segs)-1] {
			n = n.children[seg]
		}
		if n.targets == nil {
			n.targets = make(map[string]bool)
		}
		n.targets[to] = true
	}
	return t
}

// quoteJSON returns s as a JSON string, without HTML escaping.
func quoteJSON(s string) []byte {
	var b bytes.Buffer
	_ = encodeJSON(&b, s) // a string always encodes
	return b.Bytes()
}

// deny removes the paths of t from v.
func deny(v any, t *trie) {
	switch x := v.(type) {
	case map[string]any:
		for k, ct := range t.children {
			child, ok := x[k]
			if !ok {
				continue
			}
			if ct.end {
				delete(x, k)
				continue
			}
			deny(child, ct)
		}
	case []any:
		for _, e := range x {
			deny(e, t)
		}
	}
}

// renameAll renames the members named by t in v; deeper paths are renamed
// first, so the paths all name the document as it came.
func renameAll(v any, t *trie) {
	switch x := v.(type) {
	case map[string]any:
		for k, ct := range t.children {
			child, ok := x[k]
			if !ok {
				continue
			}
			if len(ct.children) > 0 {
				renameAll(child, ct)
			}
			if ct.to != "" {
				delete(x, k)
				x[ct.to] = child
			}
		}
	case []any:
		for _, e := range x {
			renameAll(e, t)
		}
	}
}

// yamlToValue converts a YAML node into a JSON value.
func yamlToValue(n *yaml.Node, p config.Path, es *errs, depth int) (any, bool) {
	if depth > maxPathSegments {
		es.add(p.Errorf("value is nested too deeply"))
		return nil, false
	}
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	switch n.Kind {
	case yaml.ScalarNode:
		switch n.ShortTag() {
		case "!!null":
			return nil, true
		case "!!bool":
			var b bool
			if err := n.Decode(&b); err != nil {
				es.add(p.Errorf("is not a boolean"))
				return nil, false
			}
			return b, true
		case "!!int", "!!float":
			if isJSONNumber(n.Value) {
				return json.Number(n.Value), true // as written: 1.50 stays 1.50
			}
		}
		switch n.ShortTag() {
		case "!!int":
			var i int64
			if err := n.Decode(&i); err != nil {
				es.add(p.Errorf("is not a whole number that fits in 64 bits"))
				return nil, false
			}
			return json.Number(strconv.FormatInt(i, 10)), true
		case "!!float":
			var f float64
			if err := n.Decode(&f); err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
				es.add(p.Errorf("is not a finite number (JSON has no NaN or infinity)"))
				return nil, false
			}
			return json.Number(strconv.FormatFloat(f, 'g', -1, 64)), true
		case "!!str":
			t, err := parseTemplate(n.Value, false)
			if err != nil {
				es.add(p.Errorf("%s", err.Error()))
				return nil, false
			}
			if t.static() {
				return t.literal(), true
			}
			return t, true
		}
		es.add(p.Errorf("unsupported YAML value of type %s; quote it to make it a string", n.ShortTag()))
		return nil, false
	case yaml.SequenceNode:
		out := make([]any, 0, len(n.Content))
		ok := true
		for i, c := range n.Content {
			v, good := yamlToValue(c, p.At(i), es, depth+1)
			ok = ok && good
			out = append(out, v)
		}
		return out, ok
	case yaml.MappingNode:
		out := make(map[string]any, len(n.Content)/2)
		ok := true
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i]
			if k.Kind != yaml.ScalarNode {
				es.add(p.Errorf("object keys must be strings"))
				ok = false
				continue
			}
			v, good := yamlToValue(n.Content[i+1], p.Key(k.Value), es, depth+1)
			ok = ok && good
			out[k.Value] = v
		}
		return out, ok
	}
	es.add(p.Errorf("must be a JSON-compatible value"))
	return nil, false
}

// isJSONNumber reports whether s is a number in JSON syntax.
func isJSONNumber(s string) bool {
	return s != "" && (s[0] == '-' || s[0] >= '0' && s[0] <= '9') && json.Valid([]byte(s))
}

// materialize returns a fresh copy of v for one document, with templates
// rendered for in.
func materialize(v any, in *input) any {
	switch x := v.(type) {
	case *template:
		return x.render(in, false)
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = materialize(e, in)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = materialize(e, in)
		}
		return out
	}
	return v
}

// pathValue is one compiled set or add. v is decoded from YAML once:
// nil, bool, json.Number, string, *template (a string with variables),
// map[string]any or []any.
type pathValue struct {
	segs []string
	v    any
}

func compilePathValues(m map[string]yaml.Node, p config.Path, es *errs) []pathValue {
	var out []pathValue
	for _, k := range sortedKeys(m) {
		kp := p.Key(k)
		segs, ok := parsePath(k, kp, es)
		n := m[k]
		v, good := yamlToValue(&n, kp, es, 0)
		if ok && good {
			out = append(out, pathValue{segs: segs, v: v})
		}
	}
	return out
}

// setPath sets segs in v to a fresh copy of val; with onlyIfAbsent an
// existing member is left alone. Missing parent objects are created.
func setPath(v any, segs []string, val any, onlyIfAbsent bool, in *input) {
	switch x := v.(type) {
	case map[string]any:
		k := segs[0]
		if len(segs) == 1 {
			if _, ok := x[k]; ok && onlyIfAbsent {
				return
			}
			x[k] = materialize(val, in)
			return
		}
		child, ok := x[k]
		if !ok || child == nil {
			child = make(map[string]any)
			x[k] = child
		}
		setPath(child, segs[1:], val, onlyIfAbsent, in)
	case []any:
		for _, e := range x {
			setPath(e, segs, val, onlyIfAbsent, in)
		}
	}
}
