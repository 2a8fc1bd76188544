package config

import (
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"
)

// Duration is a time span written in Go syntax: "250ms", "10s", "1m30s".
// Negative values are refused.
type Duration time.Duration

// UnmarshalText parses a duration such as "10s".
func (d *Duration) UnmarshalText(b []byte) error {
	s := strings.TrimSpace(string(b))
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("invalid duration %q: use a number with a unit, like 250ms, 10s or 1m", s)
	}
	if v < 0 {
		return fmt.Errorf("duration %q must not be negative", s)
	}
	*d = Duration(v)
	return nil
}

// MarshalText prints the duration in Go syntax.
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// D returns d as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// ByteSize is a size in bytes written as a plain integer or with a unit:
// "512", "16KiB", "1MiB", "2GiB" (powers of 1024) or "10KB", "5MB", "1GB"
// (powers of 1000). Negative values are refused.
type ByteSize int64

var sizeUnits = []struct {
	suffix string
	mult   int64
}{
	{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30},
	{"KB", 1000}, {"MB", 1000 * 1000}, {"GB", 1000 * 1000 * 1000},
	{"B", 1},
}

// UnmarshalText parses a size such as "16KiB".
func (s *ByteSize) UnmarshalText(b []byte) error {
	str := strings.TrimSpace(string(b))
	num, mult := str, int64(1)
	for _, u := range sizeUnits {
		if strings.HasSuffix(str, u.suffix) {
			num, mult = strings.TrimSpace(strings.TrimSuffix(str, u.suffix)), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n < 0 {
		return fmt.Errorf("invalid size %q: use bytes or a unit, like 512, 16KiB, 1MiB or 10MB", str)
	}
	if n > (1<<62)/mult {
		return fmt.Errorf("size %q is too large", str)
	}
	*s = ByteSize(n * mult)
	return nil
}

// MarshalText prints the size in bytes.
func (s ByteSize) MarshalText() ([]byte, error) { return []byte(strconv.FormatInt(int64(s), 10)), nil }

// Secret is a config string that must never be printed: logs, errors and
// the admin API show "[redacted]". Use Value to read it.
type Secret string

// Value returns the secret itself.
func (s Secret) Value() string { return string(s) }

// String returns "[redacted]" so that %s and %v never leak the value.
func (s Secret) String() string { return "[redacted]" }

// LogValue keeps the value out of structured logs.
func (s Secret) LogValue() slog.Value { return slog.StringValue("[redacted]") }

// MarshalJSON keeps the value out of JSON output.
func (s Secret) MarshalJSON() ([]byte, error) { return []byte(`"[redacted]"`), nil }

// MarshalText keeps the value out of YAML and text output.
func (s Secret) MarshalText() ([]byte, error) { return []byte("[redacted]"), nil }

// UnmarshalText stores the secret.
func (s *Secret) UnmarshalText(b []byte) error {
	if len(b) == 0 {
		return errors.New("must not be empty")
	}
	*s = Secret(b)
	return nil
}

// IsHeaderName reports whether s is a header name a plugin may be
// configured to set or read: 1 to 128 characters from letters, digits, "-"
// and "_" (a conservative subset of RFC 9110 tokens that every proxy and
// server accepts).
func IsHeaderName(s string) bool {
	if s == "" || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case c == '-' || c == '_':
		default:
			return false
		}
	}
	return true
}
