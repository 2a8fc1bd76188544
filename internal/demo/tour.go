package demo

import "strings"

// The request bodies the tour sends; the tests send them to the services
// too, so the tour cannot drift from what they accept.
const (
	tourLoginBody  = `{"username":"alice","password":"alice-password"}`
	tourOrderBody  = `{"items":[{"sku":"MUG-01","quantity":2,"unit_price":1250}]}`
	tourChargeBody = `{"order_id":7,"amount":41797,"currency":"EUR"}`
	tourPurgeBody  = `{"route":"products","prefix":"/api/products"}`
)

// tourProductsPath is the cached request the tour repeats.
const tourProductsPath = "/api/products?category=books"

// cacheGrep prints, from a `curl -si` of a product list, the cache's
// response headers (Cache-Status, Age, X-Cache) and the body's "served"
// and "generated_at", without jq. The tests check it against real
// responses.
const cacheGrep = `grep -i -o -E '^(cache-status|age|x-cache): .*|"(served|generated_at)":[^,}]*'`

// tokenSed extracts the token from the login response without jq. The
// tests check the same expression against a real login response.
const tokenSed = `sed -E 's/.*"token":"([^"]+)".*/\1/'`

// replicaSed prints the replica that answered an orders request, or the
// whole body when it names none (an error), without jq. The tests check
// it against a real orders response.
const replicaSed = `sed -E 's/.*"replica":"([^"]+)".*/\1/'`

// Tour returns the text `portico demo` prints once everything runs: the
// gateway, admin and control URLs and numbered, ready-to-paste curl
// commands for a gateway at gatewayURL, an admin listener at adminURL and
// the demo's control listener (Services.ListenControl) at controlURL. An
// empty adminURL or controlURL (turned off) leaves out the lines that use
// it.
func Tour(gatewayURL, adminURL, controlURL string) string {
	g := strings.TrimSuffix(gatewayURL, "/")
	a := strings.TrimSuffix(adminURL, "/")
	c := strings.TrimSuffix(controlURL, "/")
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
	if c != "" {
		line("  Control  ", c, "   (demo only: stops and starts the orders replicas)")
	}
	line()
	line("Demo services run behind it on loopback ports: auth, payment, products, and orders as two")
	line("replicas (orders-1 and orders-2) that share one store.")
	line("Every service answers in JSON with \"service\" and \"caller\": the headers it received;")
	line("orders adds \"replica\": which replica answered.")
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
	line()
	line("  # 10. Orders run as two replicas and requests take turns: each line is the replica that answered")
	line("  #     (an error would print in full; with jq: | jq -r .replica)")
	replicaLoop := func() {
		line("  for i in 1 2 3 4; do curl -s ", g, `/api/orders -H "Authorization: Bearer $TOKEN" \`)
		line("    | ", replicaSed, "; done")
	}
	replicaLoop()
	if c != "" {
		line("  #     Stop orders-2: its port closes, a real outage. Repeat the loop: every request still")
		line("  #     succeeds, all from orders-1 (retries, then health checks, route around the dead replica)")
		line("  curl -s -X POST ", c, "/replicas/", replicaOrders2, "/stop")
		replicaLoop()
		if a != "" {
			line("  #     The gateway's view of each target: orders-2 is unavailable")
			line("  curl -s ", a, "/upstreams")
		}
		line("  #     Start it again and repeat the loop: orders-2 answers again after two passing health")
		line("  #     checks (within about 10s); GET ", c, "/replicas lists which replicas are up")
		line("  curl -s -X POST ", c, "/replicas/", replicaOrders2, "/start")
		replicaLoop()
	}
	line()
	line("  # 11. Product lists are public and the gateway caches them, for 60s: the service says max-age=60.")
	line("  #     Twice: a miss (Cache-Status: portico; fwd=miss; fwd-status=200; stored), then a hit with Age.")
	line(`  #     The hit repeats "served" (how many lists the products service built) and generated_at:`)
	line("  #     no request reached the service")
	productsCall := func(prefix string) {
		line("  ", prefix, "curl -si '", g, tourProductsPath, "' \\")
		line("  ", prefix, "  | ", cacheGrep, "; echo")
	}
	line("  for i in 1 2; do")
	productsCall("  ")
	line("  done")
	if a != "" {
		line(`  #     Purge what the route cached under /api/products; the answer is {"purged": N}. A body with`)
		line(`  #     "url" purges one URL, one with only "route" the whole route. The next request is a miss:`)
		line(`  #     "served" goes up by one`)
		line("  curl -s -X POST ", a, "/cache/purge -H 'Content-Type: application/json' \\")
		line("    -d '", tourPurgeBody, "'; echo")
		productsCall("")
	}
	line()
	line("  # 12. A browser app on http://localhost:3000 may call the API: its preflight is answered by the")
	line("  #     gateway (204 with Access-Control-Allow-*; the orders service never sees it)")
	line("  curl -si -X OPTIONS ", g, "/api/orders -H 'Origin: http://localhost:3000' \\")
	line("    -H 'Access-Control-Request-Method: POST' -H 'Access-Control-Request-Headers: authorization, content-type'")
	line()
	line("  # 13. Compression: the order list (over 1 KiB of JSON) comes gzip-encoded when the client accepts it;")
	line("  #     the second command lets curl decode it")
	line("  curl -s -o /dev/null -D - ", g, `/api/orders -H "Authorization: Bearer $TOKEN" \`)
	line("    -H 'Accept-Encoding: gzip' | grep -i -E '^(content-encoding|vary):'")
	line("  curl -s --compressed ", g, `/api/orders -H "Authorization: Bearer $TOKEN" | head -c 120; echo`)
	line()
	line("  # 14. The edge decides what a client may send. Its own X-Forwarded-For is replaced, a header it")
	line("  #     lists in Connection cannot remove the identity the gateway sets (caller.consumer_id is")
	line("  #     premium-app, forwarded_for is your address), two API keys get 400, and TRACE gets 405")
	line("  curl -s -X POST ", g, "/api/payment/charge -H 'X-API-Key: premium-key-67890' \\")
	line("    -H 'X-Forwarded-For: 6.6.6.6' -H 'Connection: X-Consumer-ID' \\")
	line("    -H 'Content-Type: application/json' -d '", tourChargeBody, "'")
	line("  curl -i -X POST ", g, "/api/payment/charge \\")
	line("    -H 'X-API-Key: app-key-12345' -H 'X-API-Key: premium-key-67890'")
	line("  curl -i -X TRACE ", g, "/api/orders")
	if a != "" {
		line()
		line("  # 15. Prometheus metrics")
		line("  curl -s ", a, "/metrics")
	}
	line()
	line("Press Ctrl-C to stop.")
	return b.String()
}
