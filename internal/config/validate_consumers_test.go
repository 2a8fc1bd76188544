package config

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"strings"
	"sync"
	"testing"

	"golang.org/x/crypto/bcrypt"
)

// testKeys holds PEM public keys generated once for the consumer tests.
var testKeys = sync.OnceValue(func() map[string]string {
	out := make(map[string]string)
	add := func(name string, pub any) {
		der, err := x509.MarshalPKIXPublicKey(pub)
		if err != nil {
			panic(err)
		}
		out[name] = string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
	}
	rk, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	add("rsa", &rk.PublicKey)
	for name, curve := range map[string]elliptic.Curve{"p256": elliptic.P256(), "p384": elliptic.P384(), "p521": elliptic.P521()} {
		ek, err := ecdsa.GenerateKey(curve, rand.Reader)
		if err != nil {
			panic(err)
		}
		add(name, &ek.PublicKey)
	}
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		panic(err)
	}
	add("ed25519", pub)
	return out
})

var testHash = sync.OnceValue(func() string {
	h, err := bcrypt.GenerateFromPassword([]byte("correct horse"), bcrypt.MinCost+6) // cost 10
	if err != nil {
		panic(err)
	}
	return string(h)
})

const (
	keyA = "key-a-0123456789abcdef"
	keyB = "key-b-0123456789abcdef"
)

// colonPairs writes hex digits in colon-separated pairs, as openssl prints
// fingerprints.
func colonPairs(h string) string {
	var pairs []string
	for i := 0; i < len(h); i += 2 {
		pairs = append(pairs, h[i:i+2])
	}
	return strings.Join(pairs, ":")
}

func digestOf(key string) string {
	d := sha256.Sum256([]byte(key))
	return "sha256:" + hex.EncodeToString(d[:])
}

// TestValidateConsumers changes the consumers of a valid config and checks
// the exact errors.
func TestValidateConsumers(t *testing.T) {
	keys := testKeys()
	hmac := Secret(strings.Repeat("s", 32))
	lowCost, err := bcrypt.GenerateFromPassword([]byte("pw"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		cs   []Consumer
		want []string
	}{
		{"valid set", []Consumer{
			{Name: "app", Groups: []string{"admins", "ops"}, Credentials: Credentials{
				APIKeys: []Secret{keyA, Secret(digestOf(keyB))},
				JWT: []JWTCredential{
					{Key: "hs", Algorithm: "HS256", Secret: hmac},
					{Key: "rs", Algorithm: "RS256", PublicKey: keys["rsa"]},
					{Key: "ps", Algorithm: "PS512", PublicKey: keys["rsa"]},
					{Key: "es256", Algorithm: "ES256", PublicKey: keys["p256"]},
					{Key: "es384", Algorithm: "ES384", PublicKey: keys["p384"]},
					{Key: "es512", Algorithm: "ES512", PublicKey: keys["p521"]},
					{Key: "ed", Algorithm: "EdDSA", PublicKey: keys["ed25519"]},
				},
				BasicAuth: []BasicCredential{{Username: "alice", PasswordHash: Secret(testHash())}},
			}},
			{Name: "other", ID: "42"},
		}, nil},
		{"names", []Consumer{{}, {Name: "a b"}, {Name: "x"}, {Name: "x"}}, []string{
			"consumers[0].name: is required",
			`consumers[1].name: must be 1 to 63 letters, digits, ".", "_" or "-", starting with a letter or digit`,
			`consumers[3].name: duplicate consumer name "x"; consumers[2] has it too`,
		}},
		{"ids", []Consumer{{Name: "a", ID: "b"}, {Name: "b"}, {Name: "c", ID: "b"}, {Name: "d", ID: "x\n"}}, []string{
			`consumers[1].name: duplicate consumer id "b"; consumers[0] has it too (the id defaults to the name)`,
			`consumers[2].id: duplicate consumer id "b"; consumers[0] has it too (the id defaults to the name)`,
			"consumers[3].id: must not contain control characters or surrounding spaces",
		}},
		{"groups and tier", []Consumer{{Name: "a", Groups: []string{"ok", "", "a,b"}, Tier: "free"}}, []string{
			"consumers[0].groups[1]: group must not be empty",
			"consumers[0].groups[2]: group must not contain commas, control characters or surrounding spaces",
			"consumers[0].tier: unknown tier \"free\"; no tiers are defined (tier must name a key of tiers)",
		}},
		{"api keys", []Consumer{
			{Name: "a", Credentials: Credentials{APIKeys: []Secret{keyA, "shortk", "sha256:abc", ""}}},
			{Name: "b", Credentials: Credentials{APIKeys: []Secret{Secret(digestOf(keyA)), keyB, keyB}}},
		}, []string{
			"consumers[0].credentials.api_keys[1]: an API key must be at least 8 characters (or sha256: followed by 64 hex digits)",
			"consumers[0].credentials.api_keys[2]: an API key digest must be sha256: followed by exactly 64 hex digits",
			"consumers[0].credentials.api_keys[3]: must not be empty",
			"consumers[1].credentials.api_keys[0]: the same key is already used by consumer a",
			"consumers[1].credentials.api_keys[2]: the same key is already used by consumer b",
		}},
		{"jwt", []Consumer{{Name: "a", Credentials: Credentials{JWT: []JWTCredential{
			{Algorithm: "HS256", Secret: hmac},
			{Key: "k1", Algorithm: "none"},
			{Key: "k1", Algorithm: "HS512", Secret: "short", PublicKey: keys["rsa"]},
			{Key: "k2", Algorithm: "RS256", Secret: hmac},
			{Key: "k3", Algorithm: "ES256", PublicKey: keys["p384"]},
			{Key: "k4", Algorithm: "EdDSA", PublicKey: keys["rsa"]},
			{Key: "k5", Algorithm: "RS384", PublicKey: "not pem"},
			{Key: "k6"},
			{Key: "k7", Algorithm: "PS256", PublicKey: keys["ed25519"]},
		}}}}, []string{
			"consumers[0].credentials.jwt[0].key: is required",
			`consumers[0].credentials.jwt[1].algorithm: unknown algorithm "none"; use ` + jwtAlgorithms,
			`consumers[0].credentials.jwt[2].key: key "k1" is already used by consumer a`,
			"consumers[0].credentials.jwt[2].public_key: is not used with HS512; set secret instead",
			"consumers[0].credentials.jwt[2].secret: HS512 needs a secret of at least 32 bytes",
			"consumers[0].credentials.jwt[3].secret: is only used with HS* algorithms; RS256 needs public_key",
			"consumers[0].credentials.jwt[3].public_key: is required with RS256: a PEM public key",
			"consumers[0].credentials.jwt[4].public_key: ES256 needs an ECDSA key on curve P-256, got P-384",
			"consumers[0].credentials.jwt[5].public_key: the key type does not match EdDSA (needs an Ed25519 key)",
			"consumers[0].credentials.jwt[6].public_key: must be a PEM block (-----BEGIN PUBLIC KEY-----)",
			"consumers[0].credentials.jwt[7].algorithm: is required: one of " + jwtAlgorithms,
			"consumers[0].credentials.jwt[8].public_key: the key type does not match PS256 (needs an RSA key)",
		}},
		{"basic auth", []Consumer{
			{Name: "a", Credentials: Credentials{BasicAuth: []BasicCredential{
				{Username: "alice", PasswordHash: Secret(testHash())},
				{Username: "b:c", PasswordHash: Secret(testHash())},
				{PasswordHash: "hunter2-plain"},
				{Username: "low", PasswordHash: Secret(lowCost)},
				{Username: "broken", PasswordHash: "$2b$10$tooshort"},
			}}},
			{Name: "b", Credentials: Credentials{BasicAuth: []BasicCredential{{Username: "alice", PasswordHash: Secret(testHash())}}}},
		}, []string{
			`consumers[0].credentials.basic_auth[1].username: must not contain ":"`,
			"consumers[0].credentials.basic_auth[2].username: is required",
			`consumers[0].credentials.basic_auth[2].password_hash: must be a bcrypt hash ($2a$, $2b$ or $2y$), not a password; make one with: htpasswd -bnBC 12 "" PASSWORD | tr -d ':\n'`,
			"consumers[0].credentials.basic_auth[3].password_hash: bcrypt cost 4 is too low; use a cost from 10 to 31",
			`consumers[0].credentials.basic_auth[4].password_hash: is not a valid bcrypt hash; make one with: htpasswd -bnBC 12 "" PASSWORD | tr -d ':\n'`,
			`consumers[1].credentials.basic_auth[0].username: username "alice" is already used by consumer a`,
		}},
		{"certificates", []Consumer{
			{Name: "a", Credentials: Credentials{Certificates: []CertificateCredential{
				{SubjectCN: "billing"},
				{SANURI: "spiffe://example.org/ns/prod/sa/billing"},
				{SANDNS: "Billing.Example.COM."},
				{SANDNS: "*.clients.example.com"},
				{SHA256: strings.Repeat("Ab", 32)},
				{},
				{SubjectCN: "x", SANDNS: "x.example.com"},
				{SHA256: "sha256:abc"},
				{SANURI: "/relative"},
				{SANDNS: "bad name"},
				{SubjectCN: "line\nbreak"},
			}}},
			{Name: "b", Credentials: Credentials{Certificates: []CertificateCredential{
				{SHA256: colonPairs(strings.Repeat("ab", 32))},
				{SANDNS: "billing.example.com"},
				{SANURI: "spiffe://example.org/ns/prod/sa/billing"},
				{SubjectCN: "Billing"},
			}}},
		}, []string{
			"consumers[0].credentials.certificates[5]: set exactly one of subject_cn, san_uri, san_dns or sha256",
			"consumers[0].credentials.certificates[6]: set exactly one of subject_cn, san_uri, san_dns or sha256",
			"consumers[0].credentials.certificates[7].sha256: must be the 64 hex digits of the certificate's SHA-256 fingerprint (colon-separated pairs allowed)",
			"consumers[0].credentials.certificates[8].san_uri: must be an absolute URI like spiffe://example.org/ns/prod/sa/billing",
			"consumers[0].credentials.certificates[9].san_dns: must be a DNS name like client.example.com",
			"consumers[0].credentials.certificates[10].subject_cn: must not contain control characters",
			"consumers[1].credentials.certificates[0].sha256: the same certificate sha256 is already used by consumer a",
			"consumers[1].credentials.certificates[1].san_dns: the same certificate san_dns is already used by consumer a",
			"consumers[1].credentials.certificates[2].san_uri: the same certificate san_uri is already used by consumer a",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := validConfig()
			c.Consumers = tt.cs
			err := c.Validate()
			var got []string
			if err != nil {
				got = strings.Split(err.Error(), "\n")
			}
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("got:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}

// TestValidateConsumersNeverEchoSecrets checks that no message carries a
// key, secret or password hash.
func TestValidateConsumersNeverEchoSecrets(t *testing.T) {
	t.Parallel()
	secrets := []string{keyA, "shortk", "hunter2-plain", "hmac-too-short"}
	c := validConfig()
	c.Consumers = []Consumer{
		{Name: "a", Credentials: Credentials{
			APIKeys:   []Secret{keyA, "shortk"},
			JWT:       []JWTCredential{{Key: "k", Algorithm: "HS256", Secret: "hmac-too-short"}},
			BasicAuth: []BasicCredential{{Username: "u", PasswordHash: "hunter2-plain"}},
		}},
		{Name: "b", Credentials: Credentials{APIKeys: []Secret{keyA}}},
	}
	err := c.Validate()
	if err == nil {
		t.Fatal("got nil error, want several")
	}
	for _, s := range secrets {
		if strings.Contains(err.Error(), s) {
			t.Errorf("got error containing the secret %q:\n%s", s, err)
		}
	}
}
