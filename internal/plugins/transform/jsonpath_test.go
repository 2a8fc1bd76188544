package transform

import (
	"bytes"
	"encoding/json"
	"net/url"
	"strings"
	"testing"

	"github.com/portico-gateway/portico/internal/config"
)

func TestFilter(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name          string
		allow, deny   []string
		rename        map[string]string
		in, want      string
		wantUnchanged bool
	}{
		{"allow drops scalars where objects are expected", []string{"a.b"}, nil, nil,
			`{"a":[{"b":1,"c":2},3,"x",{"c":1}],"z":1}`, `{"a":[{"b":1},{}]}`, false},
		{"allow on a root array", []string{"id"}, nil, nil, `[{"id":1,"x":2},{"id":2}]`, `[{"id":1},{"id":2}]`, false},
		{"allow keeps a listed path whole", []string{"user"}, nil, nil, `{"user":{"a":{"b":1}},"x":1}`, `{"user":{"a":{"b":1}}}`, false},
		{"allow of a scalar document leaves it", []string{"a"}, nil, nil, `"text"`, "", true},
		{"deny through nested arrays", nil, []string{"a.b.c"}, nil, `{"a":[{"b":[{"c":1,"d":2}]},{"b":{"c":1}}]}`, `{"a":[{"b":[{"d":2}]},{"b":{}}]}`, false},
		{"deny of a missing path", nil, []string{"x.y"}, nil, `{"x":1}`, `{"x":1}`, false},
		{"rename nested and parent", nil, nil, map[string]string{"u": "user", "u.n": "name"}, `{"u":{"n":"a"}}`, `{"user":{"name":"a"}}`, false},
		{"invalid JSON", nil, []string{"a"}, nil, `{"a":1,}`, "", true},
		{"two documents", nil, []string{"a"}, nil, `{} {}`, "", true},
		{"HTML is not escaped", nil, []string{"a"}, nil, `{"b":"<a&b>"}`, `{"b":"<a&b>"}`, false},
		{"members keep their order", nil, []string{"x"}, nil, `{"z":1,"x":2,"a":{"c":1,"b":2}}`, `{"z":1,"a":{"c":1,"b":2}}`, false},
		{"white space goes, values stay as sent", nil, []string{"x"}, nil, "{ \"s\" : \"a\\u00e9 \\\" b\" ,\n \"n\": [ 1e21 , -0.0 , 12345678901234567890 ] }",
			`{"s":"a\u00e9 \" b","n":[1e21,-0.0,12345678901234567890]}`, false},
		{"escaped keys match", []string{"ab.c"}, nil, nil, `{"\u0061b":{"c":1,"d":2},"x":1}`, `{"\u0061b":{"c":1}}`, false},
		{"renamed member replaces a sibling", nil, nil, map[string]string{"a": "b"}, `{"b":1,"a":2,"c":3}`, `{"b":2,"c":3}`, false},
		{"denied rename source leaves the sibling", nil, []string{"a"}, map[string]string{"a": "b"}, `{"b":1,"a":2}`, `{"b":1}`, false},
		{"new names are escaped", nil, nil, map[string]string{"a": `q"<`}, `{"a":1}`, `{"q\"<":1}`, false},
		{"allow of a scalar array element", []string{"a"}, nil, nil, `[1,{"a":1},[2,{"a":2,"b":3}],null]`, `[{"a":1},[{"a":2}]]`, false},
		{"nesting at the limit", nil, []string{"a"}, nil, strings.Repeat("[", 512) + strings.Repeat("]", 512), strings.Repeat("[", 512) + strings.Repeat("]", 512), false},
		{"nesting past the limit", nil, []string{"a"}, nil, strings.Repeat("[", 513) + strings.Repeat("]", 513), "", true},
		{"trailing comma in an array", nil, []string{"a"}, nil, `[1,]`, "", true},
		{"leading zero", nil, []string{"a"}, nil, `{"b":01}`, "", true},
		{"bad escape", nil, []string{"a"}, nil, `{"b":"\x"}`, "", true},
		{"control character in a string", nil, []string{"a"}, nil, "{\"b\":\"\x01\"}", "", true},
		{"empty document", nil, []string{"a"}, nil, "  ", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var es errs
			rt := &responseTransform{
				allow:  compilePaths(tt.allow, config.Path{}, &es),
				deny:   compilePaths(tt.deny, config.Path{}, &es),
				rename: compileRenames(tt.rename, config.Path{}, &es),
			}
			if len(es) > 0 {
				t.Fatal(joinErrs(es))
			}
			var out bytes.Buffer
			ok := rt.filter([]byte(tt.in), &out)
			if ok == tt.wantUnchanged {
				t.Fatalf("got ok=%t, want %t", ok, !tt.wantUnchanged)
			}
			if ok && out.String() != tt.want {
				t.Errorf("got %s, want %s", out.String(), tt.want)
			}
		})
	}
}

func FuzzFilter(f *testing.F) {
	for _, s := range []string{`{"a":{"b":[1,{"c":2}]}}`, `[]`, `null`, `[{"a":1},{"a":[{"b":2}]}]`, `{"a":`} {
		f.Add([]byte(s))
	}
	var es errs
	tries := []*responseTransform{
		{allow: compilePaths([]string{"a.b", "a.c", "x"}, config.Path{}, &es)},
		{deny: compilePaths([]string{"a.b.c", "a"}, config.Path{}, &es), rename: compileRenames(map[string]string{"a.b": "z", "x": "y"}, config.Path{}, &es)},
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		for _, rt := range tries {
			var out, ref bytes.Buffer
			ok := rt.filter(in, &out)
			if ok && !json.Valid(out.Bytes()) {
				t.Errorf("filter of %q wrote invalid JSON %q", in, out.Bytes())
			}
			if nesting(in) > maxDepth {
				continue
			}
			if refOK := treeFilter(in, rt.allow, rt.deny, rt.rename, &ref); ok != refOK {
				t.Errorf("filter of %q: got ok=%t, want %t as the tree filter", in, ok, refOK)
			}
		}
	})
}

// FuzzQueryOps: whatever the incoming query, set and add values arrive
// decoded as configured and removed parameters are gone.
func FuzzQueryOps(f *testing.F) {
	for _, s := range []string{"", "a=1&b=2", "drop=1&drop=2&k=%zz", "old=1&set=x&set=y", "&&=&a"} {
		f.Add(s)
	}
	var es errs
	ops := compileQueryOps(&Ops{Remove: []string{"drop"}, Rename: map[string]string{"old": "new"},
		Set: map[string]string{"set": "v w&"}, Add: map[string]string{"add": "a"}}, config.Path{}, &es)
	f.Fuzz(func(t *testing.T, raw string) {
		if strings.ContainsAny(raw, ";") {
			return
		}
		out, _ := ops.apply(raw, []string{"v w&", "a"})
		q, err := url.ParseQuery(out)
		if err != nil {
			if _, ierr := url.ParseQuery(raw); ierr == nil {
				t.Fatalf("%q → %q does not parse: %s", raw, out, err.Error())
			}
			return
		}
		if got := q["set"]; len(got) != 1 || got[0] != "v w&" {
			t.Errorf("%q → %q: got set=%q, want one \"v w&\"", raw, out, got)
		}
		if len(q["drop"]) > 0 || len(q["old"]) > 0 || len(q["add"]) == 0 {
			t.Errorf("%q → %q: remove, rename or add not applied", raw, out)
		}
	})
}

// nesting returns the deepest nesting of objects and arrays in src.
func nesting(src []byte) int {
	depth, most, inStr := 0, 0, false
	for i := 0; i < len(src); i++ {
		switch c := src[i]; {
		case inStr && c == '\\':
			i++
		case c == '"':
			inStr = !inStr
		case inStr:
		case c == '{' || c == '[':
			depth++
			most = max(most, depth)
		case c == '}' || c == ']':
			depth--
		}
	}
	return most
}
