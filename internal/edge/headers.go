package edge

import (
	"net/http"
	"net/textproto"
	"strings"

	"github.com/portico-gateway/portico/internal/config"
)

// ProxyHeaders are the request headers that only a trusted proxy may
// send: forwarding headers that say who the client is or where it
// connected, and override headers that make a backend read another URL,
// host or method than the one the gateway routed. From any other peer
// they are removed before a plugin runs. server.proxy_headers adds to the
// list.
var ProxyHeaders = []string{
	// Forwarding: the client address, scheme, host and prefix.
	"X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto", "X-Forwarded-Port",
	"X-Forwarded-Prefix", "X-Forwarded-Server", "X-Forwarded-Ssl", "X-Forwarded-Scheme",
	"X-Forwarded-By", "Forwarded", "X-Real-Ip", "X-Original-Forwarded-For",
	"True-Client-Ip", "X-Client-Ip", "Client-Ip", "Cf-Connecting-Ip", "Cf-Connecting-Ipv6",
	"X-Cluster-Client-Ip", "Fastly-Client-Ip", "Akamai-Client-Ip", "X-Originating-Ip",
	"X-Remote-Ip", "X-Remote-Addr", "X-Proxyuser-Ip", "X-Envoy-External-Address",
	"Front-End-Https", "X-Url-Scheme", "X-Host", "X-Http-Host",
	// Overrides: another URL, host or method than the request line's.
	"X-Original-Url", "X-Rewrite-Url", "X-Original-Host", "X-Original-Uri", "X-Original-Method",
	"X-Http-Method-Override", "X-Http-Method", "X-Method-Override", "X-Forwarded-Method",
	"X-Forwarded-Uri", "X-Forwarded-Path",
}

// header flags, by canonical name.
const (
	hIdentity  = 1 << iota // set by plugins: removed from every request
	hProxyOnly             // removed unless the peer is a trusted proxy
	hProtected             // its "_" twin (X_Consumer_ID) is removed
)

// Headers is the edge's rule for client request headers. The zero value
// removes nothing.
type Headers struct {
	flags       map[string]uint8
	twins       map[string]bool // lower-case names with "-", of protected headers
	underscores string
}

// NewHeaders compiles the rule: identity names the headers plugins set
// (removed from every request), proxyOnly the extra names only a trusted
// proxy may send (besides ProxyHeaders), underscores the
// server.underscores_in_headers setting.
func NewHeaders(identity, proxyOnly []string, underscores string) *Headers {
	h := &Headers{flags: make(map[string]uint8), twins: make(map[string]bool), underscores: underscores}
	add := func(names []string, f uint8) {
		for _, n := range names {
			k := textproto.CanonicalMIMEHeaderKey(n)
			h.flags[k] |= f | hProtected
			h.twins[strings.ToLower(k)] = true
		}
	}
	add(identity, hIdentity)
	add(ProxyHeaders, hProxyOnly)
	add(proxyOnly, hProxyOnly)
	return h
}

// clean removes from hdr what a client may not send: identity headers,
// proxy-only headers unless trusted, headers named by the client's
// Connection header (hop-by-hop by the client's own declaration: removed
// before any plugin sets its own, so a gateway-set header always reaches
// the upstream), and header names with an underscore as the rule says.
func (h *Headers) clean(hdr http.Header, trusted bool) {
	if h == nil {
		return
	}
	for k := range hdr {
		if f := h.flags[k]; f&hIdentity != 0 || f&hProxyOnly != 0 && !trusted {
			delete(hdr, k)
			continue
		}
		if strings.IndexByte(k, '_') >= 0 && h.dropUnderscore(k) {
			delete(hdr, k)
		}
	}
	if conn := hdr["Connection"]; len(conn) > 0 {
		dropConnectionListed(hdr, conn)
	}
}

// dropUnderscore reports whether the header name k, which has an
// underscore, is removed.
func (h *Headers) dropUnderscore(k string) bool {
	switch h.underscores {
	case config.UnderscoresAllow:
		return false
	case config.UnderscoresDrop:
		return true
	}
	return h.twins[strings.ToLower(strings.ReplaceAll(k, "_", "-"))]
}

// dropConnectionListed removes the headers that the Connection header
// lists, except those the proxy needs to see to forward the request
// correctly (Upgrade, for WebSocket; TE, of which only "trailers" goes
// upstream) and Connection itself; the proxy never forwards any of them as
// they are.
func dropConnectionListed(hdr http.Header, conn []string) {
	for _, v := range conn {
		for v != "" {
			tok := v
			if i := strings.IndexByte(v, ','); i >= 0 {
				tok, v = v[:i], v[i+1:]
			} else {
				v = ""
			}
			tok = textproto.TrimString(tok)
			if tok == "" {
				continue
			}
			k := textproto.CanonicalMIMEHeaderKey(tok)
			switch k {
			case "Connection", "Upgrade", "Te", "Close", "Keep-Alive":
				continue
			}
			delete(hdr, k)
		}
	}
}
