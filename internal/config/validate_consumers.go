package config

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"strings"

	"golang.org/x/crypto/bcrypt"
)

// minAPIKeyLen is the shortest plain API key accepted.
const minAPIKeyLen = 8

// minHMACSecretLen is the shortest HS* secret accepted, in bytes.
const minHMACSecretLen = 32

// minBcryptCost is the lowest bcrypt cost accepted.
const minBcryptCost = 10

// hashHowTo tells the operator how to make a bcrypt hash.
const hashHowTo = `make one with: htpasswd -bnBC 12 "" PASSWORD | tr -d ':\n'`

// consumers checks the consumers and their credentials. Messages never
// contain a key, secret or password hash.
func (v *validator) consumers() {
	names := make(map[string]int)
	ids := make(map[string]int)
	keys := make(map[[sha256.Size]byte]string)
	jwtKeys := make(map[string]string)
	users := make(map[string]string)
	certs := make(map[string]string)
	for i := range v.c.Consumers {
		c, p := &v.c.Consumers[i], Path{}.Index("consumers", i)
		dupName := false
		if v.name(p.Key("name"), c.Name) {
			if j, dup := names[c.Name]; dup {
				v.errf(p.Key("name"), "duplicate consumer name %q; consumers[%d] has it too", c.Name, j)
				dupName = true
			} else {
				names[c.Name] = i
			}
		}
		if !dupName || c.ID != "" {
			v.consumerID(p, i, c, ids)
		}
		for j, g := range c.Groups {
			gp := p.Index("groups", j)
			switch {
			case g == "":
				v.errf(gp, "group must not be empty")
			case strings.ContainsAny(g, ",\r\n\x00") || strings.TrimSpace(g) != g:
				v.errf(gp, "group must not contain commas, control characters or surrounding spaces")
			}
		}
		v.tierRef(p.Key("tier"), c.Tier)
		owner := c.Name
		if owner == "" {
			owner = p.String()
		}
		cp := p.Key("credentials")
		for j, k := range c.Credentials.APIKeys {
			v.apiKey(cp.Index("api_keys", j), k.Value(), owner, keys)
		}
		for j := range c.Credentials.JWT {
			v.jwtCredential(cp.Index("jwt", j), &c.Credentials.JWT[j], owner, jwtKeys)
		}
		for j := range c.Credentials.BasicAuth {
			v.basicCredential(cp.Index("basic_auth", j), &c.Credentials.BasicAuth[j], owner, users)
		}
		for j := range c.Credentials.Certificates {
			v.certificateCredential(cp.Index("certificates", j), &c.Credentials.Certificates[j], owner, certs)
		}
	}
}

func (v *validator) consumerID(p Path, i int, c *Consumer, ids map[string]int) {
	id := c.ID
	if id == "" {
		id = c.Name
		if id == "" {
			return
		}
	} else if strings.ContainsAny(id, "\r\n\x00") || strings.TrimSpace(id) != id {
		v.errf(p.Key("id"), "must not contain control characters or surrounding spaces")
		return
	}
	if j, dup := ids[id]; dup {
		at := p.Key("id")
		if c.ID == "" {
			at = p.Key("name")
		}
		v.errf(at, "duplicate consumer id %s; consumers[%d] has it too (the id defaults to the name)", v.q(at, id), j)
		return
	}
	ids[id] = i
}

func (v *validator) apiKey(p Path, key, owner string, seen map[[sha256.Size]byte]string) {
	var d [sha256.Size]byte
	if hexPart, ok := strings.CutPrefix(key, "sha256:"); ok {
		b, err := hex.DecodeString(hexPart)
		if err != nil || len(b) != sha256.Size {
			v.errf(p, "an API key digest must be sha256: followed by exactly 64 hex digits")
			return
		}
		copy(d[:], b)
	} else {
		switch {
		case key == "":
			v.errf(p, "must not be empty")
			return
		case len(key) < minAPIKeyLen:
			v.errf(p, "an API key must be at least %d characters (or sha256: followed by 64 hex digits)", minAPIKeyLen)
			return
		}
		d = sha256.Sum256([]byte(key))
	}
	if other, dup := seen[d]; dup {
		v.errf(p, "the same key is already used by consumer %s", other)
		return
	}
	seen[d] = owner
}

// jwtFamilies maps each accepted JWT algorithm to its key family.
var jwtFamilies = map[string]string{
	"HS256": "hmac", "HS384": "hmac", "HS512": "hmac",
	"RS256": "rsa", "RS384": "rsa", "RS512": "rsa",
	"PS256": "rsa", "PS384": "rsa", "PS512": "rsa",
	"ES256": "P-256", "ES384": "P-384", "ES512": "P-521",
	"EdDSA": "ed25519",
}

const jwtAlgorithms = "HS256, HS384, HS512, RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, ES512 or EdDSA"

func (v *validator) jwtCredential(p Path, j *JWTCredential, owner string, seen map[string]string) {
	kp := p.Key("key")
	switch {
	case j.Key == "":
		v.errf(kp, "is required")
	default:
		if other, dup := seen[j.Key]; dup {
			v.errf(kp, "key %s is already used by consumer %s", v.q(kp, j.Key), other)
		} else {
			seen[j.Key] = owner
		}
	}
	ap := p.Key("algorithm")
	family, ok := jwtFamilies[j.Algorithm]
	switch {
	case j.Algorithm == "":
		v.errf(ap, "is required: one of %s", jwtAlgorithms)
		return
	case !ok:
		v.errf(ap, "unknown algorithm %s; use %s", v.q(ap, j.Algorithm), jwtAlgorithms)
		return
	}
	if family == "hmac" {
		if j.PublicKey != "" {
			v.errf(p.Key("public_key"), "is not used with %s; set secret instead", j.Algorithm)
		}
		if n := len(j.Secret.Value()); n < minHMACSecretLen {
			v.errf(p.Key("secret"), "%s needs a secret of at least %d bytes", j.Algorithm, minHMACSecretLen)
		}
		return
	}
	if j.Secret != "" {
		v.errf(p.Key("secret"), "is only used with HS* algorithms; %s needs public_key", j.Algorithm)
	}
	pp := p.Key("public_key")
	if j.PublicKey == "" {
		v.errf(pp, "is required with %s: a PEM public key", j.Algorithm)
		return
	}
	if msg := checkPublicKey(j.PublicKey, family, j.Algorithm); msg != "" {
		v.errf(pp, "%s", msg)
	}
}

// checkPublicKey parses a PEM public key and checks that it suits the
// algorithm's family; it returns "" when it does.
func checkPublicKey(pemText, family, alg string) string {
	block, _ := pem.Decode([]byte(pemText))
	if block == nil {
		return "must be a PEM block (-----BEGIN PUBLIC KEY-----)"
	}
	key, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		return "is not a valid PKIX public key (-----BEGIN PUBLIC KEY-----)"
	}
	switch k := key.(type) {
	case *rsa.PublicKey:
		if family == "rsa" {
			if k.N.BitLen() < 2048 {
				return "RSA keys must have at least 2048 bits"
			}
			return ""
		}
	case *ecdsa.PublicKey:
		if family == "P-256" || family == "P-384" || family == "P-521" {
			if name := curveName(k.Curve); name != family {
				return alg + " needs an ECDSA key on curve " + family + ", got " + name
			}
			return ""
		}
	case ed25519.PublicKey:
		if family == "ed25519" {
			return ""
		}
	}
	return "the key type does not match " + alg + " (" + keyFamilyHint(family) + ")"
}

func curveName(c elliptic.Curve) string {
	if c == nil || c.Params() == nil {
		return "an unknown curve"
	}
	return c.Params().Name
}

func keyFamilyHint(family string) string {
	switch family {
	case "rsa":
		return "needs an RSA key"
	case "ed25519":
		return "needs an Ed25519 key"
	}
	return "needs an ECDSA key on curve " + family
}

func (v *validator) basicCredential(p Path, b *BasicCredential, owner string, seen map[string]string) {
	up := p.Key("username")
	switch {
	case b.Username == "":
		v.errf(up, "is required")
	case strings.Contains(b.Username, ":"):
		v.errf(up, `must not contain ":"`)
	case strings.ContainsAny(b.Username, "\r\n\x00"):
		v.errf(up, "must not contain control characters")
	default:
		if other, dup := seen[b.Username]; dup {
			v.errf(up, "username %s is already used by consumer %s", v.q(up, b.Username), other)
		} else {
			seen[b.Username] = owner
		}
	}
	hp := p.Key("password_hash")
	h := b.PasswordHash.Value()
	if h == "" {
		v.errf(hp, "is required: a bcrypt hash; %s", hashHowTo)
		return
	}
	if !strings.HasPrefix(h, "$2a$") && !strings.HasPrefix(h, "$2b$") && !strings.HasPrefix(h, "$2y$") {
		v.errf(hp, "must be a bcrypt hash ($2a$, $2b$ or $2y$), not a password; %s", hashHowTo)
		return
	}
	cost, err := bcrypt.Cost([]byte(h))
	switch {
	case err != nil || len(h) != 60:
		v.errf(hp, "is not a valid bcrypt hash; %s", hashHowTo)
	case cost < minBcryptCost:
		v.errf(hp, "bcrypt cost %d is too low; use a cost from %d to 31", cost, minBcryptCost)
	}
}
