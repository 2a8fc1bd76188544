// Package consumer holds the compiled set of known callers and the lookup
// tables their credentials need. A Registry is built once per config
// snapshot from config.Consumers and is read-only afterwards.
//
// API keys are looked up by their SHA-256 digest, so the time a lookup
// takes does not depend on how much of a key matched, and the config may
// hold "sha256:<hex>" digests instead of keys. Client certificates are
// looked up by one field at a time (fingerprint, URI or DNS name, subject
// common name), normalized as config.CertificateCredential.Field does.
package consumer

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/portico-gateway/portico/internal/config"
)

// Consumer is one known caller, as the plugins and the upstream see it.
type Consumer struct {
	Name   string
	ID     string
	Groups []string
	Tier   string
	// GroupsHeader is Groups joined with ", ", computed once.
	GroupsHeader string
	// Anonymous marks the consumer a route admits callers as when they
	// present no valid credential (the auth plugin's anonymous option).
	Anonymous bool
}

// InGroup reports whether the consumer belongs to group.
func (c *Consumer) InGroup(group string) bool {
	for _, g := range c.Groups {
		if g == group {
			return true
		}
	}
	return false
}

// JWTKey is one consumer's JWT credential.
type JWTKey struct {
	Consumer  *Consumer
	Key       string // value of the key claim
	Algorithm string
	Secret    []byte // HS*
	PublicPEM string // RS*, PS*, ES*, EdDSA
}

// BasicUser is one consumer's basic-auth user.
type BasicUser struct {
	Consumer     *Consumer
	Username     string
	PasswordHash []byte // bcrypt
}

// Registry is the read-only set of consumers of one config.
type Registry struct {
	byName map[string]*Consumer
	byKey  map[[sha256.Size]byte]*Consumer
	jwt    map[string]*JWTKey
	basic  map[string]*BasicUser
	certs  map[certKey]*Consumer
}

// certKey is one certificate field and its normalized value.
type certKey struct{ field, value string }

// New builds the registry. The config has been validated (unique names,
// keys and usernames; well-formed digests), so errors here are defensive.
func New(cs []config.Consumer) (*Registry, error) {
	r := &Registry{
		byName: make(map[string]*Consumer, len(cs)),
		byKey:  make(map[[sha256.Size]byte]*Consumer),
		jwt:    make(map[string]*JWTKey),
		basic:  make(map[string]*BasicUser),
		certs:  make(map[certKey]*Consumer),
	}
	for _, cc := range cs {
		c := &Consumer{Name: cc.Name, ID: cc.ID, Groups: cc.Groups, Tier: cc.Tier,
			GroupsHeader: strings.Join(cc.Groups, ", ")}
		if c.ID == "" {
			c.ID = c.Name
		}
		r.byName[c.Name] = c
		for _, k := range cc.Credentials.APIKeys {
			d, err := KeyDigest(k.Value())
			if err != nil {
				return nil, fmt.Errorf("consumer %s: %w", c.Name, err)
			}
			r.byKey[d] = c
		}
		for _, j := range cc.Credentials.JWT {
			r.jwt[j.Key] = &JWTKey{Consumer: c, Key: j.Key, Algorithm: j.Algorithm,
				Secret: []byte(j.Secret.Value()), PublicPEM: j.PublicKey}
		}
		for _, b := range cc.Credentials.BasicAuth {
			r.basic[b.Username] = &BasicUser{Consumer: c, Username: b.Username,
				PasswordHash: []byte(b.PasswordHash.Value())}
		}
		for _, cc := range cc.Credentials.Certificates {
			field, value, ok := cc.Field()
			if !ok {
				return nil, fmt.Errorf("consumer %s: a malformed certificate credential", c.Name)
			}
			r.certs[certKey{field, value}] = c
		}
	}
	return r, nil
}

// KeyDigest returns the SHA-256 digest a configured API key is stored
// under: the digest of a plain key, or the decoded "sha256:<hex>" form.
func KeyDigest(configured string) ([sha256.Size]byte, error) {
	var d [sha256.Size]byte
	if hexPart, ok := strings.CutPrefix(configured, "sha256:"); ok {
		b, err := hex.DecodeString(hexPart)
		if err != nil || len(b) != sha256.Size {
			return d, fmt.Errorf("an API key digest must be sha256: followed by 64 hex digits")
		}
		copy(d[:], b)
		return d, nil
	}
	return sha256.Sum256([]byte(configured)), nil
}

// ByName returns the consumer called name. A nil Registry knows no one.
func (r *Registry) ByName(name string) (*Consumer, bool) {
	if r == nil {
		return nil, false
	}
	c, ok := r.byName[name]
	return c, ok
}

// ByAPIKey returns the consumer that owns key. The key is hashed first, so
// the lookup's timing does not reveal partial matches.
func (r *Registry) ByAPIKey(key string) (*Consumer, bool) {
	return r.ByKeyDigest(sha256.Sum256([]byte(key)))
}

// ByKeyDigest returns the consumer that owns the API key whose SHA-256 is
// d, for callers that need the digest themselves (credential ids) and so
// hash the key only once.
func (r *Registry) ByKeyDigest(d [sha256.Size]byte) (*Consumer, bool) {
	if r == nil {
		return nil, false
	}
	c, ok := r.byKey[d]
	return c, ok
}

// JWT returns the consumer JWT credential whose key claim value is key.
func (r *Registry) JWT(key string) (*JWTKey, bool) {
	if r == nil {
		return nil, false
	}
	k, ok := r.jwt[key]
	return k, ok
}

// JWTKeys returns every consumer JWT credential (for build-time parsing).
func (r *Registry) JWTKeys() []*JWTKey {
	if r == nil {
		return nil
	}
	out := make([]*JWTKey, 0, len(r.jwt))
	for _, k := range r.jwt {
		out = append(out, k)
	}
	return out
}

// Basic returns the basic-auth user called username.
func (r *Registry) Basic(username string) (*BasicUser, bool) {
	if r == nil {
		return nil, false
	}
	u, ok := r.basic[username]
	return u, ok
}

// ByCertificate returns the consumer that owns the certificate credential
// of field (config.CertSHA256, CertSANURI, CertSANDNS or CertSubjectCN)
// with value, normalized as config.CertificateCredential.Field returns it.
func (r *Registry) ByCertificate(field, value string) (*Consumer, bool) {
	if r == nil {
		return nil, false
	}
	c, ok := r.certs[certKey{field, value}]
	return c, ok
}
