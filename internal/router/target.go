package router

import (
	"errors"
	"net/url"
	"strings"
)

// ErrBadTarget is returned by RequestPath for an absolute-form request
// target ("GET http://host/path HTTP/1.1") that the HTTP server parsed but
// the gateway refuses: one whose scheme is not http or https, that has no
// host, that has userinfo ("http://user@host/"), or that is opaque.
var ErrBadTarget = errors.New("invalid request target")

// RequestPath returns the path of a request target exactly as the client
// sent it, for NormalizePath: u is the request's URL as net/http parsed it
// from the request line (HTTP/1.x) or the :path pseudo-header (HTTP/2).
//
// url.URL.EscapedPath is not that path: it escapes again what the client
// sent raw when net/url finds it invalid, so a raw "#" or a raw non-ASCII
// byte would reach NormalizePath as "%23" or "%C3%A9" and be accepted.
// net/url keeps the path as sent in RawPath whenever it differs from the
// default escaping of Path, and otherwise that default escaping is the
// path as sent.
//
// The target forms of RFC 9112 section 3.2 arrive as:
//
//   - origin-form ("/a?b"): its path;
//   - absolute-form ("http://host/a?b"): its path, "" when it has none
//     (NormalizePath makes that "/"); net/http has already replaced the
//     Host header with the target's authority, so the host the router
//     matches is the one the upstream is told (Host with preserve_host,
//     X-Forwarded-Host otherwise);
//   - authority-form ("host:443", CONNECT only; net/http refuses it with
//     other methods): "", so the request routes as "/" on its host;
//   - asterisk-form ("*"): "*", which NormalizePath refuses.
func RequestPath(u *url.URL) (string, error) {
	if u.Scheme != "" {
		if !strings.EqualFold(u.Scheme, "http") && !strings.EqualFold(u.Scheme, "https") ||
			u.Host == "" || u.User != nil || u.Opaque != "" {
			return "", ErrBadTarget
		}
	}
	if u.RawPath != "" {
		return u.RawPath, nil
	}
	return u.EscapedPath(), nil
}
