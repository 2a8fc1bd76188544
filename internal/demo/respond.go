package demo

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"reflect"
	"slices"
	"strings"
)

// maxBodyBytes bounds the request bodies the demo services read.
const maxBodyBytes = 64 << 10

// caller echoes the identity headers a demo service received, so the tour
// shows what the gateway forwards. Absent headers are empty strings.
type caller struct {
	UserID       string `json:"user_id"`       // X-User-ID
	ConsumerID   string `json:"consumer_id"`   // X-Consumer-ID
	ConsumerName string `json:"consumer_name"` // X-Consumer-Name
	RequestID    string `json:"request_id"`    // X-Request-ID
	ForwardedFor string `json:"forwarded_for"` // X-Forwarded-For
}

// meta is embedded first in every JSON body a demo service writes.
// Replica names the replica that answered, for services that run as
// several (orders); it is left out for the others.
type meta struct {
	Service string `json:"service"`
	Caller  caller `json:"caller"`
	Replica string `json:"replica,omitempty"`
}

// errorBody is the JSON body of every demo service error.
type errorBody struct {
	meta
	Error   string   `json:"error"`
	Details []string `json:"details,omitempty"`
}

// healthBody answers GET /health.
type healthBody struct {
	meta
	Status string `json:"status"`
}

// service holds what the demo services share: their name, the replica
// name of a service that runs as several, and the JSON plumbing around
// their handlers.
type service struct{ name, replica string }

// meta returns the service and replica names and the caller identity of r.
func (s service) meta(r *http.Request) meta {
	h := r.Header
	return meta{
		Service: s.name,
		Replica: s.replica,
		Caller: caller{
			UserID:       h.Get("X-User-ID"),
			ConsumerID:   h.Get("X-Consumer-ID"),
			ConsumerName: h.Get("X-Consumer-Name"),
			RequestID:    h.Get("X-Request-ID"),
			ForwardedFor: h.Get("X-Forwarded-For"),
		},
	}
}

// reply writes v as a one-line JSON body with status.
func (s service) reply(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		// Every body type here marshals; this only guards against a
		// future type that does not.
		status, b = http.StatusInternalServerError, []byte(`{"service":"`+s.name+`","error":"internal error"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

// fail writes an error body.
func (s service) fail(w http.ResponseWriter, r *http.Request, status int, msg string, details ...string) {
	s.reply(w, status, errorBody{meta: s.meta(r), Error: msg, Details: details})
}

// health answers GET /health.
func (s service) health(w http.ResponseWriter, r *http.Request) {
	s.reply(w, http.StatusOK, healthBody{meta: s.meta(r), Status: "ok"})
}

// notFound answers paths the service does not serve.
func (s service) notFound(w http.ResponseWriter, r *http.Request) {
	s.fail(w, r, http.StatusNotFound, "not found")
}

// handle registers the handlers of one path, keyed by method, on mux.
// Other methods get 405 with an Allow header; HEAD is served by GET.
func (s service) handle(mux *http.ServeMux, pattern string, byMethod map[string]http.HandlerFunc) {
	allow := make([]string, 0, len(byMethod)+1)
	for m := range byMethod {
		allow = append(allow, m)
	}
	if _, ok := byMethod[http.MethodGet]; ok {
		allow = append(allow, http.MethodHead)
	}
	slices.Sort(allow)
	allowed := strings.Join(allow, ", ")
	mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		h := byMethod[r.Method]
		if h == nil && r.Method == http.MethodHead {
			h = byMethod[http.MethodGet]
		}
		if h == nil {
			w.Header().Set("Allow", allowed)
			s.fail(w, r, http.StatusMethodNotAllowed, "method not allowed", "allowed: "+allowed)
			return
		}
		h(w, r)
	})
}

// newMux returns a mux that serves GET /health and answers unknown paths
// with a JSON 404.
func (s service) newMux() *http.ServeMux {
	mux := http.NewServeMux()
	s.handle(mux, "/health", map[string]http.HandlerFunc{http.MethodGet: s.health})
	mux.HandleFunc("/", s.notFound)
	return mux
}

// decode reads r's body as one JSON value into dst. On failure it writes
// the error response and returns false: 400 for a body that is not JSON,
// 413 for one over maxBodyBytes, and 422 for a field of the wrong type.
func (s service) decode(w http.ResponseWriter, r *http.Request, dst any) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBodyBytes))
	err := dec.Decode(dst)
	if err == nil {
		if err = dec.Decode(&struct{}{}); errors.Is(err, io.EOF) {
			return true
		}
		if err == nil {
			err = errTrailingData
		}
	}
	var (
		tooLarge *http.MaxBytesError
		typeErr  *json.UnmarshalTypeError
	)
	switch {
	case errors.As(err, &tooLarge):
		s.fail(w, r, http.StatusRequestEntityTooLarge, "request body too large", "the limit is 64 KiB")
	case errors.As(err, &typeErr) && typeErr.Field != "":
		s.fail(w, r, http.StatusUnprocessableEntity, "invalid request", typeErr.Field+" must be "+jsonKind(typeErr.Type))
	case errors.Is(err, io.EOF):
		s.fail(w, r, http.StatusBadRequest, "invalid JSON body", "the body is empty: send a JSON object")
	default:
		s.fail(w, r, http.StatusBadRequest, "invalid JSON body", "the body must be one JSON object")
	}
	return false
}

var errTrailingData = errors.New("data after the JSON value")

// jsonKind names the JSON type a Go type is decoded from, for messages.
func jsonKind(t reflect.Type) string {
	if t == nil {
		return "a valid value"
	}
	switch t.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Slice, reflect.Array:
		return "an array"
	case reflect.Struct, reflect.Map:
		return "an object"
	default:
		return "a valid value"
	}
}

// validCurrency reports whether c looks like an ISO 4217 code: three
// upper-case ASCII letters.
func validCurrency(c string) bool {
	if len(c) != 3 {
		return false
	}
	for i := range len(c) {
		if c[i] < 'A' || c[i] > 'Z' {
			return false
		}
	}
	return true
}
