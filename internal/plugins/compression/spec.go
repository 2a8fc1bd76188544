package compression

import (
	"errors"
	"slices"
	"strings"

	"github.com/portico-gateway/portico/internal/config"
	"github.com/portico-gateway/portico/internal/httpsyntax"
	"github.com/portico-gateway/portico/internal/pipeline"
)

// Defaults and bounds of the settings.
const (
	// DefaultMinSize is the smallest body compressed when min_size is not set.
	DefaultMinSize = 1 << 10
	// MaxMinSize bounds min_size: a response of unknown length is buffered
	// up to min_size before the decision, so it must stay small.
	MaxMinSize = 1 << 20
	// DefaultMaxDecompressedSize bounds a decoded request body when
	// max_decompressed_size is not set.
	DefaultMaxDecompressedSize = 10 << 20
)

// DefaultContentTypes are the media types compressed when content_types is
// not set. "*/*+json" and "*/*+xml" stand for every type with that
// structured-syntax suffix (application/ld+json, application/atom+xml...).
var DefaultContentTypes = []string{
	"text/html", "text/plain", "text/css", "text/xml", "text/javascript",
	"application/json", "application/javascript", "application/xml",
	"application/problem+json", "image/svg+xml", "*/*+json", "*/*+xml",
}

// encodingNames are the codings the plugin produces, by encoding value.
var encodingNames = [numEncodings]string{encGzip: "gzip", encBrotli: "br", encZstd: "zstd"}

// levelRange is the accepted and default level of each coding.
var levelRange = [numEncodings]struct{ min, max, def int }{
	encGzip:   {1, 9, 5},
	encBrotli: {0, 11, 4},
	encZstd:   {1, 4, 1},
}

// Spec configures compression.
type Spec struct {
	// Encodings are the codings offered, in the server's order of
	// preference (used to break ties between equal q-values). Each is one
	// of gzip, br, zstd, listed once. Default [zstd, br, gzip].
	Encodings []string `yaml:"encodings"`
	// Levels sets the level per coding: gzip 1..9 (default 5), br 0..11
	// (default 4), zstd 1..4 (fastest..best compression, default 1).
	Levels map[string]int `yaml:"levels"`
	// MinSize is the smallest body compressed; smaller bodies are sent as
	// they are. Default 1KiB, at most 1MiB.
	MinSize config.ByteSize `yaml:"min_size"`
	// ContentTypes are the media types compressed (parameters such as
	// charset are ignored): "type/subtype", "type/*", or "*/*+suffix" for
	// every type with a structured-syntax suffix. Default
	// DefaultContentTypes.
	ContentTypes []string `yaml:"content_types"`
	// DecompressRequests decodes request bodies sent with Content-Encoding
	// gzip, br or zstd before they go upstream. Default false.
	DecompressRequests bool `yaml:"decompress_requests"`
	// MaxDecompressedSize bounds a decoded request body; past it the
	// request is refused with 413. Only with decompress_requests. Default
	// 10MiB.
	MaxDecompressedSize *config.ByteSize `yaml:"max_decompressed_size"`
}

var _ pipeline.Spec = (*Spec)(nil)

// newSpec returns a Spec holding the defaults.
func newSpec() *Spec {
	return &Spec{
		Encodings:    []string{"zstd", "br", "gzip"},
		MinSize:      DefaultMinSize,
		ContentTypes: slices.Clone(DefaultContentTypes),
	}
}

// parseEncoding returns the encoding named s.
func parseEncoding(s string) (encoding, bool) {
	for e, name := range encodingNames {
		if s == name {
			return encoding(e), true
		}
	}
	return encIdentity, false
}

// Validate reports every problem of s.
func (s *Spec) Validate(p config.Path) error {
	var errs []error
	if len(s.Encodings) == 0 {
		errs = append(errs, p.Key("encodings").Errorf("must list at least one of gzip, br, zstd"))
	}
	seen := make(map[string]bool)
	for i, name := range s.Encodings {
		ip := p.Key("encodings").At(i)
		if _, ok := parseEncoding(name); !ok {
			errs = append(errs, ip.Errorf("%s", unknownEncoding(name)))
			continue
		}
		if seen[name] {
			errs = append(errs, ip.Errorf("%s is listed twice", name))
		}
		seen[name] = true
	}
	levelKeys := make([]string, 0, len(s.Levels))
	for name := range s.Levels {
		levelKeys = append(levelKeys, name)
	}
	slices.Sort(levelKeys)
	for _, name := range levelKeys {
		kp := p.Key("levels").Key(name)
		e, ok := parseEncoding(name)
		if !ok {
			errs = append(errs, kp.Errorf("%s", unknownEncoding(name)))
			continue
		}
		lr := levelRange[e]
		if lv := s.Levels[name]; lv < lr.min || lv > lr.max {
			errs = append(errs, kp.Errorf("must be %d to %d, got %d", lr.min, lr.max, lv))
		}
		if len(s.Encodings) > 0 && !slices.Contains(s.Encodings, name) {
			errs = append(errs, kp.Errorf("%s is not listed in encodings", name))
		}
	}
	if s.MinSize > MaxMinSize {
		errs = append(errs, p.Key("min_size").Errorf("must be at most 1MiB (bodies of unknown length are buffered up to it)"))
	}
	if len(s.ContentTypes) == 0 {
		errs = append(errs, p.Key("content_types").Errorf("must list at least one media type"))
	}
	seenTypes := make(map[string]bool)
	for i, ct := range s.ContentTypes {
		ip := p.Key("content_types").At(i)
		if msg := checkMediaRange(ct); msg != "" {
			errs = append(errs, ip.Errorf("%s", msg))
			continue
		}
		lc := strings.ToLower(ct)
		if seenTypes[lc] {
			errs = append(errs, ip.Errorf("%s is listed twice", ct))
		}
		seenTypes[lc] = true
	}
	if s.MaxDecompressedSize != nil {
		mp := p.Key("max_decompressed_size")
		switch {
		case !s.DecompressRequests:
			errs = append(errs, mp.Errorf("only applies with decompress_requests: true"))
		case *s.MaxDecompressedSize == 0:
			errs = append(errs, mp.Errorf("must be greater than 0"))
		}
	}
	return errors.Join(errs...)
}

// unknownEncoding is the message for a coding name that is not offered.
func unknownEncoding(name string) string {
	msg := "must be one of gzip, br, zstd"
	if s := config.Suggest(name, encodingNames[:]); s != "" {
		msg += " (did you mean " + s + "?)"
	}
	return msg
}

// checkMediaRange returns why ct is not an accepted content_types entry,
// or "".
func checkMediaRange(ct string) string {
	const form = `must be "type/subtype", "type/*" or "*/*+suffix", without parameters`
	typ, sub, ok := strings.Cut(ct, "/")
	if !ok || !httpsyntax.IsToken(typ) && typ != "*" || sub == "" {
		return form
	}
	if typ == "*" {
		if sub == "*" {
			return `*/* would compress images, video and archives: list the types to compress`
		}
		if !strings.HasPrefix(sub, "*+") || !httpsyntax.IsToken(sub[2:]) {
			return form
		}
		return ""
	}
	if sub != "*" && !httpsyntax.IsToken(sub) {
		return form
	}
	return ""
}
