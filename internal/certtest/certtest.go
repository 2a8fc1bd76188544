// Package certtest makes X.509 material for tests at test time: a CA,
// server and client certificates it issues (with a common name, URI and
// DNS subject alternative names, chosen validity), and revocation lists it
// signs. Nothing is read from disk; files are written where a test asks.
package certtest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// nextSerial returns a random 127-bit serial number, as CAs use.
func nextSerial() *big.Int {
	n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127)) // crypto/rand never fails (Go 1.24+)
	return n.Add(n, big.NewInt(1))
}

// CA is a certificate authority that issues certificates and CRLs.
type CA struct {
	Cert *x509.Certificate
	Key  crypto.Signer
}

// NewCA makes a self-signed CA named name, valid from an hour ago for a
// day.
func NewCA(t testing.TB, name string) *CA {
	t.Helper()
	return newCA(t, name, nil)
}

// Intermediate makes a CA named name whose certificate ca signs. The
// certificates it issues carry it in their chains.
func (ca *CA) Intermediate(t testing.TB, name string) *CA {
	t.Helper()
	return newCA(t, name, ca)
}

func newCA(t testing.TB, name string, parent *CA) *CA {
	t.Helper()
	key := newKey(t)
	tmpl := &x509.Certificate{
		SerialNumber:          nextSerial(),
		Subject:               pkix.Name{CommonName: name, Organization: []string{"Portico tests"}},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	signer, signKey := tmpl, key
	if parent != nil {
		signer, signKey = parent.Cert, parent.Key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, signer, key.Public(), signKey)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &CA{Cert: cert, Key: key}
}

// Options describe a certificate to issue.
type Options struct {
	// CommonName is the subject's common name.
	CommonName string
	// DNSNames, URIs and IPs are the subject alternative names.
	DNSNames []string
	URIs     []string
	IPs      []net.IP
	// Server makes a server certificate (extended key usage server auth);
	// default a client certificate (client auth).
	Server bool
	// NotBefore and NotAfter bound the validity; default from an hour ago
	// for a day.
	NotBefore, NotAfter time.Time
}

// Cert is an issued certificate and its key.
type Cert struct {
	Cert *x509.Certificate
	Key  crypto.Signer
	// Chain is the certificate followed by its issuer's (for TLS).
	Chain [][]byte
}

// Issue makes a certificate signed by ca.
func (ca *CA) Issue(t testing.TB, o Options) *Cert {
	t.Helper()
	key := newKey(t)
	usage := x509.ExtKeyUsageClientAuth
	if o.Server {
		usage = x509.ExtKeyUsageServerAuth
	}
	tmpl := &x509.Certificate{
		SerialNumber: nextSerial(),
		Subject:      pkix.Name{CommonName: o.CommonName, Organization: []string{"Portico tests"}},
		NotBefore:    o.NotBefore,
		NotAfter:     o.NotAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{usage},
		DNSNames:     o.DNSNames,
		IPAddresses:  o.IPs,
	}
	if tmpl.NotBefore.IsZero() {
		tmpl.NotBefore = time.Now().Add(-time.Hour)
	}
	if tmpl.NotAfter.IsZero() {
		tmpl.NotAfter = time.Now().Add(24 * time.Hour)
	}
	for _, s := range o.URIs {
		u, err := url.Parse(s)
		if err != nil {
			t.Fatal(err)
		}
		tmpl.URIs = append(tmpl.URIs, u)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, key.Public(), ca.Key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &Cert{Cert: cert, Key: key, Chain: [][]byte{der, ca.Cert.Raw}}
}

// Server issues a server certificate for localhost (127.0.0.1 and the
// name localhost) and names.
func (ca *CA) Server(t testing.TB, names ...string) *Cert {
	t.Helper()
	return ca.Issue(t, Options{CommonName: "localhost", Server: true,
		DNSNames: append([]string{"localhost"}, names...), IPs: []net.IP{net.IPv4(127, 0, 0, 1)}})
}

// CRL returns a DER revocation list signed by ca that revokes certs,
// current from an hour ago until next.
func (ca *CA) CRL(t testing.TB, next time.Time, certs ...*x509.Certificate) []byte {
	t.Helper()
	tmpl := &x509.RevocationList{
		Number:     nextSerial(),
		ThisUpdate: time.Now().Add(-time.Hour),
		NextUpdate: next,
	}
	if next.Before(tmpl.ThisUpdate) {
		tmpl.ThisUpdate = next.Add(-time.Hour)
	}
	for _, c := range certs {
		tmpl.RevokedCertificateEntries = append(tmpl.RevokedCertificateEntries,
			x509.RevocationListEntry{SerialNumber: c.SerialNumber, RevocationTime: time.Now().Add(-time.Minute)})
	}
	der, err := x509.CreateRevocationList(rand.Reader, tmpl, ca.Cert, ca.Key)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// PEM returns the CA certificate in PEM.
func (ca *CA) PEM() []byte { return CertPEM(ca.Cert) }

// Pool returns a pool holding only the CA.
func (ca *CA) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.Cert)
	return p
}

// TLS returns the certificate for a tls.Config.
func (c *Cert) TLS() tls.Certificate {
	return tls.Certificate{Certificate: c.Chain, PrivateKey: c.Key, Leaf: c.Cert}
}

// SHA256 returns the fingerprint of the DER certificate, in lower-case hex.
func (c *Cert) SHA256() string {
	d := sha256.Sum256(c.Cert.Raw)
	return hex.EncodeToString(d[:])
}

// WriteFiles writes the chain (PEM) and the key (PKCS #8 PEM) into dir as
// NAME.pem and NAME.key.
func (c *Cert) WriteFiles(t testing.TB, dir, name string) (certFile, keyFile string) {
	t.Helper()
	var chain []byte
	for _, der := range c.Chain {
		chain = append(chain, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})...)
	}
	kd, err := x509.MarshalPKCS8PrivateKey(c.Key)
	if err != nil {
		t.Fatal(err)
	}
	certFile = WriteFile(t, dir, name+".pem", chain)
	keyFile = WriteFile(t, dir, name+".key", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kd}))
	return certFile, keyFile
}

// CertPEM returns cert in PEM.
func CertPEM(cert *x509.Certificate) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw})
}

// CRLPEM returns a DER revocation list in PEM.
func CRLPEM(der []byte) []byte { return pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: der}) }

// WriteFile writes data to dir/name and returns the path.
func WriteFile(t testing.TB, dir, name string, data []byte) string {
	t.Helper()
	f := filepath.Join(dir, name)
	if err := os.WriteFile(f, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

// ReplaceFile writes data beside dir/name and renames it over the file,
// as renewals and configuration tools do, so a watcher sees the change
// at once.
func ReplaceFile(t testing.TB, dir, name string, data []byte) {
	t.Helper()
	tmp := WriteFile(t, dir, "."+name+".tmp", data)
	if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
		t.Fatal(err)
	}
}

func newKey(t testing.TB) crypto.Signer {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return key
}
