package h1

import (
	"bufio"
	"bytes"
	"context"
	"net"
	"net/http"
	"time"

	"golang.org/x/net/http2"
)

// HTTP/2 reaches the server on a connection it accepted: over TLS when
// the client chose "h2" by ALPN, and on a plain listener with H2C when the
// connection starts with the HTTP/2 client preface (prior knowledge). The
// connection is then handed to golang.org/x/net/http2, which serves it
// with the same handler; HTTP/1.1 stays with this server, so every
// HTTP/1.1 request, on any listener, is read by the strict reader.

// h2 is the HTTP/2 side of a Server.
type h2 struct {
	srv  *http2.Server
	base *http.Server // settings (limits, timeouts, error log) and the graceful-shutdown hook
}

func newH2(s *Server) *h2 {
	base := &http.Server{
		Handler:           s.Handler,
		ReadHeaderTimeout: s.ReadHeaderTimeout,
		IdleTimeout:       s.IdleTimeout,
		MaxHeaderBytes:    int(s.maxHeaderBytes()),
		ErrorLog:          s.ErrorLog,
	}
	srv := &http2.Server{WriteByteTimeout: s.WriteTimeout}
	// ConfigureServer ties graceful shutdown to base.Shutdown and takes
	// the idle timeout; its TLS settings are not used (the TLS config is
	// the Server's own).
	_ = http2.ConfigureServer(base, srv)
	return &h2{srv: srv, base: base}
}

// serve serves an HTTP/2 connection until it ends.
func (h *h2) serve(ctx context.Context, c net.Conn) {
	h.srv.ServeConn(c, &http2.ServeConnOpts{Context: ctx, BaseConfig: h.base, Handler: h.base.Handler})
}

// shutdown tells every HTTP/2 connection to finish its streams and close
// (GOAWAY); it does not wait.
func (h *h2) shutdown() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_ = h.base.Shutdown(ctx) // runs the hooks; base serves no listener of its own
}

// isPreface reports whether the buffered start of the connection is the
// HTTP/2 client preface; it waits for as many bytes as the preface has.
func isPreface(br *bufio.Reader) bool {
	p, err := br.Peek(len(http2.ClientPreface))
	return err == nil && bytes.Equal(p, []byte(http2.ClientPreface))
}

// prefacedConn is a connection whose first bytes were already read into a
// buffer: reads drain the buffer first.
type prefacedConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *prefacedConn) Read(p []byte) (int, error) {
	if c.r.Buffered() > 0 {
		return c.r.Read(p)
	}
	return c.Conn.Read(p)
}
