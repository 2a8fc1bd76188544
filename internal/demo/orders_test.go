package demo

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
)

func TestOrdersList(t *testing.T) {
	t.Parallel()
	srv := serve(t, newTestOrders())
	resp, b := call(t, srv.URL, http.MethodGet, "/", "", map[string]string{"X-User-ID": "alice", "X-Request-ID": "r-7"})
	m := checkJSON(t, resp, b, http.StatusOK, "orders")
	if len(b) <= 1024 {
		t.Errorf("list body: got %d bytes, want more than 1 KiB", len(b))
	}
	list, _ := m["orders"].([]any)
	if len(list) != 8 || m["count"] != float64(8) {
		t.Errorf("orders: got %d (count %v), want 8", len(list), m["count"])
	}
	c := m["caller"].(map[string]any)
	if c["user_id"] != "alice" || c["request_id"] != "r-7" {
		t.Errorf("caller: got %v, want user_id alice and request_id r-7", c)
	}
}

func TestOrdersSeedIsConsistent(t *testing.T) {
	t.Parallel()
	for i, o := range seedOrders() {
		if o.ID != int64(i+1) {
			t.Errorf("order %d: id %d, want %d", i, o.ID, i+1)
		}
		if len(o.Items) < 2 {
			t.Errorf("order %d: %d items, want at least 2", o.ID, len(o.Items))
		}
		var total int64
		for _, it := range o.Items {
			total += int64(it.Quantity) * it.UnitPrice
		}
		if total != o.Total {
			t.Errorf("order %d: total %d, want %d", o.ID, o.Total, total)
		}
	}
}

func TestOrdersGet(t *testing.T) {
	t.Parallel()
	tests := []struct {
		path   string
		status int
		id     float64
	}{
		{"/1", http.StatusOK, 1},
		{"/7", http.StatusOK, 7},
		{"/8", http.StatusOK, 8},
		{"/0", http.StatusNotFound, 0},
		{"/999", http.StatusNotFound, 0},
		{"/-1", http.StatusNotFound, 0},
		{"/seven", http.StatusNotFound, 0},
		{"/99999999999999999999", http.StatusNotFound, 0},
	}
	srv := serve(t, newTestOrders())
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			t.Parallel()
			resp, b := call(t, srv.URL, http.MethodGet, tt.path, "", nil)
			m := checkJSON(t, resp, b, tt.status, "orders")
			if tt.status != http.StatusOK {
				if m["error"] != "order not found" {
					t.Errorf("error: got %v, want %q", m["error"], "order not found")
				}
				return
			}
			o, _ := m["order"].(map[string]any)
			if o["id"] != tt.id {
				t.Errorf("order.id: got %v, want %v", o["id"], tt.id)
			}
		})
	}
}

func TestOrdersCreate(t *testing.T) {
	t.Parallel()
	srv := serve(t, newTestOrders())
	resp, b := call(t, srv.URL, http.MethodPost, "/", tourOrderBody, map[string]string{"X-User-ID": "bob"})
	var got orderBody
	checkJSON(t, resp, b, http.StatusCreated, "orders")
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatalf("decode: %s", err)
	}
	want := order{
		ID: 9, Customer: "bob", Status: "pending", Currency: "EUR", Total: 2500, CreatedAt: testNow,
		Items: []lineItem{{SKU: "MUG-01", Name: "MUG-01", Quantity: 2, UnitPrice: 1250}},
	}
	if fmt.Sprint(got.Order) != fmt.Sprint(want) {
		t.Errorf("order: got %+v, want %+v", got.Order, want)
	}
	if loc := resp.Header.Get("Location"); loc != "/api/orders/9" {
		t.Errorf("Location: got %q, want %q", loc, "/api/orders/9")
	}

	// The new order is stored and listed.
	resp, b = call(t, srv.URL, http.MethodGet, "/9", "", nil)
	checkJSON(t, resp, b, http.StatusOK, "orders")
	resp, b = call(t, srv.URL, http.MethodGet, "/", "", nil)
	if m := checkJSON(t, resp, b, http.StatusOK, "orders"); m["count"] != float64(9) {
		t.Errorf("count after create: got %v, want 9", m["count"])
	}
}

func TestOrdersCreateDefaultsAndPrefix(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		body     string
		header   map[string]string
		customer string
		currency string
		location string
	}{
		{"guest", `{"items":[{"sku":"A","quantity":1,"unit_price":1}]}`, nil, "guest", "EUR", "/api/orders/9"},
		{"explicit", `{"customer":"carol","currency":"USD","items":[{"sku":"A","quantity":1,"unit_price":1}]}`,
			map[string]string{"X-User-ID": "alice"}, "carol", "USD", "/api/orders/9"},
		{"forwarded prefix", `{"items":[{"sku":"A","quantity":1,"unit_price":1}]}`,
			map[string]string{"X-Forwarded-Prefix": "/shop/orders/"}, "guest", "EUR", "/shop/orders/9"},
		{"unsafe prefix ignored", `{"items":[{"sku":"A","quantity":1,"unit_price":1}]}`,
			map[string]string{"X-Forwarded-Prefix": "//evil.example"}, "guest", "EUR", "/api/orders/9"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := serve(t, newTestOrders())
			resp, b := call(t, srv.URL, http.MethodPost, "/", tt.body, tt.header)
			o := checkJSON(t, resp, b, http.StatusCreated, "orders")["order"].(map[string]any)
			if o["customer"] != tt.customer || o["currency"] != tt.currency {
				t.Errorf("customer, currency: got %v, %v, want %s, %s", o["customer"], o["currency"], tt.customer, tt.currency)
			}
			if items := o["items"].([]any); items[0].(map[string]any)["name"] != "A" {
				t.Errorf("item name: got %v, want the sku A", items[0])
			}
			if loc := resp.Header.Get("Location"); loc != tt.location {
				t.Errorf("Location: got %q, want %q", loc, tt.location)
			}
		})
	}
}

func TestOrdersCreateValidation(t *testing.T) {
	t.Parallel()
	manyItems := `{"items":[` + strings.TrimSuffix(strings.Repeat(`{"sku":"A","quantity":1,"unit_price":1},`, maxItems+1), ",") + `]}`
	tests := []struct {
		name, body string
		status     int
		details    []string
	}{
		{"no items", `{}`, http.StatusUnprocessableEntity, []string{"items must list at least one item"}},
		{"too many items", manyItems, http.StatusUnprocessableEntity, []string{"items must list at most 50 items"}},
		{"bad item", `{"currency":"eur","items":[{"quantity":0,"unit_price":-5}]}`, http.StatusUnprocessableEntity, []string{
			"currency must be", "items[0].sku is required", "items[0].quantity must be between 1 and 1000", "items[0].unit_price must be between 1",
		}},
		{"second item", `{"items":[{"sku":"A","quantity":1,"unit_price":1},{"sku":"B","quantity":1001,"unit_price":1}]}`,
			http.StatusUnprocessableEntity, []string{"items[1].quantity must be between 1 and 1000"}},
		{"long customer", `{"customer":"` + strings.Repeat("c", 201) + `","items":[{"sku":"A","quantity":1,"unit_price":1}]}`,
			http.StatusUnprocessableEntity, []string{"customer must be at most 200 bytes"}},
		{"wrong type", `{"items":[{"sku":"A","quantity":"2","unit_price":1}]}`, http.StatusUnprocessableEntity, []string{"items.quantity must be an integer"}},
		{"bad JSON", `{"items":[`, http.StatusBadRequest, []string{"the body must be one JSON object"}},
	}
	srv := serve(t, newTestOrders())
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			resp, b := call(t, srv.URL, http.MethodPost, "/", tt.body, nil)
			m := checkJSON(t, resp, b, tt.status, "orders")
			got, _ := m["details"].([]any)
			if len(got) != len(tt.details) {
				t.Fatalf("details: got %v, want %d entries starting %q", got, len(tt.details), tt.details)
			}
			for i, want := range tt.details {
				if s, _ := got[i].(string); !strings.HasPrefix(s, want) {
					t.Errorf("details[%d]: got %q, want it to start with %q", i, s, want)
				}
			}
			if resp.Header.Get("Location") != "" {
				t.Error("a rejected order has a Location header")
			}
		})
	}
	// Nothing rejected was stored.
	resp, b := call(t, srv.URL, http.MethodGet, "/9", "", nil)
	checkJSON(t, resp, b, http.StatusNotFound, "orders")
}

func TestOrdersStoreIsBounded(t *testing.T) {
	t.Parallel()
	o := newTestOrders()
	// Fill the store directly to one below the cap.
	for len(o.store.list) < maxOrders-1 {
		ord := o.store.list[0]
		ord.ID = o.store.nextID
		o.store.nextID++
		o.store.list = append(o.store.list, ord)
	}
	srv := serve(t, o)
	resp, b := call(t, srv.URL, http.MethodPost, "/", tourOrderBody, nil)
	checkJSON(t, resp, b, http.StatusCreated, "orders")
	resp, b = call(t, srv.URL, http.MethodPost, "/", tourOrderBody, nil)
	checkJSON(t, resp, b, http.StatusInsufficientStorage, "orders")
	o.store.mu.Lock()
	got := len(o.store.list)
	o.store.mu.Unlock()
	if got != maxOrders {
		t.Errorf("stored orders: got %d, want %d", got, maxOrders)
	}
}

func TestOrdersConcurrentCreateGivesUniqueIDs(t *testing.T) {
	t.Parallel()
	srv := serve(t, newTestOrders())
	const n = 20
	ids := make([]float64, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			resp, b := call(t, srv.URL, http.MethodPost, "/", tourOrderBody, nil)
			if resp.StatusCode != http.StatusCreated {
				t.Errorf("status: got %d, want 201", resp.StatusCode)
				return
			}
			ids[i] = decodeBody(t, b)["order"].(map[string]any)["id"].(float64)
		})
	}
	wg.Wait()
	seen := map[float64]bool{}
	for _, id := range ids {
		if seen[id] || id < 9 || id > 8+n {
			t.Errorf("id %v is a duplicate or out of range 9..%d", id, 8+n)
		}
		seen[id] = true
	}
}

func BenchmarkOrdersList(b *testing.B) {
	h := newTestOrders()
	req, _ := http.NewRequest(http.MethodGet, "/", nil)
	b.ReportAllocs()
	for b.Loop() {
		h.ServeHTTP(discardWriter{}, req)
	}
}

// discardWriter is a ResponseWriter that throws the response away.
type discardWriter struct{}

func (discardWriter) Header() http.Header         { return http.Header{} }
func (discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (discardWriter) WriteHeader(int)             {}
