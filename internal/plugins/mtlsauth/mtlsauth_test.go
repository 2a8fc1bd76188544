package mtlsauth_test

import (
	"bytes"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"net/http"
	"strings"
	"testing"

	"github.com/portico-gateway/portico/internal/certtest"
	"github.com/portico-gateway/portico/internal/config"
	"github.com/portico-gateway/portico/internal/pipeline"
	"github.com/portico-gateway/portico/internal/plugins/acl"
	"github.com/portico-gateway/portico/internal/plugins/authgate"
	"github.com/portico-gateway/portico/internal/plugins/authtest"
	"github.com/portico-gateway/portico/internal/plugins/keyauth"
	"github.com/portico-gateway/portico/internal/plugins/mtlsauth"
)

const bothKey = "both-key-0123456789abcdef"

// pki is the material of the tests: a server certificate, a client root
// CA with an intermediate, and client certificates.
type pki struct {
	serverCA, root, inter, other *certtest.CA
	certFile, keyFile, caFile    string
	certs                        map[string]*certtest.Cert
}

func newPKI(t *testing.T) *pki {
	t.Helper()
	dir := t.TempDir()
	p := &pki{serverCA: certtest.NewCA(t, "server CA"), root: certtest.NewCA(t, "client root"),
		other: certtest.NewCA(t, "other CA"), certs: make(map[string]*certtest.Cert)}
	p.inter = p.root.Intermediate(t, "client issuing CA")
	p.certFile, p.keyFile = p.serverCA.Server(t).WriteFiles(t, dir, "server")
	p.caFile = certtest.WriteFile(t, dir, "clients.pem", p.root.PEM())
	issue := func(name string, ca *certtest.CA, o certtest.Options) { p.certs[name] = ca.Issue(t, o) }
	issue("uri", p.root, certtest.Options{CommonName: "billing-uri", URIs: []string{"spiffe://example.org/billing"}})
	issue("pinned", p.root, certtest.Options{CommonName: "reports", URIs: []string{"spiffe://example.org/billing"}})
	issue("dns", p.inter, certtest.Options{CommonName: "reports", DNSNames: []string{"App.Clients.Example.com"}})
	issue("cn", p.inter, certtest.Options{CommonName: "reports"})
	issue("both", p.root, certtest.Options{CommonName: "both"})
	issue("nobody", p.root, certtest.Options{CommonName: "nobody", DNSNames: []string{"nobody.example.com"}})
	issue("ambiguous", p.root, certtest.Options{CommonName: "x",
		URIs: []string{"spiffe://example.org/billing", "spiffe://example.org/ops"}})
	issue("odd", p.root, certtest.Options{CommonName: "odd, \"name\"\nwith\x7fbytes",
		URIs: []string{"urn:a,b"}, DNSNames: []string{"a.example.com", "b.example.com"}})
	issue("foreign", p.other, certtest.Options{CommonName: "reports"})
	return p
}

func (p *pki) consumers() []config.Consumer {
	return []config.Consumer{
		{Name: "billing", Groups: []string{"payments"}, Credentials: config.Credentials{
			Certificates: []config.CertificateCredential{{SANURI: "spiffe://example.org/billing"}}}},
		{Name: "ops", Credentials: config.Credentials{
			Certificates: []config.CertificateCredential{{SANURI: "spiffe://example.org/ops"}}}},
		{Name: "pinned", Credentials: config.Credentials{
			Certificates: []config.CertificateCredential{{SHA256: strings.ToUpper(p.certs["pinned"].SHA256())}}}},
		{Name: "dnsapp", Credentials: config.Credentials{
			Certificates: []config.CertificateCredential{{SANDNS: "app.clients.example.com"}}}},
		{Name: "reports", Groups: []string{"analytics"}, Credentials: config.Credentials{
			Certificates: []config.CertificateCredential{{SubjectCN: "reports"}}}},
		{Name: "both", Credentials: config.Credentials{APIKeys: []config.Secret{bothKey},
			Certificates: []config.CertificateCredential{{SubjectCN: "both"}}}},
		{Name: "odd", Credentials: config.Credentials{
			Certificates: []config.CertificateCredential{{SANDNS: "a.example.com"}}}},
		{Name: "guest", Groups: []string{"public"}},
	}
}

// start runs plugins behind a TLS listener with client_auth in mode.
func (p *pki) start(t *testing.T, mode string, plugins ...pipeline.Configured) *authtest.Gateway {
	t.Helper()
	return authtest.Start(t, p.options(mode), plugins...)
}

func (p *pki) options(mode string) authtest.Options {
	return authtest.Options{Consumers: p.consumers(), RootCAs: p.serverCA.Pool(),
		TLS: &config.TLS{CertFile: p.certFile, KeyFile: p.keyFile,
			ClientAuth: &config.ClientAuth{Mode: mode, CAFiles: []string{p.caFile}}}}
}

// as returns g presenting the certificate called name ("" for none).
func (p *pki) as(t *testing.T, g *authtest.Gateway, name string) *authtest.Gateway {
	t.Helper()
	if name == "" {
		return g.WithClientCertificate(t, nil)
	}
	c := p.certs[name].TLS()
	return g.WithClientCertificate(t, &c)
}

// credentialProbe copies the Exchange's credential id into a request
// header, so the tests see what the access log and rate_limit see.
func credentialProbe() pipeline.Registration {
	return pipeline.Registration{
		Name: "credential_probe", Phase: pipeline.PhaseAuthorize,
		Spec: func() pipeline.Spec { return &probeSpec{} },
		Build: func(pipeline.Spec, *pipeline.BuildEnv) (pipeline.Middleware, error) {
			return func(next http.Handler) http.Handler {
				return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					r.Header.Set("X-Test-Credential", pipeline.FromContext(r.Context()).Credential)
					next.ServeHTTP(w, r)
				})
			}, nil
		},
	}
}

type probeSpec struct{}

func (*probeSpec) Validate(config.Path) error { return nil }

func hdr(kv ...string) http.Header {
	h := http.Header{}
	for i := 0; i < len(kv); i += 2 {
		h.Add(kv[i], kv[i+1])
	}
	return h
}

// check checks one answer: 200 as consumer wantID (X-Consumer-ID
// upstream), or a refusal with status and detail.
func check(t *testing.T, name string, res authtest.Result, status int, want string) {
	t.Helper()
	if res.Status != status {
		t.Errorf("%s: got status %d, want %d (%s)", name, res.Status, status, res.Body)
		return
	}
	if status != 200 {
		if res.Upstream != nil {
			t.Errorf("%s: got a request upstream, want none", name)
		}
		if !strings.Contains(res.Body, `"detail":"`+want+`"`) {
			t.Errorf("%s: got body %s, want detail %q", name, res.Body, want)
		}
		return
	}
	if res.Upstream == nil {
		t.Errorf("%s: got nothing upstream", name)
		return
	}
	if got := res.Upstream.Header.Values("X-Consumer-ID"); len(got) != 1 || got[0] != want {
		t.Errorf("%s: got X-Consumer-ID %q upstream, want %q", name, got, want)
	}
}

func TestMapping(t *testing.T) {
	t.Parallel()
	p := newPKI(t)
	def := p.start(t, "request", authtest.Configure(t, mtlsauth.Registration(), ""),
		authtest.Configure(t, credentialProbe(), ""))
	cnOnly := p.start(t, "request", authtest.Configure(t, mtlsauth.Registration(), "{match: [subject_cn]}"))
	uriFirst := p.start(t, "request", authtest.Configure(t, mtlsauth.Registration(), "{match: [subject_cn, san_uri]}"))
	tests := []struct {
		name   string
		gw     *authtest.Gateway
		cert   string
		status int
		want   string // consumer id, or the problem detail
	}{
		{"no certificate", def, "", 401, "a client certificate is required"},
		{"fingerprint before the URI", def, "pinned", 200, "pinned"},
		{"URI", def, "uri", 200, "billing"},
		{"DNS before the common name, any case", def, "dns", 200, "dnsapp"},
		{"common name, through an intermediate", def, "cn", 200, "reports"},
		{"no consumer", def, "nobody", 401, "the client certificate is not registered to any consumer"},
		{"two URIs, two consumers", def, "ambiguous", 401, "the client certificate matches more than one consumer"},
		{"match subject_cn only: the URI is not tried", cnOnly, "uri", 401, "the client certificate is not registered to any consumer"},
		{"match subject_cn only: the fingerprint is not tried", cnOnly, "pinned", 200, "reports"},
		{"match order is the setting's", uriFirst, "pinned", 200, "reports"},
	}
	for _, tt := range tests {
		res := p.as(t, tt.gw, tt.cert).Do(t, "/", nil)
		check(t, tt.name, res, tt.status, tt.want)
		if tt.status == 401 {
			if got := res.Header.Get("WWW-Authenticate"); got != mtlsauth.Challenge {
				t.Errorf("%s: got WWW-Authenticate %q, want %q", tt.name, got, mtlsauth.Challenge)
			}
		}
	}

	// The credential id is mtls: and the fingerprint's first 12 digits.
	res := p.as(t, def, "uri").Do(t, "/", nil)
	if got, want := res.Upstream.Header.Get("X-Test-Credential"), "mtls:"+p.certs["uri"].SHA256()[:12]; got != want {
		t.Errorf("got credential %q, want %q", got, want)
	}
	d := sha256.Sum256(p.certs["uri"].Cert.Raw)
	if got := mtlsauth.CredentialID(d); got != "mtls:"+p.certs["uri"].SHA256()[:12] {
		t.Errorf("CredentialID: got %q", got)
	}
}

func TestWithOtherPlugins(t *testing.T) {
	t.Parallel()
	p := newPKI(t)
	mtls := func() pipeline.Configured { return authtest.Configure(t, mtlsauth.Registration(), "") }
	key := func() pipeline.Configured { return authtest.Configure(t, keyauth.Registration(), "") }
	anyOf := p.start(t, "request", key(), mtls())
	allOf := p.start(t, "request", key(), mtls(), authtest.Configure(t, authgate.Registration(), "{mode: all}"))
	payments := p.start(t, "request", mtls(), authtest.Configure(t, acl.Registration(), "{allow: [payments]}"))
	anon := p.start(t, "request", mtls(), authtest.Configure(t, authgate.Registration(), "{anonymous: guest}"))
	required := p.start(t, "require", mtls())
	tests := []struct {
		name   string
		gw     *authtest.Gateway
		cert   string
		header http.Header
		status int
		want   string
	}{
		{"any: a key alone", anyOf, "", hdr("X-API-Key", bothKey), 200, "both"},
		{"any: a certificate alone", anyOf, "uri", nil, 200, "billing"},
		{"any: a wrong key and a good certificate", anyOf, "cn", hdr("X-API-Key", "wrong-key-0123456789"), 200, "reports"},
		{"any: neither", anyOf, "", nil, 401, "no API key found in request"},
		{"any: an unknown certificate is reported before a missing key", anyOf, "nobody", nil, 401,
			"the client certificate is not registered to any consumer"},
		{"all: both", allOf, "both", hdr("X-API-Key", bothKey), 200, "both"},
		{"all: the certificate alone", allOf, "both", nil, 401, "no API key found in request"},
		{"all: the key alone", allOf, "", hdr("X-API-Key", bothKey), 401, "a client certificate is required"},
		{"acl: in the group", payments, "uri", nil, 200, "billing"},
		{"acl: not in the group", payments, "cn", nil, 403, "consumer is not allowed on this route"},
		{"anonymous: no certificate", anon, "", nil, 200, "guest"},
		{"anonymous: a certificate still authenticates", anon, "cn", nil, 200, "reports"},
		{"anonymous: an unknown certificate", anon, "nobody", nil, 200, "guest"},
		{"require: a certificate", required, "dns", nil, 200, "dnsapp"},
	}
	for _, tt := range tests {
		check(t, tt.name, p.as(t, tt.gw, tt.cert).Do(t, "/", tt.header), tt.status, tt.want)
	}
	if res := p.as(t, anon, "").Do(t, "/", nil); res.Upstream != nil && res.Upstream.Header.Get("X-Anonymous-Consumer") != "true" {
		t.Errorf("anonymous: got X-Anonymous-Consumer %q, want true", res.Upstream.Header.Get("X-Anonymous-Consumer"))
	}
}

// TestInvalidCertificatesNeverReachThePlugin: a certificate the listener
// does not accept fails the handshake, in request mode too, and a
// listener that requires one refuses clients without.
func TestInvalidCertificatesNeverReachThePlugin(t *testing.T) {
	t.Parallel()
	p := newPKI(t)
	request := p.start(t, "request", authtest.Configure(t, mtlsauth.Registration(), ""))
	require := p.start(t, "require", authtest.Configure(t, mtlsauth.Registration(), ""))
	for _, tt := range []struct {
		name string
		gw   *authtest.Gateway
		cert string
	}{
		{"request: another CA", request, "foreign"},
		{"require: another CA", require, "foreign"},
		{"require: no certificate", require, ""},
	} {
		g := p.as(t, tt.gw, tt.cert)
		resp, err := g.Client.Get(g.URL + "/")
		if err == nil {
			resp.Body.Close()
			t.Errorf("%s: got %d, want a failed handshake", tt.name, resp.StatusCode)
		}
	}
	if n := request.Upstream.Count() + require.Upstream.Count(); n != 0 {
		t.Errorf("got %d requests upstream, want none", n)
	}
}

func TestForward(t *testing.T) {
	t.Parallel()
	p := newPKI(t)
	none := p.start(t, "request", authtest.Configure(t, mtlsauth.Registration(), ""))
	headers := p.start(t, "request", authtest.Configure(t, mtlsauth.Registration(), "{forward: headers}"))
	rfc := p.start(t, "request", authtest.Configure(t, mtlsauth.Registration(), "{forward: rfc9440}"),
		authtest.Configure(t, authgate.Registration(), "{anonymous: guest}"))
	forged := hdr("X-Client-Cert-Subject", "CN=admin", "X-Client-Cert-Fingerprint", strings.Repeat("0", 64),
		"X-Client-Cert-SAN-URI", "spiffe://example.org/admin", "Client-Cert", ":"+base64.StdEncoding.EncodeToString([]byte("forged"))+":",
		"Client-Cert-Chain", ":Zm9yZ2Vk:", "X-Client-Cert-Serial", "1", "X-Client-Cert-Issuer", "CN=evil", "X-Client-Cert-SAN-DNS", "evil")

	// forward: none sends none of them, and strips the client's.
	res := p.as(t, none, "uri").Do(t, "/", forged)
	check(t, "none", res, 200, "billing")
	for _, h := range mtlsauth.IdentityHeaders {
		if v := res.Upstream.Header.Values(h); len(v) != 0 {
			t.Errorf("none: got %s %q upstream, want none", h, v)
		}
	}

	// forward: headers describes the leaf; the client's copies are gone.
	uri := p.certs["uri"]
	res = p.as(t, headers, "uri").Do(t, "/", forged)
	check(t, "headers", res, 200, "billing")
	want := map[string]string{
		"X-Client-Cert-Subject":     "CN=billing-uri,O=Portico tests",
		"X-Client-Cert-Issuer":      "CN=client root,O=Portico tests",
		"X-Client-Cert-Serial":      strings.ToUpper(uri.Cert.SerialNumber.Text(16)),
		"X-Client-Cert-Fingerprint": uri.SHA256(),
		"X-Client-Cert-SAN-URI":     "spiffe://example.org/billing",
		"X-Client-Cert-SAN-DNS":     "",
		"Client-Cert":               "",
		"Client-Cert-Chain":         "",
	}
	for h, w := range want {
		got := res.Upstream.Header.Values(h)
		if w == "" && len(got) != 0 || w != "" && (len(got) != 1 || got[0] != w) {
			t.Errorf("headers: got %s %q upstream, want %q", h, got, w)
		}
	}
	// Names and SANs with commas, quotes and control bytes are escaped.
	res = p.as(t, headers, "odd").Do(t, "/", nil)
	check(t, "headers, odd names", res, 200, "odd")
	if res.Upstream == nil {
		t.FailNow()
	}
	if got, want := res.Upstream.Header.Get("X-Client-Cert-Subject"), `CN=odd\, \"name\"\0Awith\7Fbytes,O=Portico tests`; got != want {
		t.Errorf("escaped subject: got %q, want %q", got, want)
	}
	if got, want := res.Upstream.Header.Get("X-Client-Cert-SAN-URI"), "urn:a%2Cb"; got != want {
		t.Errorf("escaped URI: got %q, want %q", got, want)
	}
	if got, want := res.Upstream.Header.Get("X-Client-Cert-SAN-DNS"), "a.example.com, b.example.com"; got != want {
		t.Errorf("DNS names: got %q, want %q", got, want)
	}

	// forward: rfc9440: the leaf as a byte sequence, and the
	// intermediates (not the trust anchor) as a list of them.
	for _, tt := range []struct {
		cert      string
		wantChain []*x509.Certificate
	}{
		{"uri", nil},
		{"cn", []*x509.Certificate{p.inter.Cert}},
	} {
		res = p.as(t, rfc, tt.cert).Do(t, "/", forged)
		if res.Status != 200 {
			t.Fatalf("rfc9440 %s: got %d %s", tt.cert, res.Status, res.Body)
		}
		got := res.Upstream.Header.Values("Client-Cert")
		if len(got) != 1 || !bytes.Equal(byteSequence(t, got[0]), p.certs[tt.cert].Cert.Raw) {
			t.Errorf("rfc9440 %s: got Client-Cert %q, want the leaf", tt.cert, got)
		}
		chain := res.Upstream.Header.Values("Client-Cert-Chain")
		if len(tt.wantChain) == 0 {
			if len(chain) != 0 {
				t.Errorf("rfc9440 %s: got Client-Cert-Chain %q, want none", tt.cert, chain)
			}
			continue
		}
		if len(chain) != 1 || !bytes.Equal(byteSequence(t, chain[0]), tt.wantChain[0].Raw) {
			t.Errorf("rfc9440 %s: got Client-Cert-Chain %q, want the intermediate", tt.cert, chain)
		}
	}
	// Without a certificate (admitted as anonymous) nothing is forwarded,
	// and the client's own copies never are.
	res = p.as(t, rfc, "").Do(t, "/", forged)
	check(t, "rfc9440 anonymous", res, 200, "guest")
	for _, h := range mtlsauth.IdentityHeaders {
		if v := res.Upstream.Header.Values(h); len(v) != 0 {
			t.Errorf("rfc9440 anonymous: got %s %q upstream, want none", h, v)
		}
	}
}

// byteSequence decodes a Structured Field byte sequence.
func byteSequence(t *testing.T, s string) []byte {
	t.Helper()
	if len(s) < 2 || s[0] != ':' || s[len(s)-1] != ':' {
		t.Fatalf("not a byte sequence: %q", s)
	}
	b, err := base64.StdEncoding.DecodeString(s[1 : len(s)-1])
	if err != nil {
		t.Fatalf("byte sequence %q: %s", s, err)
	}
	return b
}

// TestRefusedOnListenersWithoutClientAuth: a route whose only listener
// does not ask for certificates cannot have mtls_auth.
func TestRefusedOnListenersWithoutClientAuth(t *testing.T) {
	t.Parallel()
	p := newPKI(t)
	for name, opts := range map[string]authtest.Options{
		"plain": {Consumers: p.consumers()},
		"TLS without client_auth": {Consumers: p.consumers(), RootCAs: p.serverCA.Pool(),
			TLS: &config.TLS{CertFile: p.certFile, KeyFile: p.keyFile}},
	} {
		_, err := authtest.Build(t, opts, authtest.Configure(t, mtlsauth.Registration(), ""))
		want := `routes[0].plugins.mtls_auth: route "test" takes requests only from listeners without tls.client_auth (test)`
		if err == nil || !strings.HasPrefix(err.Error(), want) {
			t.Errorf("%s: got %v, want an error starting %q", name, err, want)
		}
	}
}

func TestSpec(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		settings string
		want     []string
	}{
		{"defaults", "", nil},
		{"subset", "{match: [san_uri], forward: rfc9440}", nil},
		{"empty match", "{match: []}", []string{"routes[0].plugins.mtls_auth.match: must list at least one of sha256, san_uri, san_dns, subject_cn"}},
		{"unknown field", "{match: [issuer]}", []string{`routes[0].plugins.mtls_auth.match[0]: unknown field "issuer"; use sha256, san_uri, san_dns, subject_cn`}},
		{"twice", "{match: [san_dns, san_dns]}", []string{"routes[0].plugins.mtls_auth.match[1]: san_dns is listed twice"}},
		{"forward", "{forward: xfcc}", []string{`routes[0].plugins.mtls_auth.forward: must be "none", "headers" or "rfc9440"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := authtest.TryConfigure(mtlsauth.Registration(), tt.settings)
			switch {
			case tt.want == nil && err != nil:
				t.Errorf("got %v, want none", err)
			case tt.want != nil && (err == nil || err.Error() != strings.Join(tt.want, "\n")):
				t.Errorf("got %v, want %q", err, tt.want)
			}
		})
	}
	c, _ := authtest.TryConfigure(mtlsauth.Registration(), "{match: [san_uri]}")
	if got := c.Spec.(*mtlsauth.Spec).Match; len(got) != 1 || got[0] != "san_uri" {
		t.Errorf("match replaces the default list: got %q, want [san_uri]", got)
	}
}
