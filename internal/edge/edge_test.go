package edge

import (
	"net/http"
	"net/netip"
	"testing"
)

func TestClientIP(t *testing.T) {
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("::1/128")}
	tests := []struct {
		name        string
		remote      string
		xff         []string
		wantIP      string
		wantTrusted bool
	}{
		{"untrusted peer ignores forged header", "203.0.113.9:5000", []string{"1.2.3.4"}, "203.0.113.9", false},
		{"trusted peer without header", "10.1.2.3:5000", nil, "10.1.2.3", true},
		{"trusted peer, one client", "10.1.2.3:5000", []string{"198.51.100.7"}, "198.51.100.7", true},
		{"rightmost untrusted wins over spoofed left", "10.1.2.3:5000", []string{"6.6.6.6, 198.51.100.7"}, "198.51.100.7", true},
		{"skips trusted hops", "10.1.2.3:5000", []string{"198.51.100.7, 10.9.9.9"}, "198.51.100.7", true},
		{"several header lines", "10.1.2.3:5000", []string{"6.6.6.6", "198.51.100.7, 10.0.0.2"}, "198.51.100.7", true},
		{"malformed entry stops the walk", "10.1.2.3:5000", []string{"198.51.100.7, junk"}, "10.1.2.3", true},
		{"all trusted gives leftmost", "10.1.2.3:5000", []string{"10.0.0.5, 10.0.0.6"}, "10.0.0.5", true},
		{"ipv6 trusted peer", "[::1]:5000", []string{"2001:db8::1"}, "2001:db8::1", true},
		{"mapped ipv4 peer", "[::ffff:10.1.2.3]:5000", []string{"198.51.100.7"}, "198.51.100.7", true},
		{"bad remote addr", "nonsense", []string{"1.2.3.4"}, "invalid IP", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := &http.Request{RemoteAddr: tt.remote, Header: http.Header{}}
			if tt.xff != nil {
				r.Header["X-Forwarded-For"] = tt.xff
			}
			ip, tr := ClientIP(r, trusted)
			if ip.String() != tt.wantIP || tr != tt.wantTrusted {
				t.Errorf("got %s trusted=%v, want %s trusted=%v", ip, tr, tt.wantIP, tt.wantTrusted)
			}
		})
	}
}
