package transform

import (
	"encoding/json"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/portico-gateway/portico/internal/config"
	"github.com/portico-gateway/portico/internal/pipeline"
)

// This file is the template engine. A template is a string with $(var)
// references, parsed once at build time into literal and variable parts;
// rendering appends the parts to a byte slice, without regular
// expressions or formatting verbs.

// varKind names what a template variable reads.
type varKind uint8

const (
	partLiteral varKind = iota
	varHeader
	varQuery
	varPathParam
	varConsumerID
	varConsumerName
	varClaim
	varClientIP
	varRequestID
	varRoute
	varService
	varMethod
	varPath
	varStatus
	varLatency
)

// simpleVars are the variables without an argument.
var simpleVars = map[string]varKind{
	"consumer.id":   varConsumerID,
	"consumer.name": varConsumerName,
	"client_ip":     varClientIP,
	"request_id":    varRequestID,
	"route":         varRoute,
	"service":       varService,
	"method":        varMethod,
	"path":          varPath,
	"status":        varStatus,
	"latency_ms":    varLatency,
}

// prefixVars are the variables that take a name after a prefix.
var prefixVars = []struct {
	prefix string
	kind   varKind
}{
	{"header.", varHeader},
	{"query.", varQuery},
	{"path.", varPathParam},
	{"jwt.", varClaim},
	{"claims.", varClaim},
}

const (
	requestVarList  = "header.NAME, query.NAME, path.NAME, consumer.id, consumer.name, jwt.CLAIM, claims.CLAIM, client_ip, request_id, route, service, method, path"
	responseVarList = requestVarList + ", status, latency_ms"
)

// part is one piece of a template: a literal, or a variable with its
// argument (a canonical header name, a query, capture or claim name).
type part struct {
	kind varKind
	text string
}

// template is a parsed template. The zero value renders "".
type template struct {
	parts []part
}

// static reports whether t has no variables (its text is fixed).
func (t *template) static() bool {
	return len(t.parts) == 0 || len(t.parts) == 1 && t.parts[0].kind == partLiteral
}

// literal returns the text of a static template.
func (t *template) literal() string {
	if len(t.parts) == 0 {
		return ""
	}
	return t.parts[0].text
}

// templateError is a malformed template or an unknown variable.
type templateError struct{ msg string }

func (e *templateError) Error() string { return e.msg }

// parseTemplate parses s. response allows $(status) and $(latency_ms).
// "$$(" is a literal "$("; any other "$" is literal.
func parseTemplate(s string, response bool) (*template, error) {
	t := &template{}
	var lit strings.Builder
	flush := func() {
		if lit.Len() > 0 {
			t.parts = append(t.parts, part{kind: partLiteral, text: lit.String()})
			lit.Reset()
		}
	}
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == '$' && strings.HasPrefix(s[i:], "$$("):
			lit.WriteString("$(")
			i += 3
		case c == '$' && strings.HasPrefix(s[i:], "$("):
			end := strings.IndexByte(s[i+2:], ')')
			if end < 0 {
				return nil, &templateError{"unterminated variable reference at " + strconv.Quote(s[i:]) +
					`: write $(name), or $$( for a literal "$("`}
			}
			name := s[i+2 : i+2+end]
			p, err := parseVar(name, response)
			if err != nil {
				return nil, err
			}
			flush()
			t.parts = append(t.parts, p)
			i += 2 + end + 1
		default:
			lit.WriteByte(c)
			i++
		}
	}
	flush()
	return t, nil
}

func parseVar(name string, response bool) (part, error) {
	known := requestVarList
	if response {
		known = responseVarList
	}
	if k, ok := simpleVars[name]; ok {
		if (k == varStatus || k == varLatency) && !response {
			return part{}, &templateError{"variable $(" + name + ") is only known in response_transform; known variables: " + known}
		}
		return part{kind: k}, nil
	}
	for _, pv := range prefixVars {
		arg, ok := strings.CutPrefix(name, pv.prefix)
		if !ok {
			continue
		}
		switch {
		case arg == "":
			return part{}, &templateError{"variable $(" + name + ") needs a name after " + strconv.Quote(pv.prefix) + "; known variables: " + known}
		case pv.kind == varHeader && !config.IsHeaderName(arg):
			return part{}, &templateError{"variable $(" + name + ") must name a header (letters, digits, \"-\" and \"_\")"}
		case pv.kind == varHeader:
			arg = http.CanonicalHeaderKey(arg)
		case strings.ContainsAny(arg, " \t\r\n$()"):
			return part{}, &templateError{"variable $(" + name + ") has an invalid name"}
		}
		return part{kind: pv.kind, text: arg}, nil
	}
	msg := "unknown variable $(" + name + ")"
	cands := []string{"consumer.id", "consumer.name", "client_ip", "request_id", "route", "service", "method", "path"}
	if response {
		cands = append(cands, "status", "latency_ms")
	}
	if s := config.Suggest(name, cands); s != "" {
		msg += "; did you mean $(" + s + ")?"
	}
	return part{}, &templateError{msg + "; known variables: " + known}
}

// input is what a template reads for one request.
type input struct {
	r       *http.Request
	ex      *pipeline.Exchange
	status  int
	latency time.Duration
}

// render returns t's value for in. With header set, control characters
// (CR, LF, NUL and the like, except tab) coming from variables are
// dropped so the value is a valid header field.
func (t *template) render(in *input, header bool) string {
	switch {
	case len(t.parts) == 0:
		return ""
	case len(t.parts) == 1 && t.parts[0].kind == partLiteral:
		return t.parts[0].text
	case len(t.parts) == 1:
		if s, ok := stringVar(t.parts[0], in); ok && (!header || clean(s)) {
			return s
		}
	}
	var arr [256]byte
	return string(t.appendTo(arr[:0], in, header))
}

// appendTo appends t's value for in to dst.
func (t *template) appendTo(dst []byte, in *input, header bool) []byte {
	for _, p := range t.parts {
		if p.kind == partLiteral {
			dst = append(dst, p.text...)
			continue
		}
		if s, ok := stringVar(p, in); ok {
			dst = appendClean(dst, s, header)
			continue
		}
		switch p.kind {
		case varClientIP:
			if in.ex.ClientIP.IsValid() {
				dst = in.ex.ClientIP.AppendTo(dst)
			}
		case varStatus:
			dst = strconv.AppendInt(dst, int64(in.status), 10)
		case varLatency:
			dst = strconv.AppendInt(dst, in.latency.Milliseconds(), 10)
		case varClaim:
			dst = appendClaim(dst, lookupClaim(in.ex.Claims, p.text), header)
		}
	}
	return dst
}

// stringVar returns the value of p when it is a string already held by
// the request, so a template of just that variable allocates nothing.
func stringVar(p part, in *input) (string, bool) {
	ex := in.ex
	switch p.kind {
	case varHeader:
		if vs := in.r.Header[p.text]; len(vs) > 0 {
			return vs[0], true
		}
		return "", true
	case varQuery:
		return queryValue(in.r.URL.RawQuery, p.text), true
	case varPathParam:
		for _, pp := range ex.Params {
			if pp.Name == p.text {
				return pp.Value, true
			}
		}
		return "", true
	case varConsumerID:
		if ex.Consumer != nil {
			return ex.Consumer.ID, true
		}
		return "", true
	case varConsumerName:
		if ex.Consumer != nil {
			return ex.Consumer.Name, true
		}
		return "", true
	case varRequestID:
		return ex.RequestID, true
	case varRoute:
		return ex.Route, true
	case varService:
		return ex.Service, true
	case varMethod:
		return in.r.Method, true
	case varPath:
		return ex.UpstreamPath, true
	case varClaim:
		if s, ok := lookupClaim(ex.Claims, p.text).(string); ok {
			return s, true
		}
	}
	return "", false
}

// clean reports whether s holds no control characters but tab.
func clean(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < ' ' && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}

// appendClean appends s, dropping control characters when header is set.
func appendClean(dst []byte, s string, header bool) []byte {
	if !header || clean(s) {
		return append(dst, s...)
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c < ' ' && c != '\t' || c == 0x7f) {
			dst = append(dst, c)
		}
	}
	return dst
}

// lookupClaim returns the claim name, or, when there is no such top-level
// claim and name is dotted, the value at that path in nested objects
// (realm_access.roles).
func lookupClaim(claims map[string]any, name string) any {
	if v, ok := claims[name]; ok || claims == nil {
		return v
	}
	var cur any = claims
	for seg := range strings.SplitSeq(name, ".") {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		if cur, ok = m[seg]; !ok {
			return nil
		}
	}
	return cur
}

// appendClaim appends a claim value: strings as they are, numbers without
// exponent, booleans, and arrays of those joined with ","; anything else
// (objects, null, missing) appends nothing.
func appendClaim(dst []byte, v any, header bool) []byte {
	switch v := v.(type) {
	case []any:
		for i, e := range v {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendScalar(dst, e, header)
		}
		return dst
	case []string:
		for i, e := range v {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendClean(dst, e, header)
		}
		return dst
	}
	return appendScalar(dst, v, header)
}

func appendScalar(dst []byte, v any, header bool) []byte {
	switch v := v.(type) {
	case string:
		return appendClean(dst, v, header)
	case bool:
		return strconv.AppendBool(dst, v)
	case float64:
		return appendFloat(dst, v)
	case json.Number:
		if strings.ContainsAny(string(v), "eE") {
			if f, err := v.Float64(); err == nil {
				return appendFloat(dst, f)
			}
		}
		return appendClean(dst, string(v), header)
	case int:
		return strconv.AppendInt(dst, int64(v), 10)
	case int64:
		return strconv.AppendInt(dst, v, 10)
	}
	return dst
}

func appendFloat(dst []byte, f float64) []byte {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return dst
	}
	return strconv.AppendFloat(dst, f, 'f', -1, 64)
}

// queryValue returns the first value of the query parameter name in raw,
// decoded, or "" when absent.
func queryValue(raw, name string) string {
	for raw != "" {
		var seg string
		seg, raw, _ = strings.Cut(raw, "&")
		k, v, _ := strings.Cut(seg, "=")
		if decodeQuery(k) != name {
			continue
		}
		return decodeQuery(v)
	}
	return ""
}

// decodeQuery unescapes a query component; text that does not unescape is
// used as it is.
func decodeQuery(s string) string {
	if !strings.ContainsAny(s, "%+") {
		return s
	}
	if u, err := url.QueryUnescape(s); err == nil {
		return u
	}
	return s
}
