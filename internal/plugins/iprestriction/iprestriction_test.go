package iprestriction

import (
	"encoding/json"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"testing"

	"github.com/portico-gateway/portico/internal/config"
	"github.com/portico-gateway/portico/internal/pipeline"
	"github.com/portico-gateway/portico/internal/plugins/plugintest"
)

// hasIPv6Loopback reports whether ::1 can be listened on.
func hasIPv6Loopback(t *testing.T) bool {
	ln, err := net.Listen("tcp", "[::1]:0")
	if err != nil {
		t.Logf("no IPv6 loopback (%s): the IPv6 cases use 127.0.0.1", err.Error())
		return false
	}
	ln.Close()
	return true
}

type problemBody struct {
	Status    int    `json:"status"`
	Detail    string `json:"detail"`
	RequestID string `json:"request_id"`
}

func TestIPRestrictionByPeer(t *testing.T) {
	v6 := hasIPv6Loopback(t)
	loop6, listen6 := "::1", "[::1]:0"
	if !v6 {
		loop6, listen6 = "127.0.0.1", "127.0.0.1:0"
	}
	tests := []struct {
		name     string
		listen   string
		settings string
		xff      string // X-Forwarded-For sent by the client
		trusted  string // the edge's trusted proxies ("" for none)
		want     int
		detail   string
	}{
		{"ipv4 loopback allowed", "127.0.0.1:0", `{allow: ["127.0.0.1"]}`, "", "", 200, ""},
		{"ipv4 loopback denied", "127.0.0.1:0", `{deny: ["127.0.0.0/8"]}`, "", "", 403, DefaultMessage},
		{"ipv4 loopback not in allow", "127.0.0.1:0", `{allow: ["10.0.0.0/8"]}`, "", "", 403, DefaultMessage},
		{"custom message", "127.0.0.1:0", `{deny: ["127.0.0.0/8"], message: "office network only"}`, "", "", 403, "office network only"},
		{"deny wins over allow", "127.0.0.1:0", `{allow: ["127.0.0.0/8"], deny: ["127.0.0.1"]}`, "", "", 403, DefaultMessage},
		{"untrusted X-Forwarded-For cannot escape a deny", "127.0.0.1:0", `{deny: ["127.0.0.0/8"]}`, "203.0.113.9", "", 403, DefaultMessage},
		{"untrusted X-Forwarded-For cannot claim an allowed address", "127.0.0.1:0", `{allow: ["203.0.113.0/24"]}`, "203.0.113.9", "", 403, DefaultMessage},
		{"untrusted X-Forwarded-For cannot cause a deny", "127.0.0.1:0", `{deny: ["203.0.113.0/24"]}`, "203.0.113.9", "", 200, ""},
		{"ipv6 loopback allowed", listen6, `{allow: ["` + loop6 + `"]}`, "", "", 200, ""},
		{"ipv6 loopback denied", listen6, `{deny: ["` + loop6 + `"], allow: ["0.0.0.0/0", "::/0"]}`, "", "", 403, DefaultMessage},
		{"ipv6 loopback not in an ipv4 allow list", listen6, `{allow: ["10.0.0.0/8"]}`, "", "", 403, DefaultMessage},
		{"trusted proxy: X-Forwarded-For client denied", "127.0.0.1:0", `{deny: ["203.0.113.0/24"]}`, "203.0.113.9", "127.0.0.0/8", 403, DefaultMessage},
		{"trusted proxy: X-Forwarded-For client allowed", "127.0.0.1:0", `{allow: ["203.0.113.0/24"]}`, "203.0.113.9", "127.0.0.0/8", 200, ""},
		{"trusted proxy: rightmost untrusted entry is the client", "127.0.0.1:0", `{allow: ["203.0.113.0/24"]}`, "203.0.113.9, 198.51.100.1", "127.0.0.0/8", 403, DefaultMessage},
		{"trusted proxy: trusted entries are skipped", "127.0.0.1:0", `{allow: ["203.0.113.0/24"]}`, "203.0.113.9, 10.0.0.2", "127.0.0.0/8, 10.0.0.0/8", 200, ""},
		{"trusted proxy: malformed entry ends the walk", "127.0.0.1:0", `{deny: ["127.0.0.0/8"]}`, "203.0.113.9, bogus", "127.0.0.0/8", 403, DefaultMessage},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			opts := plugintest.Options{Listen: tt.listen}
			for _, p := range strings.Split(tt.trusted, ",") {
				if p = strings.TrimSpace(p); p != "" {
					opts.TrustedProxies = append(opts.TrustedProxies, netip.MustParsePrefix(p))
				}
			}
			g := plugintest.Start(t, opts, plugintest.Configure(t, Registration(), tt.settings))
			var kv []string
			if tt.xff != "" {
				kv = []string{"X-Forwarded-For", tt.xff}
			}
			res := g.Do(t, http.MethodGet, "/x", "", kv...)
			status, header, body, hits := res.Status, res.Header, []byte(res.Body), g.Upstream.Count()
			if status != tt.want {
				t.Fatalf("got status %d, want %d (body %s)", status, tt.want, body)
			}
			if tt.want == 200 {
				if string(body) != "upstream" || hits != 1 {
					t.Errorf("got body %q and %d upstream hits, want \"upstream\" and 1", body, hits)
				}
				return
			}
			if n := hits; n != 0 {
				t.Errorf("got %d upstream hits, want 0", n)
			}
			if ct := header.Get("Content-Type"); ct != "application/problem+json" {
				t.Errorf("got Content-Type %q, want application/problem+json", ct)
			}
			var pb problemBody
			if err := json.Unmarshal(body, &pb); err != nil {
				t.Fatalf("problem body %s: %s", body, err.Error())
			}
			if pb.Status != 403 || pb.Detail != tt.detail || pb.RequestID != "req-1" {
				t.Errorf("got %+v, want status 403, detail %q, request_id req-1", pb, tt.detail)
			}
		})
	}
}

func mustPolicy(t testing.TB, allow, deny []string) *policy {
	t.Helper()
	s := &Spec{Allow: allow, Deny: deny}
	if err := s.Validate(config.Path{}); err != nil {
		t.Fatal(err)
	}
	p, err := compile(s)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestDecision covers the decision on netip values, including addresses a
// trusted proxy would report, and the edges of every range.
func TestDecision(t *testing.T) {
	tests := []struct {
		name        string
		allow, deny []string
		addr        string // "" is the unknown address
		want        bool
	}{
		{"first address of a range", nil, []string{"10.0.0.0/8"}, "10.0.0.0", false},
		{"last address of a range", nil, []string{"10.0.0.0/8"}, "10.255.255.255", false},
		{"just below a range", nil, []string{"10.0.0.0/8"}, "9.255.255.255", true},
		{"just above a range", nil, []string{"10.0.0.0/8"}, "11.0.0.0", true},
		{"single address", nil, []string{"192.0.2.7"}, "192.0.2.7", false},
		{"next to a single address", nil, []string{"192.0.2.7"}, "192.0.2.8", true},
		{"/32 equals the address", nil, []string{"192.0.2.7/32"}, "192.0.2.7", false},
		{"0.0.0.0/0 covers the top", nil, []string{"0.0.0.0/0"}, "255.255.255.255", false},
		{"0.0.0.0/0 covers the bottom", nil, []string{"0.0.0.0/0"}, "0.0.0.0", false},
		{"0.0.0.0/0 is not ipv6", nil, []string{"0.0.0.0/0"}, "2001:db8::1", true},
		{"::/0 is not ipv4", nil, []string{"::/0"}, "192.0.2.7", true},
		{"::/0 covers the ipv6 top", nil, []string{"::/0"}, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", false},
		{"ipv6 range first", nil, []string{"2001:db8::/32"}, "2001:db8::", false},
		{"ipv6 range last", nil, []string{"2001:db8::/32"}, "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff", false},
		{"ipv6 below a range", nil, []string{"2001:db8::/32"}, "2001:db7:ffff:ffff:ffff:ffff:ffff:ffff", true},
		{"ipv6 above a range", nil, []string{"2001:db8::/32"}, "2001:db9::", true},
		{"ipv6 /64 last of the low half", nil, []string{"2001:db8:0:1::/64"}, "2001:db8:0:1:ffff:ffff:ffff:ffff", false},
		{"ipv6 /64 next", nil, []string{"2001:db8:0:1::/64"}, "2001:db8:0:2::", true},
		{"ipv6 /80 crossing 64 bits", nil, []string{"2001:db8::1:0:0:0/80"}, "2001:db8::1:ffff:ffff:ffff", false},
		{"ipv6 single address", nil, []string{"2001:db8::7"}, "2001:db8::7", false},
		{"ipv6 next to a single address", nil, []string{"2001:db8::7"}, "2001:db8::8", true},
		{"mapped client compared as ipv4", nil, []string{"192.0.2.0/24"}, "::ffff:192.0.2.7", false},
		{"mapped entry compared as ipv4", nil, []string{"::ffff:192.0.2.0/120"}, "192.0.2.7", false},
		{"mapped single entry", nil, []string{"::ffff:192.0.2.7"}, "192.0.2.7", false},
		{"zoned client ignores the zone", nil, []string{"fe80::/10"}, "fe80::1%eth0", false},
		{"allow: in", []string{"10.0.0.0/8"}, nil, "10.1.2.3", true},
		{"allow: out", []string{"10.0.0.0/8"}, nil, "11.1.2.3", false},
		{"deny wins over allow", []string{"10.0.0.0/8"}, []string{"10.9.0.0/16"}, "10.9.1.1", false},
		{"allowed beside a deny hole", []string{"10.0.0.0/8"}, []string{"10.9.0.0/16"}, "10.10.0.0", true},
		{"overlapping entries merge", nil, []string{"10.0.0.0/16", "10.0.0.0/8", "10.0.5.0/24"}, "10.200.0.1", false},
		{"adjacent entries merge", nil, []string{"10.0.0.0/9", "10.128.0.0/9"}, "10.128.0.0", false},
		{"gap between entries", nil, []string{"10.0.0.0/24", "10.0.2.0/24"}, "10.0.1.5", true},
		{"unknown address refused with deny only", nil, []string{"10.0.0.0/8"}, "", false},
		{"unknown address refused with allow", []string{"0.0.0.0/0"}, nil, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := mustPolicy(t, tt.allow, tt.deny)
			var a netip.Addr
			if tt.addr != "" {
				a = netip.MustParseAddr(tt.addr)
			}
			if got := p.allowed(a); got != tt.want {
				t.Errorf("allowed(%s) got %t, want %t", tt.addr, got, tt.want)
			}
		})
	}
}

// TestAddrSetMatchesPrefixes checks the merged ranges against
// netip.Prefix.Contains for many overlapping prefixes.
func TestAddrSetMatchesPrefixes(t *testing.T) {
	var entries []string
	var prefixes []netip.Prefix
	for i := 0; i < 200; i++ {
		// Deterministic, overlapping prefixes of varied lengths.
		a := netip.AddrFrom4([4]byte{10, byte(i * 7), byte(i * 13), 0})
		p := netip.PrefixFrom(a, 12+i%20).Masked()
		b := netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, byte(i * 3), byte(i * 11)})
		q := netip.PrefixFrom(b, 24+i%90).Masked()
		entries = append(entries, p.String(), q.String())
		prefixes = append(prefixes, p, q)
	}
	pol := mustPolicy(t, nil, entries)
	for i := 0; i < 20000; i++ {
		probes := []netip.Addr{
			netip.AddrFrom4([4]byte{10, byte(i), byte(i >> 8), byte(i * 31)}),
			netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, byte(i), byte(i >> 8), byte(i * 31), 15: byte(i)}),
		}
		for _, a := range probes {
			want := false
			for _, p := range prefixes {
				want = want || p.Contains(a)
			}
			if got := pol.deny.contains(a); got != want {
				t.Fatalf("contains(%s) got %t, want %t", a, got, want)
			}
		}
	}
}

func TestValidate(t *testing.T) {
	const p = "routes[0].plugins.ip_restriction"
	tests := []struct {
		name     string
		settings string
		want     []string // every one must appear; nil means valid
	}{
		{"allow only", `{allow: ["10.0.0.0/8", "192.0.2.7", "2001:db8::/32", "::1"]}`, nil},
		{"deny only", `{deny: ["0.0.0.0/0"]}`, nil},
		{"neither", `{message: "no"}`, []string{p + ": set allow or deny (or both)"}},
		{"empty lists", `{allow: [], deny: []}`, []string{p + ": set allow or deny (or both)"}},
		{"not an address", `{deny: ["10.0.0.0/8", "bogus"]}`,
			[]string{p + `.deny[1]: "bogus" is not an IP address or CIDR range (such as 192.0.2.7, 10.0.0.0/8 or 2001:db8::/32)`}},
		{"bad prefix length", `{allow: ["10.0.0.0/33"]}`, []string{p + `.allow[0]: "10.0.0.0/33" is not an IP address or CIDR range`}},
		{"hostname", `{allow: ["localhost"]}`, []string{p + `.allow[0]: "localhost" is not an IP address`}},
		{"empty entry", `{allow: [""]}`, []string{p + `.allow[0]: must not be empty`}},
		{"host bits ipv4", `{deny: ["10.1.2.3/8"]}`,
			[]string{p + `.deny[0]: "10.1.2.3/8" has bits set past the /8 prefix: write "10.0.0.0/8" for the range, or "10.1.2.3" for the one address`}},
		{"host bits ipv6", `{allow: ["2001:db8::1/32"]}`,
			[]string{p + `.allow[0]: "2001:db8::1/32" has bits set past the /32 prefix: write "2001:db8::/32" for the range, or "2001:db8::1" for the one address`}},
		{"zone", `{allow: ["fe80::1%eth0"]}`, []string{p + `.allow[0]: "fe80::1%eth0" has an IPv6 zone; zones are not allowed`}},
		{"every problem at once", `{allow: ["x", "10.0.0.1/24"], deny: ["y"]}`,
			[]string{p + `.allow[0]: "x"`, p + `.allow[1]: "10.0.0.1/24" has bits set`, p + `.deny[0]: "y"`}},
		{"message too long", `{deny: ["10.0.0.0/8"], message: "` + strings.Repeat("m", 1025) + `"}`,
			[]string{p + ".message: must be at most 1024 bytes"}},
		{"unknown key", `{deny: ["10.0.0.0/8"], alow: ["1.2.3.4"]}`, []string{"alow"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			plugintest.CheckConfigure(t, Registration(), tt.settings, tt.want)
		})
	}
}

func TestRegistration(t *testing.T) {
	reg := Registration()
	if reg.Name != "ip_restriction" || reg.Phase != pipeline.PhaseIPRestriction || !reg.Global {
		t.Errorf("got %s/%d/global=%t, want ip_restriction/%d/global=true", reg.Name, reg.Phase, reg.Global, pipeline.PhaseIPRestriction)
	}
}

// FuzzParseEntry checks that any entry either fails cleanly or yields a
// masked prefix that contains the address it names.
func FuzzParseEntry(f *testing.F) {
	for _, s := range []string{"10.0.0.0/8", "192.0.2.7", "2001:db8::/32", "::ffff:1.2.3.0/120", "1.2.3.4/40", "fe80::1%x", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := parseEntry(s)
		if err != nil {
			return
		}
		if p.Masked() != p {
			t.Fatalf("parseEntry(%q) = %s, not masked", s, p)
		}
		set := newAddrSet([]netip.Prefix{p})
		if !set.contains(p.Addr()) {
			t.Fatalf("set of %s does not contain its own address", p)
		}
	})
}
