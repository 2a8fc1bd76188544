package router

import (
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
)

// benchRules returns n rules in the shape of a large deployment: per
// service an exact "/svcN/items" or a prefix "/svcN/items", one in ten of
// them bound to the host "svcN.example.com" and the rest to any host.
func benchRules(n int) []Rule[int] {
	rules := make([]Rule[int], 0, n)
	for i := range n {
		base := "/svc" + strconv.Itoa(i) + "/items"
		r := Rule[int]{Value: i, Paths: []string{base}}
		if i%2 == 0 {
			r.Paths = []string{"=" + base}
			r.Methods = []string{"GET", "POST"}
		}
		if i%10 == 3 {
			r.Hosts = []string{"svc" + strconv.Itoa(i) + ".example.com"}
		}
		rules = append(rules, r)
	}
	return rules
}

func BenchmarkLookup(b *testing.B) {
	for _, n := range []int{10, 10_000} {
		table, err := Compile(benchRules(n))
		if err != nil {
			b.Fatal(err)
		}
		// Rules near the end of the list, to show that position does not
		// matter: an even one is exact, an odd one a prefix, and i%10 == 3
		// is host-bound.
		exact, prefix, hosted := n-2, n-1, n-7
		cases := []struct {
			name, host, path string
			want             Result
		}{
			{"exact", "api.example.net", "/svc" + strconv.Itoa(exact) + "/items", Matched},
			{"deep-prefix", "api.example.net", "/svc" + strconv.Itoa(prefix) + "/items/a/b/c/d/e/f", Matched},
			{"host", "svc" + strconv.Itoa(hosted) + ".example.com:8080", "/svc" + strconv.Itoa(hosted) + "/items/1", Matched},
			{"miss", "api.example.net", "/nothing/here/at/all", NotFound},
		}
		for _, c := range cases {
			b.Run(strconv.Itoa(n)+"-routes/"+c.name, func(b *testing.B) {
				r := httptest.NewRequest(http.MethodGet, c.path, nil)
				r.Host = c.host
				if _, res := table.Lookup(r, c.path); res != c.want {
					b.Fatalf("Lookup(%s %s): got %v, want %v", c.host, c.path, res, c.want)
				}
				b.ReportAllocs()
				for b.Loop() {
					table.Lookup(r, c.path)
				}
			})
		}
	}
}
