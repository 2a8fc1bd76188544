package transform

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/portico-gateway/portico/internal/config"
)

// treeFilter is the reference response filter: decode the whole document,
// apply the operations to the tree, encode it again.
func treeFilter(src []byte, allowT, denyT, renameT *trie, out *bytes.Buffer) bool {
	v, ok := decodeJSON(src)
	if !ok {
		return false
	}
	if allowT != nil {
		if v, ok = allow(v, allowT); !ok {
			return false
		}
	}
	if denyT != nil {
		deny(v, denyT)
	}
	if renameT != nil {
		renameAll(v, renameT)
	}
	return encodeJSON(out, v) == nil
}

// allow keeps only the paths of t in v. It reports false when nothing of
// v is kept: an object member holding a scalar where t expects an object
// goes away.
func allow(v any, t *trie) (any, bool) {
	if t.end {
		return v, true
	}
	switch x := v.(type) {
	case map[string]any:
		for k, child := range x {
			ct := t.children[k]
			if ct == nil {
				delete(x, k)
				continue
			}
			nv, keep := allow(child, ct)
			if !keep {
				delete(x, k)
				continue
			}
			x[k] = nv
		}
		return x, true
	case []any:
		out := x[:0]
		for _, e := range x {
			if nv, keep := allow(e, t); keep {
				out = append(out, nv)
			}
		}
		return out, true
	}
	return nil, false
}

// docGen writes random JSON documents as text, so that they carry
// escapes, odd numbers and white space as an upstream might send them.
type docGen struct {
	r    *rand.Rand
	b    strings.Builder
	keys []string
}

var (
	genNumbers = []string{"0", "-0", "-0.0", "1", "1e21", "1E+2", "-1.5e-3", "12345678901234567890", "3.14159", "19.99", "100"}
	genStrings = []string{`""`, `"plain"`, `"a\"b"`, `"\\"`, `"\/"`, `"\n\t\r\b\f"`, `"\u00e9t\u00E9"`, `"été"`, `"\ud83d\ude00"`, `"😀"`, `"<a&b>"`, `"\u2028"`, `"\u0000"`}
)

func (g *docGen) ws() {
	if g.r.IntN(4) == 0 {
		g.b.WriteString([]string{" ", "\n  ", "\t", "\r\n"}[g.r.IntN(4)])
	}
}

// key writes name as a JSON string, sometimes with escapes.
func (g *docGen) key(name string) {
	if g.r.IntN(5) == 0 {
		g.b.WriteByte('"')
		for _, c := range name {
			g.b.WriteString(`\u` + strconv.FormatInt(int64(0x10000+c), 16)[1:])
		}
		g.b.WriteByte('"')
		return
	}
	q, _ := json.Marshal(name)
	g.b.Write(q)
}

func (g *docGen) value(depth int) {
	g.ws()
	n := g.r.IntN(10)
	if depth >= 5 {
		n = 9
	}
	switch {
	case n < 4:
		g.b.WriteByte('{')
		perm := g.r.Perm(len(g.keys))[:g.r.IntN(len(g.keys))]
		for i, k := range perm {
			if i > 0 {
				g.b.WriteByte(',')
			}
			g.ws()
			g.key(g.keys[k])
			g.ws()
			g.b.WriteByte(':')
			g.value(depth + 1)
		}
		g.ws()
		g.b.WriteByte('}')
	case n < 6:
		g.b.WriteByte('[')
		for i := range g.r.IntN(4) {
			if i > 0 {
				g.b.WriteByte(',')
			}
			g.value(depth + 1)
		}
		g.ws()
		g.b.WriteByte(']')
	default:
		switch g.r.IntN(4) {
		case 0:
			g.b.WriteString(genNumbers[g.r.IntN(len(genNumbers))])
		case 1:
			g.b.WriteString(genStrings[g.r.IntN(len(genStrings))])
		case 2:
			g.b.WriteString([]string{"true", "false", "null"}[g.r.IntN(3)])
		default:
			g.b.WriteString(`"v` + strconv.Itoa(g.r.IntN(100)) + `"`)
		}
	}
	g.ws()
}

func (g *docGen) path() []string {
	segs := make([]string, 1+g.r.IntN(3))
	for i := range segs {
		segs[i] = g.keys[g.r.IntN(len(g.keys))]
	}
	return segs
}

// renames picks renames whose outcome the reference defines: no two
// members of one object renamed to one name, and no new name that is
// also a renamed path at the same level.
func (g *docGen) renames() map[string]string {
	m := map[string]string{}
	for range g.r.IntN(4) {
		segs := g.path()
		to := g.keys[g.r.IntN(len(g.keys))]
		if to == segs[len(segs)-1] {
			continue
		}
		m[strings.Join(segs, ".")] = to
	}
	out := map[string]string{}
	for _, k := range sortedKeys(m) {
		if renameClashes(out, k, m[k]) {
			continue
		}
		out[k] = m[k]
	}
	return out
}

// renameClashes reports whether k → to would share its new name with
// another rename in m, or take a name that another rename walks through.
func renameClashes(m map[string]string, k, to string) bool {
	parent := func(k string) string { return k[:strings.LastIndexByte(k, '.')+1] }
	under := func(p, name string) bool { return strings.HasPrefix(p, name+".") || p == name }
	for k2, to2 := range m {
		if parent(k2) == parent(k) && to2 == to || under(k2, parent(k)+to) || under(k, parent(k2)+to2) {
			return true
		}
	}
	return false
}

// TestFilterMatchesTree: for random documents and paths, the streaming
// filter and the tree filter agree once both outputs are decoded.
func TestFilterMatchesTree(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(1, 2))
	g := &docGen{r: r, keys: []string{"a", "b", "id", "é", `q"k`, "items"}}
	filtered := 0
	for i := range 5000 {
		g.b.Reset()
		g.value(0)
		doc := []byte(g.b.String())
		var list []string
		for range 1 + r.IntN(3) {
			list = append(list, strings.Join(g.path(), "."))
		}
		var es errs
		ren := g.renames()
		rt := &responseTransform{rename: compileRenames(ren, config.Path{}, &es)}
		switch r.IntN(3) {
		case 0:
			rt.allow = compilePaths(list, config.Path{}, &es)
		case 1:
			rt.deny = compilePaths(list, config.Path{}, &es)
		}
		if len(es) > 0 {
			t.Fatal(joinErrs(es))
		}
		var got, want bytes.Buffer
		gotOK := rt.filter(doc, &got)
		wantOK := treeFilter(doc, rt.allow, rt.deny, rt.rename, &want)
		if gotOK != wantOK {
			t.Fatalf("case %d %s: got ok=%t, want %t", i, doc, gotOK, wantOK)
		}
		if !gotOK {
			continue
		}
		filtered++
		gv, ok1 := decodeJSON(got.Bytes())
		wv, ok2 := decodeJSON(want.Bytes())
		if !ok1 || !ok2 || !reflect.DeepEqual(gv, wv) {
			t.Fatalf("case %d: paths %q (allow %t, deny %t), renames %v\nin   %s\ngot  %s\nwant %s", i, list, rt.allow != nil, rt.deny != nil, ren, doc, got.Bytes(), want.Bytes())
		}
	}
	if filtered < 2500 {
		t.Errorf("got %d of 5000 documents filtered, want most of them", filtered)
	}
}
