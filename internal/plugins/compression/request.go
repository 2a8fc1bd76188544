package compression

import (
	"io"
	"net/http"
	"strings"
	"sync"

	"github.com/andybalholm/brotli"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

// zstdMaxWindow bounds the window a request's zstd frame may ask for, and
// so the memory one decoder takes (8 MiB is what RFC 8878 asks decoders
// to support).
const zstdMaxWindow = 8 << 20

var (
	gzipReaders   sync.Pool // *gzip.Reader
	zstdDecoders  sync.Pool // *zstd.Decoder
	brotliReaders sync.Pool // *brotli.Reader
)

// decodeRequest replaces a compressed request body with its decoded
// stream, and returns it (nil when the body is left alone).
func (c *compressor) decodeRequest(r *http.Request) *decodedBody {
	if r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0 {
		return nil
	}
	vals := r.Header["Content-Encoding"]
	if len(vals) != 1 {
		return nil // none, or layered codings: passed on untouched
	}
	var kind encoding
	switch v := strings.TrimSpace(vals[0]); {
	case strings.EqualFold(v, "gzip"), strings.EqualFold(v, "x-gzip"):
		kind = encGzip
	case strings.EqualFold(v, "br"):
		kind = encBrotli
	case strings.EqualFold(v, "zstd"):
		kind = encZstd
	default:
		return nil
	}
	b := &decodedBody{src: r.Body, kind: kind, max: c.maxDecode}
	// Compressed input that produces (almost) nothing is still bounded.
	b.raw = rawLimiter{r: r.Body, max: c.maxDecode + c.maxDecode/16 + 64<<10}
	r.Body = b
	delete(r.Header, "Content-Encoding")
	delete(r.Header, "Content-Length")
	r.ContentLength = -1
	r.GetBody = nil
	return b
}

// rawLimiter reads the compressed body, failing past max bytes.
type rawLimiter struct {
	r      io.Reader
	n, max int64
	over   bool
}

func (l *rawLimiter) Read(p []byte) (int, error) {
	if l.n > l.max {
		l.over = true
		return 0, &http.MaxBytesError{Limit: l.max}
	}
	if rest := l.max - l.n + 1; int64(len(p)) > rest {
		p = p[:rest]
	}
	n, err := l.r.Read(p)
	l.n += int64(n)
	return n, err
}

// decodedBody is a request body decoded on the fly, bounded to max
// decoded bytes.
type decodedBody struct {
	src  io.ReadCloser
	raw  rawLimiter
	kind encoding
	dec  io.Reader // set on the first Read
	gz   *gzip.Reader
	zd   *zstd.Decoder
	br   *brotli.Reader
	n    int64
	max  int64
	err  error // sticky
}

// open starts the decoder on the first Read, so that a bad header is a
// body read error (400), not a refusal before the request is routed.
func (b *decodedBody) open() error {
	switch b.kind {
	case encGzip:
		gz, _ := gzipReaders.Get().(*gzip.Reader)
		if gz == nil {
			gz = new(gzip.Reader)
		}
		b.gz = gz
		if err := gz.Reset(&b.raw); err != nil {
			return noEOF(err)
		}
		b.dec = gz
	case encZstd:
		zd, _ := zstdDecoders.Get().(*zstd.Decoder)
		if zd == nil {
			var err error
			zd, err = zstd.NewReader(nil, zstd.WithDecoderConcurrency(1),
				zstd.WithDecoderMaxWindow(zstdMaxWindow), zstd.WithDecoderLowmem(true))
			if err != nil {
				return err
			}
		}
		b.zd = zd
		if err := zd.Reset(&b.raw); err != nil {
			return noEOF(err)
		}
		b.dec = zd
	default:
		br, _ := brotliReaders.Get().(*brotli.Reader)
		if br == nil {
			br = brotli.NewReader(&b.raw)
		} else if err := br.Reset(&b.raw); err != nil {
			return err
		}
		b.br = br
		b.dec = br
	}
	return nil
}

// noEOF turns an early end of input into io.ErrUnexpectedEOF: a body that
// declares a coding but holds no valid stream is malformed.
func noEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// Read reads decoded bytes. Past max it returns an *http.MaxBytesError;
// a corrupt stream returns the decoder's error.
func (b *decodedBody) Read(p []byte) (int, error) {
	if b.err != nil {
		return 0, b.err
	}
	if b.dec == nil {
		if err := b.open(); err != nil {
			b.err = b.limitErr(err)
			return 0, b.err
		}
	}
	if rest := b.max - b.n + 1; int64(len(p)) > rest {
		p = p[:rest]
	}
	n, err := b.dec.Read(p)
	b.n += int64(n)
	if b.n > b.max {
		n -= int(b.n - b.max)
		b.n = b.max
		b.err = &http.MaxBytesError{Limit: b.max}
		return n, b.err
	}
	if err != nil {
		b.err = b.limitErr(err)
	}
	return n, b.err
}

// limitErr reports the raw-size limit, whatever error the decoder made of it.
func (b *decodedBody) limitErr(err error) error {
	if b.raw.over {
		return &http.MaxBytesError{Limit: b.raw.max}
	}
	return err
}

// Close closes the client's body.
func (b *decodedBody) Close() error { return b.src.Close() }

// release returns the decoder to its pool once the request is done with
// it; a decoder that met an error other than the end is dropped. Safe on
// a nil body.
func (b *decodedBody) release() {
	if b == nil {
		return
	}
	reusable := b.err == nil || b.err == io.EOF
	switch {
	case b.gz != nil && reusable:
		gzipReaders.Put(b.gz)
	case b.zd != nil && reusable:
		_ = b.zd.Reset(nil)
		zstdDecoders.Put(b.zd)
	case b.br != nil && reusable:
		brotliReaders.Put(b.br)
	case b.zd != nil:
		b.zd.Close()
	}
	b.gz, b.zd, b.br, b.dec = nil, nil, nil, nil
}
