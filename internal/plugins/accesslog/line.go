package accesslog

import (
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/portico-gateway/portico/internal/httpsyntax"
	"github.com/portico-gateway/portico/internal/pipeline"
)

// appendLine appends the JSON access log line for one request, with its
// trailing newline. See the package doc for the fields.
func appendLine(b []byte, r *http.Request, ex *pipeline.Exchange, start time.Time, d time.Duration, status int, errText string) []byte {
	b = append(b, `{"time":"`...)
	b = appendTime(b, start)
	b = append(b, `","request_id":"`...)
	b = appendEscaped(b, ex.RequestID)
	b = append(b, `","client_ip":"`...)
	if ex.ClientIP.Zone() == "" {
		b = ex.ClientIP.AppendTo(b) // digits, dots and colons only
	} else {
		b = appendEscaped(b, ex.ClientIP.String())
	}
	b = append(b, `","method":"`...)
	b = appendEscaped(b, r.Method)
	b = append(b, `","host":"`...)
	b = appendEscaped(b, r.Host)
	b = append(b, `","path":"`...)
	b = appendEscaped(b, r.URL.EscapedPath())
	b = append(b, `","query":"`...)
	b = appendQuery(b, r.URL.RawQuery)
	b = append(b, `","proto":"`...)
	b = appendEscaped(b, r.Proto)
	b = append(b, `","route":"`...)
	b = appendEscaped(b, ex.Route)
	b = append(b, `","service":"`...)
	b = appendEscaped(b, ex.Service)
	b = append(b, `","upstream":"`...)
	b = appendEscaped(b, ex.Upstream)
	if ex.Consumer != nil {
		b = append(b, `","consumer":"`...)
		b = appendEscaped(b, ex.Consumer.Name)
	}
	if ex.Credential != "" {
		// A credential id, never the secret (see pipeline.Exchange).
		b = append(b, `","credential":"`...)
		b = appendEscaped(b, ex.Credential)
	}
	b = append(b, `","status":`...)
	b = strconv.AppendInt(b, int64(status), 10)
	b = append(b, `,"bytes_in":`...)
	b = strconv.AppendInt(b, ex.BytesIn, 10)
	b = append(b, `,"bytes_out":`...)
	b = strconv.AppendInt(b, ex.BytesOut, 10)
	b = append(b, `,"duration_ms":`...)
	b = appendMillis(b, d)
	if ex.UpstreamDuration > 0 {
		b = append(b, `,"upstream_ms":`...)
		b = appendMillis(b, ex.UpstreamDuration)
	}
	if ex.Attempts > 1 {
		b = append(b, `,"attempts":`...)
		b = strconv.AppendInt(b, int64(ex.Attempts), 10)
	}
	b = append(b, `,"user_agent":"`...)
	if ua := r.Header["User-Agent"]; len(ua) > 0 {
		b = appendEscaped(b, ua[0])
	}
	b = append(b, '"')
	if errText != "" {
		b = append(b, `,"error":"`...)
		b = appendEscaped(b, errText)
		b = append(b, '"')
	}
	return append(b, "}\n"...)
}

// appendTime appends t in UTC as 2006-01-02T15:04:05.000Z.
func appendTime(b []byte, t time.Time) []byte {
	t = t.UTC()
	year, month, day := t.Date()
	hour, minute, sec := t.Clock()
	ms := t.Nanosecond() / int(time.Millisecond)
	if year < 0 || year > 9999 {
		year = 0
	}
	b = append2(b, year/100)
	b = append2(b, year%100)
	b = append(b, '-')
	b = append2(b, int(month))
	b = append(b, '-')
	b = append2(b, day)
	b = append(b, 'T')
	b = append2(b, hour)
	b = append(b, ':')
	b = append2(b, minute)
	b = append(b, ':')
	b = append2(b, sec)
	b = append(b, '.', byte('0'+ms/100))
	b = append2(b, ms%100)
	return append(b, 'Z')
}

// twoDigits holds "00" to "99".
const twoDigits = "00010203040506070809" +
	"10111213141516171819" + "20212223242526272829" + "30313233343536373839" +
	"40414243444546474849" + "50515253545556575859" + "60616263646566676869" +
	"70717273747576777879" + "80818283848586878889" + "90919293949596979899"

// append2 appends 0 <= n < 100 as two digits.
func append2(b []byte, n int) []byte {
	return append(b, twoDigits[2*n], twoDigits[2*n+1])
}

// appendMillis appends d in milliseconds with exactly three decimals
// (microsecond precision), as a JSON number.
func appendMillis(b []byte, d time.Duration) []byte {
	if d < 0 {
		d = 0
	}
	us := int64(d / time.Microsecond)
	b = strconv.AppendInt(b, us/1000, 10)
	frac := int(us % 1000)
	b = append(b, '.', byte('0'+frac/100))
	return append2(b, frac%100)
}

const hexDigits = "0123456789abcdef"

// plain marks the bytes that appear in a JSON string as they are: ASCII
// other than control characters, '"' and '\\'. Bytes from 0x80 up take the
// UTF-8 check.
var plain = func() (t [256]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

const (
	ones  = 0x0101010101010101
	highs = 0x8080808080808080
)

// special8 reports whether one of the 8 bytes of s may need escaping: a
// control character, '"', '\\' or a non-ASCII byte. It may report true for
// a plain chunk (the byte loop then decides), never false for a special one.
func special8(s string) bool {
	x := uint64(s[0]) | uint64(s[1])<<8 | uint64(s[2])<<16 | uint64(s[3])<<24 |
		uint64(s[4])<<32 | uint64(s[5])<<40 | uint64(s[6])<<48 | uint64(s[7])<<56
	control := (x - ones*0x20) & ^x
	q := x ^ (ones * '"')
	quote := (q - ones) & ^q
	bs := x ^ (ones * '\\')
	backslash := (bs - ones) & ^bs
	return (control|quote|backslash|x)&highs != 0
}

// appendEscaped appends s as the inside of a JSON string: quotes,
// backslashes and control characters are escaped, and invalid UTF-8 is
// replaced by U+FFFD, so any input yields valid JSON and one line.
func appendEscaped(b []byte, s string) []byte {
	i := 0
	for i+8 <= len(s) && !special8(s[i:i+8]) {
		i += 8
	}
	for i < len(s) && plain[s[i]] {
		i++
	}
	if i == len(s) {
		return append(b, s...) // the common case: nothing to escape
	}
	start := 0
	for i < len(s) {
		c := s[i]
		if plain[c] {
			i++
			continue
		}
		if c >= utf8.RuneSelf {
			r, size := utf8.DecodeRuneInString(s[i:])
			if r != utf8.RuneError || size != 1 {
				i += size
				continue
			}
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i++
			start = i
			continue
		}
		b = append(b, s[start:i]...)
		switch c {
		case '"', '\\':
			b = append(b, '\\', c)
		case '\n':
			b = append(b, '\\', 'n')
		case '\r':
			b = append(b, '\\', 'r')
		case '\t':
			b = append(b, '\\', 't')
		default:
			b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
		}
		i++
		start = i
	}
	return append(b, s[start:]...)
}

// redacted replaces the value of a sensitive query parameter.
const redacted = "[redacted]"

// sensitiveWords are the parameter name fragments whose values are
// redacted; see the package doc.
var sensitiveWords = [...]string{
	"key", "token", "secret", "password", "passwd",
	"signature", "sig", "auth", "credential", "session",
}

// appendQuery appends the raw query q as the inside of a JSON string, with
// the values of sensitive parameters replaced by [redacted]. Everything
// else, including separators and parameter order, is kept as sent.
func appendQuery(b []byte, q string) []byte {
	for q != "" {
		i := 0
		for i < len(q) && q[i] != '&' && q[i] != ';' {
			i++
		}
		seg := q[:i]
		var sep byte
		if i < len(q) {
			sep, q = q[i], q[i+1:]
		} else {
			q = ""
		}
		if name, _, ok := strings.Cut(seg, "="); ok && sensitive(name) {
			b = appendEscaped(b, name)
			b = append(b, '=')
			b = append(b, redacted...)
		} else {
			b = appendEscaped(b, seg)
		}
		if sep != 0 {
			b = append(b, sep)
		}
	}
	return b
}

// maxName is the longest decoded parameter name checked word by word;
// longer names are treated as sensitive.
const maxName = 64

// sensitive reports whether the query parameter named by the raw
// (percent-encoded) name carries a credential: its decoded, lowercased form
// contains one of sensitiveWords. Encoding a name ("%74oken") or changing
// its case does not avoid redaction.
func sensitive(raw string) bool {
	var buf [maxName]byte
	n := 0
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		switch {
		case c == '+':
			c = ' '
		case c == '%' && i+2 < len(raw) && httpsyntax.IsHex(raw[i+1]) && httpsyntax.IsHex(raw[i+2]):
			c, _ = httpsyntax.HexPair(raw[i+1], raw[i+2])
			i += 2
		}
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if n == len(buf) {
			return true
		}
		buf[n] = c
		n++
	}
	return containsWord(buf[:n])
}

// containsWord reports whether name contains one of sensitiveWords. It
// looks for a word only where its first letter occurs.
func containsWord(name []byte) bool {
	for i, c := range name {
		rest := name[i:]
		switch c {
		case 'k':
			if hasPrefix(rest, "key") {
				return true
			}
		case 't':
			if hasPrefix(rest, "token") {
				return true
			}
		case 's':
			if hasPrefix(rest, "sig") || hasPrefix(rest, "secret") || hasPrefix(rest, "session") {
				return true // "sig" also covers "signature"
			}
		case 'p':
			if hasPrefix(rest, "password") || hasPrefix(rest, "passwd") {
				return true
			}
		case 'a':
			if hasPrefix(rest, "auth") {
				return true
			}
		case 'c':
			if hasPrefix(rest, "credential") {
				return true
			}
		}
	}
	return false
}

func hasPrefix(b []byte, w string) bool {
	return len(b) >= len(w) && string(b[:len(w)]) == w
}
