package consumer

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"

	"github.com/portico-gateway/portico/internal/config"
)

const (
	plainKey  = "plain-key-0123456789"
	hashedKey = "hashed-key-0123456789"
)

func digest(key string) string {
	d := sha256.Sum256([]byte(key))
	return "sha256:" + hex.EncodeToString(d[:])
}

func testRegistry(t testing.TB) *Registry {
	t.Helper()
	r, err := New([]config.Consumer{
		{Name: "app", Groups: []string{"admins", "ops"}, Credentials: config.Credentials{
			APIKeys:   []config.Secret{plainKey, config.Secret(digest(hashedKey))},
			JWT:       []config.JWTCredential{{Key: "iss-app", Algorithm: "HS256", Secret: "s3cr3t"}},
			BasicAuth: []config.BasicCredential{{Username: "alice", PasswordHash: "$2b$10$hash"}},
		}},
		{Name: "svc", ID: "svc-42"},
	})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestRegistryLookups(t *testing.T) {
	t.Parallel()
	r := testRegistry(t)
	app, ok := r.ByName("app")
	if !ok {
		t.Fatal("got no consumer app, want one")
	}
	if app.ID != "app" {
		t.Errorf("got id %q, want the name as default", app.ID)
	}
	if app.GroupsHeader != "admins, ops" {
		t.Errorf("got groups header %q, want %q", app.GroupsHeader, "admins, ops")
	}
	if !app.InGroup("ops") || app.InGroup("Ops") || app.InGroup("") {
		t.Error("got wrong InGroup answers, want exact matches only")
	}
	if svc, _ := r.ByName("svc"); svc == nil || svc.ID != "svc-42" {
		t.Errorf("got %+v, want svc with id svc-42", svc)
	}
	if _, ok := r.ByName("nobody"); ok {
		t.Error("got a consumer for an unknown name")
	}

	tests := []struct {
		key  string
		want *Consumer
	}{
		{plainKey, app},
		{hashedKey, app},
		{plainKey[:len(plainKey)-1], nil},
		{digest(hashedKey), nil}, // the digest is not itself a key
		{"", nil},
	}
	for _, tt := range tests {
		got, ok := r.ByAPIKey(tt.key)
		if got != tt.want || ok != (tt.want != nil) {
			t.Errorf("ByAPIKey(%q): got %v %v, want %v", tt.key, got, ok, tt.want)
		}
	}

	if k, ok := r.JWT("iss-app"); !ok || k.Consumer != app || string(k.Secret) != "s3cr3t" || k.Algorithm != "HS256" {
		t.Errorf("got %+v, want app's HS256 credential", k)
	}
	if len(r.JWTKeys()) != 1 {
		t.Errorf("got %d JWT keys, want 1", len(r.JWTKeys()))
	}
	if u, ok := r.Basic("alice"); !ok || u.Consumer != app || string(u.PasswordHash) != "$2b$10$hash" {
		t.Errorf("got %+v, want alice of app", u)
	}
	if _, ok := r.Basic("bob"); ok {
		t.Error("got a user for an unknown username")
	}
}

func TestNilRegistryKnowsNoOne(t *testing.T) {
	t.Parallel()
	var r *Registry
	if _, ok := r.ByName("a"); ok {
		t.Error("ByName: got a consumer")
	}
	if _, ok := r.ByAPIKey(plainKey); ok {
		t.Error("ByAPIKey: got a consumer")
	}
	if _, ok := r.JWT("a"); ok {
		t.Error("JWT: got a credential")
	}
	if _, ok := r.Basic("a"); ok {
		t.Error("Basic: got a user")
	}
	if r.JWTKeys() != nil {
		t.Error("JWTKeys: got keys")
	}
}

func TestKeyDigest(t *testing.T) {
	t.Parallel()
	want := sha256.Sum256([]byte(plainKey))
	for _, in := range []string{plainKey, digest(plainKey), strings.Replace(digest(plainKey), "sha256:", "sha256:", 1)} {
		got, err := KeyDigest(in)
		if err != nil || got != want {
			t.Errorf("KeyDigest(%q): got %x, %v; want %x", in, got, err, want)
		}
	}
	for _, bad := range []string{"sha256:", "sha256:zz", "sha256:" + strings.Repeat("a", 62)} {
		if _, err := KeyDigest(bad); err == nil {
			t.Errorf("KeyDigest(%q): got nil error, want one", bad)
		}
	}
	_, err := New([]config.Consumer{{Name: "x", Credentials: config.Credentials{APIKeys: []config.Secret{"sha256:12"}}}})
	if err == nil || strings.Contains(err.Error(), "sha256:12") {
		t.Errorf("got %v, want an error that does not echo the key", err)
	}
}

func BenchmarkByAPIKey(b *testing.B) {
	r := testRegistry(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := r.ByAPIKey(plainKey); !ok {
			b.Fatal("key not found")
		}
	}
}

func TestRegistryByCertificate(t *testing.T) {
	t.Parallel()
	fp := strings.Repeat("AB", 32)
	r, err := New([]config.Consumer{
		{Name: "billing", Credentials: config.Credentials{Certificates: []config.CertificateCredential{
			{SANURI: "spiffe://example.org/ns/prod/sa/billing"},
			{SANDNS: "Billing.Example.com."},
			{SHA256: fp},
		}}},
		{Name: "reports", Credentials: config.Credentials{Certificates: []config.CertificateCredential{{SubjectCN: "reports"}}}},
		{Name: "none"},
	})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		field, value, want string
	}{
		{config.CertSANURI, "spiffe://example.org/ns/prod/sa/billing", "billing"},
		{config.CertSANDNS, "billing.example.com", "billing"},
		{config.CertSHA256, strings.ToLower(fp), "billing"},
		{config.CertSubjectCN, "reports", "reports"},
		{config.CertSubjectCN, "Reports", ""},
		{config.CertSubjectCN, "billing.example.com", ""}, // fields do not mix
		{config.CertSANDNS, "spiffe://example.org/ns/prod/sa/billing", ""},
	}
	for _, tt := range tests {
		got := ""
		if c, ok := r.ByCertificate(tt.field, tt.value); ok {
			got = c.Name
		}
		if got != tt.want {
			t.Errorf("%s %q: got consumer %q, want %q", tt.field, tt.value, got, tt.want)
		}
	}
	var empty *Registry
	if _, ok := empty.ByCertificate(config.CertSubjectCN, "reports"); ok {
		t.Error("a nil registry knows a certificate")
	}
}
