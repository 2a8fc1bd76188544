package compression

import (
	"strings"
	"testing"

	"github.com/portico-gateway/portico/internal/plugins/plugintest"
)

func TestValidate(t *testing.T) {
	tests := []struct {
		name     string
		settings string
		want     []string // substrings of the error, one per problem; nil: valid
	}{
		{"defaults", "", nil},
		{"everything set", "encodings: [br, gzip]\nlevels: {br: 11, gzip: 1}\nmin_size: 256\n" +
			"content_types: [text/*, application/json, '*/*+xml']\ndecompress_requests: true\nmax_decompressed_size: 1MiB", nil},
		{"level bounds", "levels: {gzip: 9, br: 0, zstd: 4}", nil},
		{"min_size zero", "min_size: 0", nil},
		{"unknown encoding", "encodings: [gzip, deflate]", []string{"encodings[1]: must be one of gzip, br, zstd"}},
		{"did you mean", "encodings: [gzp]", []string{"encodings[0]: must be one of gzip, br, zstd (did you mean gzip?)"}},
		{"duplicate encoding", "encodings: [gzip, br, gzip]", []string{"encodings[2]: gzip is listed twice"}},
		{"no encodings", "encodings: []", []string{"encodings: must list at least one"}},
		{"gzip level too high", "levels: {gzip: 10}", []string{"levels.gzip: must be 1 to 9, got 10"}},
		{"gzip level zero", "levels: {gzip: 0}", []string{"levels.gzip: must be 1 to 9, got 0"}},
		{"br level too high", "levels: {br: 12}", []string{"levels.br: must be 0 to 11, got 12"}},
		{"br level negative", "levels: {br: -1}", []string{"levels.br: must be 0 to 11, got -1"}},
		{"zstd level", "levels: {zstd: 5}", []string{"levels.zstd: must be 1 to 4, got 5"}},
		{"level of unknown coding", "levels: {deflate: 3}", []string{"levels.deflate: must be one of gzip, br, zstd"}},
		{"level of coding not offered", "encodings: [gzip]\nlevels: {br: 5}", []string{"levels.br: br is not listed in encodings"}},
		{"min_size too large", "min_size: 2MiB", []string{"min_size: must be at most 1MiB"}},
		{"type with parameters", "content_types: [text/html; charset=utf-8]", []string{"content_types[0]: must be"}},
		{"type without subtype", "content_types: [text]", []string{"content_types[0]: must be"}},
		{"everything", "content_types: ['*/*']", []string{"content_types[0]: */* would compress images"}},
		{"bad suffix form", "content_types: ['*/json']", []string{"content_types[0]: must be"}},
		{"duplicate type", "content_types: [text/html, TEXT/HTML]", []string{"content_types[1]: TEXT/HTML is listed twice"}},
		{"no types", "content_types: []", []string{"content_types: must list at least one"}},
		{"max without decompress", "max_decompressed_size: 1MiB", []string{"max_decompressed_size: only applies with decompress_requests: true"}},
		{"max zero", "decompress_requests: true\nmax_decompressed_size: 0", []string{"max_decompressed_size: must be greater than 0"}},
		{"several at once", "encodings: [gzip, lz4]\nlevels: {gzip: 11}\nmin_size: 5MiB",
			[]string{"encodings[1]:", "levels.gzip:", "min_size:"}},
		{"unknown key", "level: {gzip: 1}", []string{"level"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := plugintest.CheckConfigure(t, Registration(), tt.settings, tt.want)
			if err == nil {
				return
			}
			msg := err.Error()
			if got := strings.Count(msg, "\n") + 1; got != len(tt.want) {
				t.Errorf("got %d errors (%q), want %d", got, msg, len(tt.want))
			}
		})
	}
}

func TestContentTypeMatching(t *testing.T) {
	m := newTypeMatcher(DefaultContentTypes)
	tests := []struct {
		ct   string
		want bool
	}{
		{"application/json", true},
		{"application/json; charset=utf-8", true},
		{"Application/JSON ;charset=UTF-8", true},
		{"text/html", true},
		{"application/problem+json", true},
		{"application/ld+json", true},
		{"application/atom+xml", true},
		{"image/svg+xml", true},
		{"text/csv", false},
		{"image/png", false},
		{"video/mp4", false},
		{"application/octet-stream", false},
		{"application/+json", false},
		{"", false},
		{"json", false},
	}
	for _, tt := range tests {
		if got := m.match(mediaType(tt.ct)); got != tt.want {
			t.Errorf("match(%q): got %v, want %v", tt.ct, got, tt.want)
		}
	}
	wild := newTypeMatcher([]string{"text/*"})
	if !wild.match("text/csv") || wild.match("application/json") {
		t.Error("got text/* wrong: want text/csv in and application/json out")
	}
}
