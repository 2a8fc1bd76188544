package demo

import (
	"strings"
	"testing"
)

func TestTour(t *testing.T) {
	t.Parallel()
	const gw, admin, control = "http://127.0.0.1:8080", "http://127.0.0.1:9901", "http://127.0.0.1:9902"
	tour := Tour(gw+"/", admin, control+"/")
	for _, want := range []string{
		"Gateway  " + gw + "\n",
		"Admin    " + admin + "\n",
		"Control  " + control + " ",
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
		"for i in 1 2 3 4; do curl -s " + gw + "/api/orders -H \"Authorization: Bearer $TOKEN\" \\\n    | " + replicaSed + "; done",
		"curl -s -X POST " + control + "/replicas/orders-2/stop\n",
		"curl -s " + admin + "/upstreams\n",
		"curl -s -X POST " + control + "/replicas/orders-2/start\n",
		"GET " + control + "/replicas lists",
		"for i in 1 2; do\n    curl -si '" + gw + tourProductsPath + "' \\\n      | " + cacheGrep + "; echo\n  done\n",
		"curl -s -X POST " + admin + "/cache/purge -H 'Content-Type: application/json' \\\n    -d '" + tourPurgeBody + "'; echo\n" +
			"  curl -si '" + gw + tourProductsPath + "' \\\n    | " + cacheGrep + "; echo\n",
		admin + "/metrics",
	} {
		if !strings.Contains(tour, want) {
			t.Errorf("tour does not contain %q:\n%s", want, tour)
		}
	}
	// The replica loop runs before the stop, after it and after the start,
	// and the stop comes before the start.
	if n := strings.Count(tour, "| "+replicaSed); n != 3 {
		t.Errorf("replica loops: got %d, want 3 (before the stop, after it, after the start)", n)
	}
	stop, start := strings.Index(tour, "/replicas/orders-2/stop"), strings.Index(tour, "/replicas/orders-2/start")
	if stop < 0 || start < stop {
		t.Errorf("the tour must stop orders-2 before starting it again:\n%s", tour)
	}
	// The purge comes after the miss and the hit.
	if loop, purge := strings.Index(tour, "for i in 1 2; do"), strings.Index(tour, "/cache/purge"); loop < 0 || purge < loop {
		t.Errorf("the tour must show the miss and the hit before the purge:\n%s", tour)
	}
	for _, base := range []string{gw, control} {
		if strings.Contains(tour, base+"//") {
			t.Errorf("tour doubles the slash after %s:\n%s", base, tour)
		}
	}
	for i, l := range strings.Split(tour, "\n") {
		if len(l) > 120 {
			t.Errorf("line %d is %d characters, want at most 120: %s", i+1, len(l), l)
		}
	}
}

func TestTourWithoutAdminOrControl(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, admin, control string
		absent, present      []string
	}{
		{"admin off", "", "http://127.0.0.1:9902",
			[]string{"Admin", "/metrics", "/upstreams", "/cache/purge"},
			[]string{"/replicas/orders-2/stop", replicaSed, cacheGrep}},
		{"control off", "http://127.0.0.1:9901", "",
			[]string{"  Control  ", "/replicas", "/upstreams"},
			[]string{"/metrics", replicaSed, cacheGrep, "/cache/purge"}},
		{"both off", "", "",
			[]string{"Admin", "  Control  ", "/metrics", "/replicas", "/upstreams", "/cache/purge"},
			[]string{replicaSed, cacheGrep}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tour := Tour("http://127.0.0.1:8080", tt.admin, tt.control)
			for _, s := range tt.absent {
				if strings.Contains(tour, s) {
					t.Errorf("tour mentions %q although it is off:\n%s", s, tour)
				}
			}
			for _, s := range tt.present {
				if !strings.Contains(tour, s) {
					t.Errorf("tour does not contain %q:\n%s", s, tour)
				}
			}
		})
	}
}
