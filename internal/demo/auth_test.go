package demo

import (
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

func TestLoginIssuesVerifiableToken(t *testing.T) {
	t.Parallel()
	srv := serve(t, newAuth(fixedClock))
	for user, password := range demoUsers {
		t.Run(user, func(t *testing.T) {
			t.Parallel()
			body := `{"username":"` + user + `","password":"` + password + `"}`
			resp, b := call(t, srv.URL, http.MethodPost, "/login", body, map[string]string{"X-Request-ID": "r-login"})
			m := checkJSON(t, resp, b, http.StatusOK, "auth")
			if got := m["token_type"]; got != "Bearer" {
				t.Errorf("token_type: got %v, want Bearer", got)
			}
			if got := m["expires_in"]; got != float64(3600) {
				t.Errorf("expires_in: got %v, want 3600", got)
			}
			if got := m["caller"].(map[string]any)["request_id"]; got != "r-login" {
				t.Errorf("caller.request_id: got %v, want r-login", got)
			}
			raw, _ := m["token"].(string)
			claims := parseToken(t, raw)
			if claims.Subject != user {
				t.Errorf("sub: got %q, want %q", claims.Subject, user)
			}
			if claims.Scope != DemoJWTScope {
				t.Errorf("scope: got %q, want %q", claims.Scope, DemoJWTScope)
			}
			if !claims.IssuedAt.Equal(testNow) {
				t.Errorf("iat: got %s, want %s", claims.IssuedAt, testNow)
			}
			if want := testNow.Add(time.Hour); !claims.ExpiresAt.Equal(want) {
				t.Errorf("exp: got %s, want %s", claims.ExpiresAt, want)
			}
		})
	}
}

// parseToken verifies raw with the demo secret, issuer and audience at
// testNow and returns its claims.
func parseToken(t *testing.T, raw string) *tokenClaims {
	t.Helper()
	var claims tokenClaims
	tok, err := jwt.ParseWithClaims(raw, &claims,
		func(*jwt.Token) (any, error) { return []byte(DemoJWTSecret), nil },
		jwt.WithValidMethods([]string{"HS256"}),
		jwt.WithIssuer(DemoJWTIssuer),
		jwt.WithAudience(DemoJWTAudience),
		jwt.WithIssuedAt(),
		jwt.WithExpirationRequired(),
		jwt.WithTimeFunc(fixedClock),
	)
	if err != nil {
		t.Fatalf("token does not verify: %s", err)
	}
	if alg := tok.Header["alg"]; alg != "HS256" {
		t.Errorf("alg: got %v, want HS256", alg)
	}
	if !slices.Equal(claims.Audience, jwt.ClaimStrings{DemoJWTAudience}) {
		t.Errorf("aud: got %v, want [%s]", claims.Audience, DemoJWTAudience)
	}
	return &claims
}

func TestLoginTokenRejectedWithOtherSecret(t *testing.T) {
	t.Parallel()
	srv := serve(t, newAuth(fixedClock))
	_, b := call(t, srv.URL, http.MethodPost, "/login", tourLoginBody, nil)
	raw, _ := decodeBody(t, b)["token"].(string)
	_, err := jwt.Parse(raw, func(*jwt.Token) (any, error) { return []byte("another-secret"), nil },
		jwt.WithTimeFunc(fixedClock))
	if err == nil {
		t.Fatal("token verified with the wrong secret")
	}
}

func TestLoginFailures(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, body string
		status     int
		err        string
	}{
		{"wrong password", `{"username":"alice","password":"bob-password"}`, http.StatusUnauthorized, "invalid credentials"},
		{"unknown user", `{"username":"mallory","password":"alice-password"}`, http.StatusUnauthorized, "invalid credentials"},
		{"empty credentials", `{}`, http.StatusUnauthorized, "invalid credentials"},
		{"case matters", `{"username":"Alice","password":"alice-password"}`, http.StatusUnauthorized, "invalid credentials"},
		{"bad JSON", `{"username":"alice",`, http.StatusBadRequest, "invalid JSON body"},
		{"not JSON", `username=alice&password=alice-password`, http.StatusBadRequest, "invalid JSON body"},
		{"empty body", ``, http.StatusBadRequest, "invalid JSON body"},
		{"wrong type", `{"username":"alice","password":123}`, http.StatusUnprocessableEntity, "invalid request"},
	}
	srv := serve(t, newAuth(fixedClock))
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			resp, b := call(t, srv.URL, http.MethodPost, "/login", tt.body, nil)
			m := checkJSON(t, resp, b, tt.status, "auth")
			if got := m["error"]; got != tt.err {
				t.Errorf("error: got %v, want %q", got, tt.err)
			}
			if _, ok := m["token"]; ok {
				t.Errorf("failed login returned a token: %s", b)
			}
		})
	}
}

// TestTourTokenExtraction checks that the sed expression the tour prints
// pulls the token out of a real login response (RE2 reads it the same way).
func TestTourTokenExtraction(t *testing.T) {
	t.Parallel()
	srv := serve(t, newAuth(fixedClock))
	_, b := call(t, srv.URL, http.MethodPost, "/login", tourLoginBody, nil)
	want, _ := decodeBody(t, b)["token"].(string)
	expr, ok := strings.CutPrefix(tokenSed, `sed -E 's/`)
	if ok {
		expr, ok = strings.CutSuffix(expr, `/\1/'`)
	}
	if !ok {
		t.Fatalf("tokenSed has an unexpected shape: %s", tokenSed)
	}
	if strings.Count(string(b), "\n") != 1 {
		t.Fatalf("login body must be one line for sed: %q", b)
	}
	got := regexp.MustCompile(expr).ReplaceAllString(strings.TrimSuffix(string(b), "\n"), "$1")
	if got != want {
		t.Errorf("extracted token: got %q, want %q", got, want)
	}
	if want == "" {
		t.Error("login returned no token")
	}
}
