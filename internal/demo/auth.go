package demo

import (
	"crypto/subtle"
	"net/http"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// DemoJWTSecret is the HS256 key the demo auth service signs its tokens
// with. It is for the demo only: it is public, so any token signed with it
// proves nothing. Never use it in a real deployment.
const DemoJWTSecret = "portico-demo-hs256-secret-change-me"

// DemoJWTIssuer and DemoJWTAudience are the iss and aud claims of demo
// tokens.
const (
	DemoJWTIssuer   = "portico-demo"
	DemoJWTAudience = "portico-demo"
)

// DemoJWTScope is the scope claim of every demo token.
const DemoJWTScope = "orders:read orders:write"

// tokenTTL is how long a demo token is valid.
const tokenTTL = time.Hour

// demoUsers are the accounts the auth service accepts. Demo only.
var demoUsers = map[string]string{
	"alice": "alice-password",
	"bob":   "bob-password",
}

// tokenClaims are the claims of a demo token.
type tokenClaims struct {
	Scope string `json:"scope"`
	jwt.RegisteredClaims
}

// loginRequest is the body of POST /login.
type loginRequest struct {
	Username string `json:"username"`
	Password string `json:"password"`
}

// loginResponse is the body of a successful login.
type loginResponse struct {
	meta
	Token     string `json:"token"`
	TokenType string `json:"token_type"`
	ExpiresIn int    `json:"expires_in"`
}

// auth is the demo auth service: POST /login issues a JWT.
type auth struct {
	service
	now func() time.Time
}

// newAuth returns the auth service's handler. now is its clock.
func newAuth(now func() time.Time) http.Handler {
	a := &auth{service: service{name: "auth"}, now: now}
	mux := a.newMux()
	a.handle(mux, "/login", map[string]http.HandlerFunc{http.MethodPost: a.login})
	return mux
}

// login checks the credentials and answers with a signed token.
func (a *auth) login(w http.ResponseWriter, r *http.Request) {
	var req loginRequest
	if !a.decode(w, r, &req) {
		return
	}
	want, known := demoUsers[req.Username]
	// Compare even for unknown users so both failures take the same path.
	match := subtle.ConstantTimeCompare([]byte(req.Password), []byte(want)) == 1
	if !known || !match {
		a.fail(w, r, http.StatusUnauthorized, "invalid credentials")
		return
	}
	now := a.now()
	claims := tokenClaims{
		Scope: DemoJWTScope,
		RegisteredClaims: jwt.RegisteredClaims{
			Subject:   req.Username,
			Issuer:    DemoJWTIssuer,
			Audience:  jwt.ClaimStrings{DemoJWTAudience},
			IssuedAt:  jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(now.Add(tokenTTL)),
		},
	}
	token, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString([]byte(DemoJWTSecret))
	if err != nil {
		a.fail(w, r, http.StatusInternalServerError, "could not issue a token")
		return
	}
	a.reply(w, http.StatusOK, loginResponse{
		meta:      a.meta(r),
		Token:     token,
		TokenType: "Bearer",
		ExpiresIn: int(tokenTTL / time.Second),
	})
}
