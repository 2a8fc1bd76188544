package basicauth

import (
	"testing"
	"time"
)

func TestCache(t *testing.T) {
	t.Parallel()
	now := time.Unix(1000, 0)
	c := NewCache(3)
	c.now = func() time.Time { return now }
	c.SetTTL(time.Minute)
	hash := []byte("$2b$10$hash")
	k1, k2 := cacheKey("alice", "pw"), cacheKey("alice", "pw2")
	if c.Has(k1, hash) {
		t.Fatal("got a hit in an empty cache")
	}
	c.Add(k1, hash)
	if !c.Has(k1, hash) {
		t.Error("got a miss for a fresh entry, want a hit")
	}
	if c.Has(k2, hash) {
		t.Error("got a hit for another password")
	}
	if c.Has(k1, []byte("$2b$10$other")) {
		t.Error("got a hit after the password hash changed")
	}
	now = now.Add(time.Minute + time.Second)
	if c.Has(k1, hash) {
		t.Error("got a hit for an expired entry")
	}
	// Bounded: a full cache drops expired entries, then arbitrary ones.
	for i := range 10 {
		c.Add(cacheKey("u", string(rune('a'+i))), hash)
		if c.Len() > 3 {
			t.Fatalf("got %d entries, want at most 3", c.Len())
		}
	}
	if !c.Has(cacheKey("u", "j"), hash) {
		t.Error("got a miss for the newest entry")
	}
}

func TestParseBasic(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in         string
		user, pass string
		ok         bool
	}{
		{"Basic YWxpY2U6cHc=", "alice", "pw", true},
		{"basic YWxpY2U6cHc=", "alice", "pw", true},
		{"Basic YWxpY2U6cDpx", "alice", "p:q", true},
		{"Basic YWxpY2U=", "", "", false},
		{"Basic !!!", "", "", false},
		{"Bearer x", "", "", false},
		{"Basic", "", "", false},
	}
	for _, tt := range tests {
		u, p, ok := parseBasic(tt.in)
		if u != tt.user || p != tt.pass || ok != tt.ok {
			t.Errorf("parseBasic(%q): got %q %q %v, want %q %q %v", tt.in, u, p, ok, tt.user, tt.pass, tt.ok)
		}
	}
}
