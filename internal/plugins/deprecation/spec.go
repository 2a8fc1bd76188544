package deprecation

import (
	"errors"
	"net/url"
	"strings"
	"time"

	"github.com/portico-gateway/portico/internal/config"
	"github.com/portico-gateway/portico/internal/pipeline"
)

// Spec configures deprecation.
type Spec struct {
	// Since is when the route's API version was (or will be) deprecated:
	// an RFC 3339 date ("2026-01-01", midnight UTC) or date-time
	// ("2026-01-01T00:00:00Z"). Required. Sent as Deprecation: @<unix
	// seconds> (RFC 9745).
	Since string `yaml:"since"`
	// Sunset is when the version stops working, in the same forms; not
	// before Since. Optional. Sent as Sunset: <IMF-fixdate> (RFC 8594).
	Sunset string `yaml:"sunset"`
	// Link is an absolute http(s) URL of a page about the deprecation (a
	// migration guide). Optional. Sent as Link: <url>; rel="deprecation";
	// type="text/html".
	Link string `yaml:"link"`
	// SunsetLink is an absolute http(s) URL about the sunset. Optional.
	// Sent as Link: <url>; rel="sunset".
	SunsetLink string `yaml:"sunset_link"`
}

var _ pipeline.Spec = (*Spec)(nil)

const timeSyntax = `must be an RFC 3339 date ("2026-01-01") or date-time ("2026-01-01T00:00:00Z")`

// Validate requires since, checks every date and URL, and that sunset is
// not before since.
func (s *Spec) Validate(p config.Path) error {
	var errs []error
	var since time.Time
	if s.Since == "" {
		errs = append(errs, p.Key("since").Errorf("is required: the date the version was deprecated, %s",
			strings.TrimPrefix(timeSyntax, "must be ")))
	} else if t, err := parseTime(s.Since); err != nil {
		errs = append(errs, p.Key("since").Errorf("%s", timeSyntax))
	} else {
		since = t
	}
	if s.Sunset != "" {
		t, err := parseTime(s.Sunset)
		switch {
		case err != nil:
			errs = append(errs, p.Key("sunset").Errorf("%s", timeSyntax))
		case !since.IsZero() && t.Before(since):
			errs = append(errs, p.Key("sunset").Errorf("must not be before since (%s)",
				since.UTC().Format(time.RFC3339)))
		}
	}
	if s.Link != "" {
		if err := checkURL(s.Link); err != nil {
			errs = append(errs, p.Key("link").Errorf("%s", err.Error()))
		}
	}
	if s.SunsetLink != "" {
		if err := checkURL(s.SunsetLink); err != nil {
			errs = append(errs, p.Key("sunset_link").Errorf("%s", err.Error()))
		}
	}
	return errors.Join(errs...)
}

// parseTime reads an RFC 3339 date-time, or a full date taken as midnight
// UTC.
func parseTime(s string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	return time.Parse(time.DateOnly, s)
}

var errURL = errors.New(`must be an absolute http or https URL, such as "https://example.com/docs/migrate-to-v2"`)

// checkURL accepts absolute http(s) URLs with a host whose text can sit
// between < and > in a Link header unchanged.
func checkURL(s string) error {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c >= 0x7f || c == '<' || c == '>' || c == '"' {
			return errors.New(`must be an absolute http or https URL without spaces, quotes, < or >; percent-encode them`)
		}
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
		return errURL
	}
	return nil
}
