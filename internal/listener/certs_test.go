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

// fakeSource is an ACME domain's certificate as the manager serves it.
type fakeSource struct{ cert *tls.Certificate }

func (f *fakeSource) Certificate() *tls.Certificate { return f.cert }

// TestCertificatesACMEBesideFiles: names obtained with ACME are served
// from their ACME certificate (once there is one), even when a file
// certificate names them too; other names from the files.
func TestCertificatesACMEBesideFiles(t *testing.T) {
	dir := t.TempDir()
	files := writeCert(t, dir, "files", "files.example.com", "acme.example.com")
	acmeFile := writeCert(t, dir, "acme", "acme.example.com")
	acmeCert, err := tls.LoadX509KeyPair(acmeFile.CertFile, acmeFile.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	src := &fakeSource{}
	certs, err := NewCertificates(&config.TLS{Certificates: []config.CertificateFiles{files}}, []NamedSource{{"acme.example.com", src}})
	if err != nil {
		t.Fatal(err)
	}
	if got := certs.Select("acme.example.com"); got != nil {
		t.Errorf("ACME name before issuance: got a certificate, want none (the handshake fails)")
	}
	src.cert = &acmeCert
	if got := certs.Select("acme.example.com"); got != &acmeCert {
		t.Errorf("ACME name: got another certificate than the ACME one")
	}
	if got := certs.Select("files.example.com"); got == nil || got == &acmeCert {
		t.Errorf("file name: got %v, want the file certificate", got)
	}
	if got := certs.Select("unknown.example.com"); got == nil || got == &acmeCert {
		t.Errorf("unknown name: want the file certificate as the default")
	}
	// Without files the first ACME domain is the default.
	only, err := NewCertificates(&config.TLS{}, []NamedSource{{"acme.example.com", src}})
	if err != nil || only.Select("unknown.example.com") != &acmeCert {
		t.Errorf("ACME only: default %v, %v; want the ACME certificate", only, err)
	}
	var names []string
	certs.Each(func(n string, _ *tls.Certificate) { names = append(names, n) })
	if len(names) != 2 || names[0] != "acme.example.com" || names[1] != "files.example.com" {
		t.Errorf("Each: got %v", names)
	}
}
