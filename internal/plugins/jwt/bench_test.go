package jwt

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/portico-gateway/portico/internal/pipeline"
)

func benchVerify(b *testing.B, specSrc, alg string, key any) {
	v, err := newVerifier(decodeSpec(b, specSrc), &pipeline.BuildEnv{}, time.Now)
	if err != nil {
		b.Fatal(err)
	}
	passed := 0
	h := v.middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		passed += pipeline.FromContext(r.Context()).Auth.Passed
	}))
	ex := &pipeline.Exchange{}
	r := httptest.NewRequest("GET", "/api", nil)
	r = r.WithContext(pipeline.NewContext(r.Context(), ex))
	r.Header.Set("Authorization", "Bearer "+sign(b, alg, key, claimsAt(time.Now(), nil), ""))
	w := httptest.NewRecorder()
	b.ReportAllocs()
	for b.Loop() {
		*ex = pipeline.Exchange{}
		h.ServeHTTP(w, r)
	}
	if passed != b.N {
		b.Fatalf("got %d passed, want %d", passed, b.N)
	}
}

func BenchmarkVerifyHS256(b *testing.B) {
	k := tk(b)
	benchVerify(b, "{algorithms: [HS256], secret: "+string(k.hmac)+", issuer: https://idp.test, audience: orders}", "HS256", k.hmac)
}

func BenchmarkVerifyRS256(b *testing.B) {
	k := tk(b)
	benchVerify(b, "algorithms: [RS256]\nissuer: https://idp.test\npublic_key: "+yamlQuote(pubPEM(b, &k.rsa.PublicKey))+"\n", "RS256", k.rsa)
}

func BenchmarkVerifyES256(b *testing.B) {
	k := tk(b)
	benchVerify(b, "algorithms: [ES256]\nissuer: https://idp.test\npublic_key: "+yamlQuote(pubPEM(b, &k.p256.PublicKey))+"\n", "ES256", k.p256)
}
