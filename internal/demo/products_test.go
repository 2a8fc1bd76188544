package demo

import (
	"bufio"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

func TestProductsList(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, query  string
		wantCategory string
		wantCount    int
	}{
		{"every product", "", "", 20},
		{"books", "?category=books", "books", 5},
		{"garden", "?category=garden", "garden", 5},
		{"other parameters ignored", "?category=kitchen&page=2", "kitchen", 5},
	}
	srv := serve(t, newProducts(fixedClock))
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			resp, b := call(t, srv.URL, http.MethodGet, "/products"+tt.query, "", map[string]string{"X-Request-ID": "rid-1"})
			m := checkJSON(t, resp, b, http.StatusOK, "products")
			if cc := resp.Header.Get("Cache-Control"); cc != productsCacheControl {
				t.Errorf("Cache-Control: got %q, want %q", cc, productsCacheControl)
			}
			if got, _ := m["category"].(string); got != tt.wantCategory {
				t.Errorf("category: got %q, want %q", got, tt.wantCategory)
			}
			list, _ := m["products"].([]any)
			if len(list) != tt.wantCount || m["count"] != float64(tt.wantCount) {
				t.Fatalf("products: got %d (count %v), want %d", len(list), m["count"], tt.wantCount)
			}
			for _, it := range list {
				p, _ := it.(map[string]any)
				if tt.wantCategory != "" && p["category"] != tt.wantCategory {
					t.Errorf("product %v: category got %v, want %s", p["sku"], p["category"], tt.wantCategory)
				}
				if s, _ := p["sku"].(string); s == "" || p["currency"] != "EUR" {
					t.Errorf("product without sku or currency: %v", p)
				}
				if price, _ := p["price"].(float64); price <= 0 {
					t.Errorf("product %v: price got %v, want > 0", p["sku"], p["price"])
				}
			}
			if got := m["generated_at"]; got != "2026-05-04T12:00:00Z" {
				t.Errorf("generated_at: got %v, want the clock's 2026-05-04T12:00:00Z", got)
			}
			if served, _ := m["served"].(float64); served < 1 {
				t.Errorf("served: got %v, want >= 1", m["served"])
			}
			if got := m["caller"].(map[string]any)["request_id"]; got != "rid-1" {
				t.Errorf("caller.request_id: got %v, want rid-1", got)
			}
		})
	}
}

// TestProductsServedCounts checks that "served" counts the lists built,
// HEAD included, and that errors and health checks do not count.
func TestProductsServedCounts(t *testing.T) {
	t.Parallel()
	srv := serve(t, newProducts(fixedClock))
	served := func() float64 {
		t.Helper()
		resp, b := call(t, srv.URL, http.MethodGet, "/products?category=books", "", nil)
		return checkJSON(t, resp, b, http.StatusOK, "products")["served"].(float64)
	}
	if got := served(); got != 1 {
		t.Fatalf("first list: served got %v, want 1", got)
	}
	if resp, _ := call(t, srv.URL, http.MethodHead, "/products", "", nil); resp.StatusCode != http.StatusOK {
		t.Errorf("HEAD /products: got %d, want 200", resp.StatusCode)
	}
	for _, rq := range []struct {
		method, path string
		want         int
	}{
		{http.MethodGet, "/products?category=toys", http.StatusNotFound},
		{http.MethodPost, "/products", http.StatusMethodNotAllowed},
		{http.MethodGet, "/health", http.StatusOK},
		{http.MethodGet, "/products/1", http.StatusNotFound},
	} {
		if resp, b := call(t, srv.URL, rq.method, rq.path, "", nil); resp.StatusCode != rq.want {
			t.Errorf("%s %s: got %d, want %d; body %s", rq.method, rq.path, resp.StatusCode, rq.want, b)
		}
	}
	if got := served(); got != 3 {
		t.Errorf("after a HEAD, errors and a health check: served got %v, want 3", got)
	}
}

func TestProductsUnknownCategory(t *testing.T) {
	t.Parallel()
	srv := serve(t, newProducts(fixedClock))
	resp, b := call(t, srv.URL, http.MethodGet, "/products?category=toys", "", nil)
	m := checkJSON(t, resp, b, http.StatusNotFound, "products")
	if cc := resp.Header.Get("Cache-Control"); cc != "" {
		t.Errorf("Cache-Control on an error: got %q, want none", cc)
	}
	details, _ := m["details"].([]any)
	if len(details) != 1 || details[0] != "the categories are books, electronics, garden, kitchen" {
		t.Errorf("details: got %v, want the four categories", details)
	}
}

func TestProductsCatalogue(t *testing.T) {
	t.Parallel()
	seen := map[string]bool{}
	for _, p := range seedProducts() {
		if seen[p.SKU] {
			t.Errorf("SKU %s appears twice", p.SKU)
		}
		seen[p.SKU] = true
	}
	if got := newProducts(fixedClock).categories(); !slices.Equal(got, []string{"books", "electronics", "garden", "kitchen"}) {
		t.Errorf("categories: got %v", got)
	}
}

// TestTourCacheGrep checks that the grep the tour prints pulls the cache
// headers, "served" and "generated_at" out of `curl -si` output, and
// nothing else (RE2 reads the expression as grep -E does). The cache
// headers are added here the way the gateway adds them to a hit.
func TestTourCacheGrep(t *testing.T) {
	t.Parallel()
	p := newProducts(fixedClock)
	srv := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Status", "portico; hit; ttl=57")
		w.Header().Set("Age", "3")
		w.Header().Set("X-Cache", "HIT")
		p.ServeHTTP(w, r)
	}))
	path, _ := strings.CutPrefix(tourProductsPath, "/api")
	resp, err := http.Get(srv.URL + path)
	if err != nil {
		t.Fatalf("GET %s: %s", path, err)
	}
	defer resp.Body.Close()
	dump, err := httputil.DumpResponse(resp, true) // what curl -si prints
	if err != nil {
		t.Fatalf("dump response: %s", err)
	}

	expr, ok := strings.CutPrefix(cacheGrep, `grep -i -o -E '`)
	if ok {
		expr, ok = strings.CutSuffix(expr, `'`)
	}
	if !ok {
		t.Fatalf("cacheGrep has an unexpected shape: %s", cacheGrep)
	}
	re := regexp.MustCompile(`(?i)` + expr)
	var got []string
	sc := bufio.NewScanner(strings.NewReader(string(dump)))
	for sc.Scan() { // grep works line by line
		line := strings.TrimSuffix(sc.Text(), "\r")
		got = append(got, re.FindAllString(line, -1)...)
	}
	want := []string{
		"Age: 3",
		"Cache-Status: portico; hit; ttl=57",
		"X-Cache: HIT",
		`"generated_at":"2026-05-04T12:00:00Z"`,
		`"served":` + strconv.Itoa(1),
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("grep output:\ngot  %q\nwant %q\nof\n%s", got, want, dump)
	}
}

func FuzzProducts(f *testing.F) {
	for _, s := range []string{"", "category=books", "category=", "category=%zz", "category=books&category=garden", "category=toys"} {
		f.Add(s)
	}
	p := newProducts(fixedClock)
	f.Fuzz(func(t *testing.T, query string) {
		req, err := http.NewRequest(http.MethodGet, "http://products.test/products?"+query, nil)
		if err != nil {
			return
		}
		rec := httptest.NewRecorder()
		p.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK && rec.Code != http.StatusNotFound {
			t.Errorf("GET /products?%s: got %d, want 200 or 404", query, rec.Code)
		}
	})
}
