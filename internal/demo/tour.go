package demo

import "strings"

// The request bodies the tour sends; the tests send them to the services
// too, so the tour cannot drift from what they accept.
const (
	tourLoginBody  = `{"username":"alice","password":"alice-password"}`
	tourOrderBody  = `{"items":[{"sku":"MUG-01","quantity":2,"unit_price":1250}]}`
	tourChargeBody = `{"order_id":7,"amount":41797,"currency":"EUR"}`
)

// tokenSed extracts the token from the login response without jq. The
// tests check the same expression against a real login response.
const tokenSed = `sed -E 's/.*"token":"([^"]+)".*/\1/'`

// Tour returns the text `portico demo` prints once everything runs: the
// gateway and admin URLs and numbered, ready-to-paste curl commands for a
// gateway at gatewayURL and an admin listener at adminURL. An empty
// adminURL (admin off) leaves out the admin lines.
func Tour(gatewayURL, adminURL string) string {
	g := strings.TrimSuffix(gatewayURL, "/")
	a := strings.TrimSuffix(adminURL, "/")
	var b strings.Builder
	line := func(s ...string) {
		for _, p := range s {
			b.WriteString(p)
		}
		b.WriteByte('\n')
	}

	line("Portico demo is running.")
	line()
	line("  Gateway  ", g)
	if a != "" {
		line("  Admin    ", a)
	}
	line()
	line("Three demo services (auth, orders, payment) run behind it on loopback ports.")
	line("Every service answers in JSON with \"service\" and \"caller\": the headers it received.")
	line("Try these in another terminal:")
	line()
	line("  # 1. Gateway health")
	line("  curl -i ", g, "/health")
	line()
	line("  # 2. Log in as alice (POST /api/auth/login, rewritten to the auth service's /login)")
	line("  TOKEN=$(curl -s -X POST ", g, "/api/auth/login -H 'Content-Type: application/json' \\")
	line("    -d '", tourLoginBody, "' | ", tokenSed, ")")
	line(`  echo "$TOKEN"`)
	line()
	line("  # 3. Orders need the token: without it the gateway answers 401 itself")
	line("  curl -i ", g, "/api/orders")
	line("  curl -s ", g, `/api/orders -H "Authorization: Bearer $TOKEN"     # caller.user_id is alice`)
	line()
	line("  # 4. One order, and a new one (201 with a Location header)")
	line("  curl -s ", g, `/api/orders/7 -H "Authorization: Bearer $TOKEN"`)
	line("  curl -i -X POST ", g, `/api/orders -H "Authorization: Bearer $TOKEN" \`)
	line("    -H 'Content-Type: application/json' -d '", tourOrderBody, "'")
	line()
	line("  # 5. Payments need an API key (consumers default-app and premium-app); amounts in cents")
	line("  curl -s -X POST ", g, "/api/payment/charge -H 'X-API-Key: app-key-12345' \\")
	line("    -H 'Content-Type: application/json' -d '", tourChargeBody, "'")
	line("  curl -i -X POST ", g, "/api/payment/charge -H 'X-API-Key: wrong-key-000'")
	line()
	line("  # 6. A forged identity header never reaches a service")
	line("  curl -s -X POST ", g, "/api/payment/charge -H 'X-API-Key: premium-key-67890' \\")
	line("    -H 'X-Consumer-ID: admin' -H 'Content-Type: application/json' -d '", tourChargeBody, "'")
	line()
	line("  # 7. Not found: from the orders service, then from the gateway itself (no route)")
	line("  curl -i ", g, `/api/orders/999 -H "Authorization: Bearer $TOKEN"`)
	line("  curl -i ", g, "/nowhere")
	line()
	line("  # 8. Request ids: yours comes back in X-Request-ID and reaches the service (caller.request_id)")
	line("  curl -si ", g, `/api/orders/1 -H "Authorization: Bearer $TOKEN" -H 'X-Request-ID: my-id'`)
	line()
	line("  # 9. Logins are limited to 10 per second per client address, in bursts of up to 20:")
	line("  #    paste these lines together: the last quick attempts get 429, with RateLimit-* and Retry-After")
	line("  for i in $(seq 25); do curl -s -o /dev/null -w '%{http_code} ' \\")
	line("    -X POST ", g, "/api/auth/login -d '{}'; done; echo")
	line("  curl -i -X POST ", g, "/api/auth/login -d '{}'")
	if a != "" {
		line()
		line("  # 10. Prometheus metrics")
		line("  curl -s ", a, "/metrics")
	}
	line()
	line("Press Ctrl-C to stop.")
	return b.String()
}
