package listener

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/portico-gateway/portico/internal/config"
)

// writeCert writes a self-signed certificate for names into dir and
// returns its files.
func writeCert(t *testing.T, dir, file string, names ...string) config.CertificateFiles {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: names[0]},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		DNSNames:     names,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kd, _ := x509.MarshalPKCS8PrivateKey(key)
	f := config.CertificateFiles{CertFile: filepath.Join(dir, file+".pem"), KeyFile: filepath.Join(dir, file+".key")}
	_ = os.WriteFile(f.CertFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	_ = os.WriteFile(f.KeyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kd}), 0o600)
	return f
}

func TestCertificatesSelectBySNI(t *testing.T) {
	dir := t.TempDir()
	apex := writeCert(t, dir, "apex", "example.com", "www.example.com")
	wild := writeCert(t, dir, "wild", "*.api.example.com")
	other := writeCert(t, dir, "other", "other.test")
	other.Default = true
	certs, err := LoadCertificates(&config.TLS{Certificates: []config.CertificateFiles{apex, wild, other}})
	if err != nil {
		t.Fatal(err)
	}
	name := func(c *tls.Certificate) string { return c.Leaf.Subject.CommonName }
	tests := []struct{ sni, want string }{
		{"example.com", "example.com"},
		{"WWW.Example.com.", "example.com"},
		{"orders.api.example.com", "*.api.example.com"},
		{"a.b.api.example.com", "other.test"}, // one label only
		{"api.example.com", "other.test"},
		{"", "other.test"},
		{"unknown.test", "other.test"},
	}
	for _, tt := range tests {
		if got := name(certs.Select(tt.sni)); got != tt.want {
			t.Errorf("SNI %q: got the certificate of %s, want %s", tt.sni, got, tt.want)
		}
	}
	if _, err := LoadCertificates(&config.TLS{Certificates: []config.CertificateFiles{{CertFile: filepath.Join(dir, "missing.pem"), KeyFile: apex.KeyFile}}}); err == nil {
		t.Error("got no error for a missing certificate file")
	}
}
