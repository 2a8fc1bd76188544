package httpcache

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/http"
	"runtime"
	"sync"
	"time"

	"github.com/klauspost/compress/zstd"
)

// The entry record, as stored in Redis. All integers are varints
// (encoding/binary); strings are a uvarint length and the bytes.
//
//	record  = version:byte flags:byte (payload | zstd frame of payload)
//	payload = status:uvarint times:byte [request:varint] [response:varint]
//	          bodyLen:uvarint meta body
//	meta    = nHeaders:uvarint { name:string nValues:uvarint { value:string } }
//	          nVaryNames:uvarint { name:string } nVaryValues:uvarint { value:string }
//
// version is codecVersion; flags bit 0 says the rest is one or more zstd
// frames holding the payload (no other bit may be set). times bit 0 and 1
// say whether the request and response times are present (the zero
// time.Time is stored as absent); each is Unix nanoseconds. status is 0
// (a Vary marker, see IsMarker) or 100-999. The body is the
// last bodyLen bytes of the payload, so meta is everything between, and it
// must be consumed exactly: a truncated or padded record is an error.
//
// Decoding never trusts a declared count or length beyond the input left:
// every string needs its bytes, every element at least one byte, and a
// compressed payload may not exceed codecMaxDecoded.
const (
	codecVersion      = 1
	codecFlagZstd     = 1 << 0
	codecTimeRequest  = 1 << 0
	codecTimeResponse = 1 << 1

	// codecMaxDecoded bounds a decompressed payload (64 MiB).
	codecMaxDecoded = 64 << 20
	// codecCompressMin is the payload size under which compression is not
	// tried: small records do not shrink enough to pay for it.
	codecCompressMin = 256
	// codecPoolMax is the largest scratch buffer kept for reuse.
	codecPoolMax = 1 << 20
)

// errCodecCorrupt is wrapped by every DecodeEntry error about the record itself.
var errCodecCorrupt = errors.New("cache: corrupt entry")

// EncodeEntry returns e as an uncompressed binary record for DecodeEntry.
func EncodeEntry(e *Entry) []byte {
	n := codecPayloadSize(e)
	b := make([]byte, 2, 2+n)
	b[0] = codecVersion
	return codecAppendPayload(b, e)
}

// EncodeEntryCompressed returns e as a binary record for DecodeEntry, its
// payload compressed with zstd when that makes it smaller (records of a few
// hundred bytes, or incompressible ones, are stored as EncodeEntry does).
func EncodeEntryCompressed(e *Entry) []byte {
	n := codecPayloadSize(e)
	enc := codecEncoder()
	if n < codecCompressMin || enc == nil {
		return EncodeEntry(e)
	}
	bp := codecBuffers.Get().(*[]byte)
	defer codecPut(bp)
	payload := codecAppendPayload((*bp)[:0], e)
	*bp = payload
	out := make([]byte, 2, 2+n/2)
	out[0], out[1] = codecVersion, codecFlagZstd
	out = enc.EncodeAll(payload, out)
	if len(out) >= 2+len(payload) {
		// Incompressible: store it plain.
		raw := make([]byte, 2, 2+len(payload))
		raw[0] = codecVersion
		return append(raw, payload...)
	}
	return out
}

// DecodeEntry parses a record made by EncodeEntry or EncodeEntryCompressed.
// A truncated, padded or otherwise corrupt record is an error (never a
// panic, and never an allocation larger than the record implies, or than
// 64 MiB for a compressed one). The entry's Body may share b's memory: the
// caller must not modify b afterwards.
func DecodeEntry(b []byte) (*Entry, error) {
	if len(b) < 2 {
		return nil, fmt.Errorf("%w: %d bytes", errCodecCorrupt, len(b))
	}
	if b[0] != codecVersion {
		return nil, fmt.Errorf("%w: version %d, want %d", errCodecCorrupt, b[0], codecVersion)
	}
	payload := b[2:]
	switch b[1] {
	case 0:
	case codecFlagZstd:
		dec := codecDecoder()
		if dec == nil {
			return nil, errors.New("cache: zstd decoder unavailable")
		}
		var err error
		if payload, err = dec.DecodeAll(payload, nil); err != nil {
			return nil, fmt.Errorf("%w: decompress: %w", errCodecCorrupt, err)
		}
	default:
		return nil, fmt.Errorf("%w: flags %#x", errCodecCorrupt, b[1])
	}
	return codecDecodePayload(payload)
}

// codecPayloadSize is the exact length codecAppendPayload adds.
func codecPayloadSize(e *Entry) int {
	n := codecUvarintLen(uint64(max(e.Status, 0))) + 1 + codecUvarintLen(uint64(len(e.Body))) + len(e.Body)
	if !e.RequestTime.IsZero() {
		n += codecVarintLen(e.RequestTime.UnixNano())
	}
	if !e.ResponseTime.IsZero() {
		n += codecVarintLen(e.ResponseTime.UnixNano())
	}
	n += codecUvarintLen(uint64(len(e.Header)))
	for k, vs := range e.Header {
		n += codecStringLen(k) + codecUvarintLen(uint64(len(vs)))
		for _, v := range vs {
			n += codecStringLen(v)
		}
	}
	n += codecUvarintLen(uint64(len(e.VaryNames))) + codecUvarintLen(uint64(len(e.VaryValues)))
	for _, s := range e.VaryNames {
		n += codecStringLen(s)
	}
	for _, s := range e.VaryValues {
		n += codecStringLen(s)
	}
	return n
}

// codecAppendPayload appends e's payload (see the format above) to b.
func codecAppendPayload(b []byte, e *Entry) []byte {
	b = binary.AppendUvarint(b, uint64(max(e.Status, 0)))
	var times byte
	if !e.RequestTime.IsZero() {
		times |= codecTimeRequest
	}
	if !e.ResponseTime.IsZero() {
		times |= codecTimeResponse
	}
	b = append(b, times)
	if times&codecTimeRequest != 0 {
		b = binary.AppendVarint(b, e.RequestTime.UnixNano())
	}
	if times&codecTimeResponse != 0 {
		b = binary.AppendVarint(b, e.ResponseTime.UnixNano())
	}
	b = binary.AppendUvarint(b, uint64(len(e.Body)))
	b = binary.AppendUvarint(b, uint64(len(e.Header)))
	for k, vs := range e.Header {
		b = codecAppendString(b, k)
		b = binary.AppendUvarint(b, uint64(len(vs)))
		for _, v := range vs {
			b = codecAppendString(b, v)
		}
	}
	b = codecAppendStrings(b, e.VaryNames)
	b = codecAppendStrings(b, e.VaryValues)
	return append(b, e.Body...)
}

// codecDecodePayload parses a payload; the entry's Body aliases p. All
// header and vary strings share one allocation (the meta section).
func codecDecodePayload(p []byte) (*Entry, error) {
	status, n := binary.Uvarint(p)
	if n <= 0 || (status != 0 && status < 100) || status > 999 {
		return nil, fmt.Errorf("%w: bad status", errCodecCorrupt)
	}
	p = p[n:]
	if len(p) == 0 || p[0]&^(codecTimeRequest|codecTimeResponse) != 0 {
		return nil, fmt.Errorf("%w: bad times", errCodecCorrupt)
	}
	times := p[0]
	p = p[1:]
	e := &Entry{Status: int(status)}
	if times&codecTimeRequest != 0 {
		ns, n := binary.Varint(p)
		if n <= 0 {
			return nil, fmt.Errorf("%w: bad request time", errCodecCorrupt)
		}
		e.RequestTime, p = time.Unix(0, ns), p[n:]
	}
	if times&codecTimeResponse != 0 {
		ns, n := binary.Varint(p)
		if n <= 0 {
			return nil, fmt.Errorf("%w: bad response time", errCodecCorrupt)
		}
		e.ResponseTime, p = time.Unix(0, ns), p[n:]
	}
	bodyLen, n := binary.Uvarint(p)
	if n <= 0 || bodyLen > uint64(len(p)-n) {
		return nil, fmt.Errorf("%w: bad body length", errCodecCorrupt)
	}
	p = p[n:]
	split := len(p) - int(bodyLen)
	if bodyLen > 0 {
		e.Body = p[split:len(p):len(p)]
	}
	d := codecReader{s: string(p[:split])}
	if err := d.entry(e); err != nil {
		return nil, err
	}
	return e, nil
}

// codecReader reads the meta section from one string, so that every
// header name and value is a substring of it (one allocation in all).
type codecReader struct {
	s   string
	off int
}

func (d *codecReader) entry(e *Entry) error {
	nh, err := d.count(2) // a name length and a value count at least
	if err != nil {
		return fmt.Errorf("%w: header count: %w", errCodecCorrupt, err)
	}
	if nh > 0 {
		e.Header = make(http.Header, nh)
	}
	for range nh {
		name, err := d.str()
		if err != nil {
			return fmt.Errorf("%w: header name: %w", errCodecCorrupt, err)
		}
		if _, dup := e.Header[name]; dup {
			return fmt.Errorf("%w: header %q twice", errCodecCorrupt, name)
		}
		nv, err := d.count(1)
		if err != nil {
			return fmt.Errorf("%w: header value count: %w", errCodecCorrupt, err)
		}
		var vs []string
		if nv > 0 {
			vs = make([]string, nv)
			for j := range vs {
				if vs[j], err = d.str(); err != nil {
					return fmt.Errorf("%w: header value: %w", errCodecCorrupt, err)
				}
			}
		}
		e.Header[name] = vs
	}
	if e.VaryNames, err = d.strs(); err != nil {
		return fmt.Errorf("%w: vary names: %w", errCodecCorrupt, err)
	}
	if e.VaryValues, err = d.strs(); err != nil {
		return fmt.Errorf("%w: vary values: %w", errCodecCorrupt, err)
	}
	if d.off != len(d.s) {
		return fmt.Errorf("%w: %d stray bytes before the body", errCodecCorrupt, len(d.s)-d.off)
	}
	return nil
}

var (
	errCodecShort   = errors.New("truncated")
	errCodecTooMany = errors.New("larger than the record")
	errCodecVarint  = errors.New("bad varint")
)

// uvarint reads one uvarint.
func (d *codecReader) uvarint() (uint64, error) {
	var x uint64
	for i := 0; i < binary.MaxVarintLen64; i++ {
		if d.off >= len(d.s) {
			return 0, errCodecShort
		}
		c := d.s[d.off]
		d.off++
		if c < 0x80 {
			if i == binary.MaxVarintLen64-1 && c > 1 {
				return 0, errCodecVarint
			}
			return x | uint64(c)<<(7*i), nil
		}
		x |= uint64(c&0x7f) << (7 * i)
	}
	return 0, errCodecVarint
}

// count reads an element count; each element takes at least min bytes, so
// a count the rest of the input cannot hold is an error.
func (d *codecReader) count(min int) (int, error) {
	n, err := d.uvarint()
	if err != nil {
		return 0, err
	}
	if n > uint64((len(d.s)-d.off)/min) {
		return 0, errCodecTooMany
	}
	return int(n), nil
}

// str reads one length-prefixed string.
func (d *codecReader) str() (string, error) {
	n, err := d.uvarint()
	if err != nil {
		return "", err
	}
	if n > uint64(len(d.s)-d.off) {
		return "", errCodecShort
	}
	s := d.s[d.off : d.off+int(n)]
	d.off += int(n)
	return s, nil
}

// strs reads a count and that many strings (nil for none).
func (d *codecReader) strs() ([]string, error) {
	n, err := d.count(1)
	if err != nil || n == 0 {
		return nil, err
	}
	ss := make([]string, n)
	for i := range ss {
		if ss[i], err = d.str(); err != nil {
			return nil, err
		}
	}
	return ss, nil
}

func codecAppendStrings(b []byte, ss []string) []byte {
	b = binary.AppendUvarint(b, uint64(len(ss)))
	for _, s := range ss {
		b = codecAppendString(b, s)
	}
	return b
}

func codecAppendString(b []byte, s string) []byte {
	return append(binary.AppendUvarint(b, uint64(len(s))), s...)
}

func codecStringLen(s string) int { return codecUvarintLen(uint64(len(s))) + len(s) }

func codecUvarintLen(x uint64) int {
	n := 1
	for x >= 0x80 {
		x >>= 7
		n++
	}
	return n
}

func codecVarintLen(x int64) int {
	ux := uint64(x) << 1
	if x < 0 {
		ux = ^ux
	}
	return codecUvarintLen(ux)
}

// The zstd encoder and decoder are shared: EncodeAll and DecodeAll are safe
// for concurrent use and keep their own pools of GOMAXPROCS workers. They
// are made on first use; nil means they could not be made, and records are
// then written uncompressed (and compressed ones cannot be read).
var (
	codecEncoder = sync.OnceValue(func() *zstd.Encoder {
		enc, err := zstd.NewWriter(nil,
			zstd.WithEncoderLevel(zstd.SpeedFastest),
			zstd.WithEncoderConcurrency(runtime.GOMAXPROCS(0)))
		if err != nil {
			return nil
		}
		return enc
	})
	codecDecoder = sync.OnceValue(func() *zstd.Decoder {
		dec, err := zstd.NewReader(nil,
			zstd.WithDecoderConcurrency(runtime.GOMAXPROCS(0)),
			zstd.WithDecoderMaxMemory(codecMaxDecoded))
		if err != nil {
			return nil
		}
		return dec
	})
	codecBuffers = sync.Pool{New: func() any { return new([]byte) }}
)

// codecPut returns a scratch buffer to the pool unless it grew too large.
func codecPut(bp *[]byte) {
	if cap(*bp) > codecPoolMax {
		return
	}
	*bp = (*bp)[:0]
	codecBuffers.Put(bp)
}
