package jwt

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"math/big"
)

// minRSABits is the smallest RSA modulus accepted for verification.
const minRSABits = 2048

// verifyKey is one verification key bound to its algorithm family: an RSA
// key only ever verifies RS*/PS*, an EC key only the ES* of its curve, an
// Ed25519 key only EdDSA and an HMAC secret only HS*. A public key is never
// handed to the HMAC verifier, which stops the alg-confusion attack.
type verifyKey struct {
	family string // "HS", "RSA", "ES256", "ES384", "ES512", "EdDSA"
	alg    string // when set, the only algorithm this key verifies (JWK "alg")
	key    any    // []byte, *rsa.PublicKey, *ecdsa.PublicKey, ed25519.PublicKey
}

// accepts reports whether the key may verify a token signed with alg.
func (k verifyKey) accepts(alg string) bool {
	if k.alg != "" && k.alg != alg {
		return false
	}
	return algFamily[alg] == k.family
}

var errUnsupportedKey = errors.New("unsupported public key")

// parsePublicPEM parses a PEM public key or certificate.
func parsePublicPEM(b []byte) (verifyKey, error) {
	block, _ := pem.Decode(b)
	if block == nil {
		return verifyKey{}, errors.New("no PEM block")
	}
	var pub any
	var err error
	switch block.Type {
	case "PUBLIC KEY":
		pub, err = x509.ParsePKIXPublicKey(block.Bytes)
	case "RSA PUBLIC KEY":
		pub, err = x509.ParsePKCS1PublicKey(block.Bytes)
	case "CERTIFICATE":
		var cert *x509.Certificate
		if cert, err = x509.ParseCertificate(block.Bytes); err == nil {
			pub = cert.PublicKey
		}
	default:
		return verifyKey{}, errUnsupportedKey
	}
	if err != nil {
		return verifyKey{}, err
	}
	return publicKey(pub)
}

// publicKey binds a parsed public key to its family.
func publicKey(pub any) (verifyKey, error) {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		if k.N.BitLen() < minRSABits {
			return verifyKey{}, errUnsupportedKey
		}
		return verifyKey{family: "RSA", key: k}, nil
	case *ecdsa.PublicKey:
		switch k.Curve {
		case elliptic.P256():
			return verifyKey{family: "ES256", key: k}, nil
		case elliptic.P384():
			return verifyKey{family: "ES384", key: k}, nil
		case elliptic.P521():
			return verifyKey{family: "ES512", key: k}, nil
		}
	case ed25519.PublicKey:
		return verifyKey{family: "EdDSA", key: k}, nil
	}
	return verifyKey{}, errUnsupportedKey
}

// credentialKey parses a consumer credential: a secret for HS*, a PEM
// public key otherwise; the key is bound to the credential's algorithm.
func credentialKey(alg string, secret []byte, publicPEM string) (verifyKey, error) {
	fam, ok := algFamily[alg]
	if !ok {
		return verifyKey{}, errors.New("unknown algorithm")
	}
	if fam == "HS" {
		if len(secret) < 32 {
			return verifyKey{}, errors.New("secret shorter than 32 bytes")
		}
		return verifyKey{family: "HS", alg: alg, key: secret}, nil
	}
	k, err := parsePublicPEM([]byte(publicPEM))
	if err != nil {
		return verifyKey{}, err
	}
	if k.family != fam {
		return verifyKey{}, errors.New("public key does not match the algorithm")
	}
	k.alg = alg
	return k, nil
}

// jwk is the subset of RFC 7517 fields the plugin reads.
type jwk struct {
	Kty string `json:"kty"`
	Kid string `json:"kid"`
	Use string `json:"use"`
	Alg string `json:"alg"`
	N   string `json:"n"`
	E   string `json:"e"`
	Crv string `json:"crv"`
	X   string `json:"x"`
	Y   string `json:"y"`
}

// keySet is an immutable parsed key set: keys by kid, and every key for
// tokens without a kid.
type keySet struct {
	byKid map[string][]verifyKey
	all   []verifyKey
}

// parseJWKS parses a JWK Set. Keys that are not for signatures, of an
// unknown type or malformed are skipped; a set with no usable key is an
// error, so a broken response never replaces a good set.
func parseJWKS(body []byte) (*keySet, error) {
	var doc struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return nil, errors.New("key set is not JSON")
	}
	ks := &keySet{byKid: make(map[string][]verifyKey)}
	for _, raw := range doc.Keys {
		var j jwk
		if json.Unmarshal(raw, &j) != nil {
			continue
		}
		k, err := j.verifyKey()
		if err != nil {
			continue
		}
		ks.all = append(ks.all, k)
		if j.Kid != "" {
			ks.byKid[j.Kid] = append(ks.byKid[j.Kid], k)
		}
	}
	if len(ks.all) == 0 {
		return nil, errors.New("key set has no usable signing key")
	}
	return ks, nil
}

func (j *jwk) verifyKey() (verifyKey, error) {
	if j.Use != "" && j.Use != "sig" {
		return verifyKey{}, errUnsupportedKey
	}
	var k verifyKey
	switch j.Kty {
	case "RSA":
		n, err1 := b64(j.N)
		e, err2 := b64(j.E)
		if err1 != nil || err2 != nil || len(e) == 0 || len(e) > 4 {
			return k, errUnsupportedKey
		}
		ev := int(new(big.Int).SetBytes(e).Int64())
		if ev < 3 || ev%2 == 0 {
			return k, errUnsupportedKey
		}
		pub := &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: ev}
		if pub.N.BitLen() < minRSABits {
			return k, errUnsupportedKey
		}
		k = verifyKey{family: "RSA", key: pub}
	case "EC":
		var curve elliptic.Curve
		var fam string
		switch j.Crv {
		case "P-256":
			curve, fam = elliptic.P256(), "ES256"
		case "P-384":
			curve, fam = elliptic.P384(), "ES384"
		case "P-521":
			curve, fam = elliptic.P521(), "ES512"
		default:
			return k, errUnsupportedKey
		}
		size := (curve.Params().BitSize + 7) / 8
		x, err1 := b64(j.X)
		y, err2 := b64(j.Y)
		if err1 != nil || err2 != nil || len(x) != size || len(y) != size {
			return k, errUnsupportedKey
		}
		point := make([]byte, 0, 1+2*size)
		point = append(append(append(point, 4), x...), y...)
		pub, err := ecdsa.ParseUncompressedPublicKey(curve, point)
		if err != nil {
			return k, errUnsupportedKey
		}
		k = verifyKey{family: fam, key: pub}
	case "OKP":
		x, err := b64(j.X)
		if j.Crv != "Ed25519" || err != nil || len(x) != ed25519.PublicKeySize {
			return k, errUnsupportedKey
		}
		k = verifyKey{family: "EdDSA", key: ed25519.PublicKey(x)}
	default:
		return k, errUnsupportedKey // "oct" (symmetric) keys are never taken from a URL
	}
	if j.Alg != "" {
		if algFamily[j.Alg] != k.family {
			return verifyKey{}, errUnsupportedKey
		}
		k.alg = j.Alg
	}
	return k, nil
}

func b64(s string) ([]byte, error) { return base64.RawURLEncoding.DecodeString(s) }
