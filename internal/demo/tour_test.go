package demo

import (
	"strings"
	"testing"
)

func TestTour(t *testing.T) {
	t.Parallel()
	const gw, admin = "http://127.0.0.1:8080", "http://127.0.0.1:9901"
	tour := Tour(gw+"/", admin)
	for _, want := range []string{
		"Gateway  " + gw + "\n",
		"Admin    " + admin + "\n",
		"curl -i " + gw + "/health",
		gw + "/api/auth/login",
		tourLoginBody,
		tokenSed,
		gw + `/api/orders -H "Authorization: Bearer $TOKEN"`,
		gw + "/api/orders/7",
		tourOrderBody,
		gw + "/api/payment/charge",
		tourChargeBody,
		gw + "/api/orders/999",
		"-H 'X-Request-ID: my-id'",
		"for i in $(seq 25); do curl -s -o /dev/null -w '%{http_code} ' \\\n    -X POST " + gw + "/api/auth/login -d '{}'; done; echo",
		"curl -i -X POST " + gw + "/api/auth/login -d '{}'",
		admin + "/metrics",
	} {
		if !strings.Contains(tour, want) {
			t.Errorf("tour does not contain %q:\n%s", want, tour)
		}
	}
	if strings.Contains(tour, gw+"//") {
		t.Errorf("tour doubles the slash after the gateway URL:\n%s", tour)
	}
	for i, l := range strings.Split(tour, "\n") {
		if len(l) > 120 {
			t.Errorf("line %d is %d characters, want at most 120: %s", i+1, len(l), l)
		}
	}
}

func TestTourWithoutAdmin(t *testing.T) {
	t.Parallel()
	tour := Tour("http://127.0.0.1:8080", "")
	if strings.Contains(tour, "Admin") || strings.Contains(tour, "/metrics") {
		t.Errorf("tour mentions the admin listener although it is off:\n%s", tour)
	}
}
