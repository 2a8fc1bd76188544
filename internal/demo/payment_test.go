package demo

import (
	"net/http"
	"strconv"
	"strings"
	"testing"
)

func TestPaymentCharge(t *testing.T) {
	t.Parallel()
	srv := serve(t, newPayment(fixedClock))
	for i, want := range []string{"ch_000001", "ch_000002"} {
		resp, b := call(t, srv.URL, http.MethodPost, "/charge", tourChargeBody, map[string]string{"X-Consumer-Name": "shop"})
		m := checkJSON(t, resp, b, http.StatusOK, "payment")
		wantFields := map[string]any{
			"charge_id":  want,
			"status":     "succeeded",
			"order_id":   float64(7),
			"amount":     float64(41797),
			"currency":   "EUR",
			"created_at": "2026-05-04T12:00:00Z",
		}
		for k, v := range wantFields {
			if m[k] != v {
				t.Errorf("charge %d: %s: got %v, want %v", i, k, m[k], v)
			}
		}
		if got := m["caller"].(map[string]any)["consumer_name"]; got != "shop" {
			t.Errorf("caller.consumer_name: got %v, want shop", got)
		}
	}
}

func TestPaymentChargeValidation(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, body string
		details    []string
	}{
		{"empty object", `{}`, []string{"order_id is required", "amount is required", "currency is required"}},
		{"negative amount", `{"order_id":1,"amount":-1,"currency":"EUR"}`, []string{"amount is required"}},
		{"zero order", `{"order_id":0,"amount":100,"currency":"EUR"}`, []string{"order_id is required"}},
		{"too much", `{"order_id":1,"amount":100000001,"currency":"EUR"}`, []string{"amount is required and must be between 1 and 100000000"}},
		{"lower-case currency", `{"order_id":1,"amount":100,"currency":"eur"}`, []string{"currency is required"}},
		{"fraction", `{"order_id":1,"amount":25.99,"currency":"EUR"}`, []string{"amount must be an integer"}},
		{"string id", `{"order_id":"1","amount":100,"currency":"EUR"}`, []string{"order_id must be an integer"}},
	}
	srv := serve(t, newPayment(fixedClock))
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			resp, b := call(t, srv.URL, http.MethodPost, "/charge", tt.body, nil)
			m := checkJSON(t, resp, b, http.StatusUnprocessableEntity, "payment")
			got, _ := m["details"].([]any)
			if len(got) != len(tt.details) {
				t.Fatalf("details: got %v, want %d entries starting %q", got, len(tt.details), tt.details)
			}
			for i, want := range tt.details {
				if s, _ := got[i].(string); !strings.HasPrefix(s, want) {
					t.Errorf("details[%d]: got %q, want it to start with %q", i, s, want)
				}
			}
			if _, ok := m["charge_id"]; ok {
				t.Errorf("rejected charge has a charge_id: %s", b)
			}
		})
	}
}

// TestTourChargeMatchesOrder keeps the tour's charge amount equal to the
// total of the order it names.
func TestTourChargeMatchesOrder(t *testing.T) {
	t.Parallel()
	o, ok := newTestOrders().store.find(7)
	if !ok {
		t.Fatal("order 7 is not in the seed")
	}
	if want := `"amount":` + strconv.FormatInt(o.Total, 10) + `,`; !strings.Contains(tourChargeBody, want) {
		t.Errorf("tour charge body %s: want it to contain %s", tourChargeBody, want)
	}
}

func FuzzCharge(f *testing.F) {
	for _, s := range []string{tourChargeBody, `{}`, `{"amount":1.5}`, `[`, `{"order_id":1e30}`} {
		f.Add(s)
	}
	h := newPayment(fixedClock)
	f.Fuzz(func(t *testing.T, body string) {
		status := serveOnce(h, http.MethodPost, "/charge", body)
		switch status {
		case http.StatusOK, http.StatusBadRequest, http.StatusUnprocessableEntity, http.StatusRequestEntityTooLarge:
		default:
			t.Errorf("status: got %d, want 200, 400, 413 or 422", status)
		}
	})
}

func FuzzCreateOrder(f *testing.F) {
	for _, s := range []string{tourOrderBody, `{}`, `{"items":[{}]}`, `{"items":null}`, `{"items":[{"quantity":1e9}]}`} {
		f.Add(s)
	}
	o := newTestOrders()
	f.Fuzz(func(t *testing.T, body string) {
		status := serveOnce(o, http.MethodPost, "/", body)
		switch status {
		case http.StatusCreated, http.StatusBadRequest, http.StatusUnprocessableEntity,
			http.StatusRequestEntityTooLarge, http.StatusInsufficientStorage:
		default:
			t.Errorf("status: got %d, want 201, 400, 413, 422 or 507", status)
		}
	})
}
