package pipeline

import (
	"net/http"
	"testing"

	"github.com/portico-gateway/portico/internal/consumer"
)

// TestAuthPassedWithKeepsTheFirstValues: headers from a second passing
// plugin are added, but do not replace a name the first one set, and the
// first plugin's header set is not changed in place (it may be cached).
func TestAuthPassedWithKeepsTheFirstValues(t *testing.T) {
	t.Parallel()
	first := http.Header{"X-Roles": {"admin"}}
	ex := &Exchange{}
	ex.AuthPassedWith(&consumer.Consumer{Name: "a"}, "one", first)
	ex.AuthPassedWith(&consumer.Consumer{Name: "b"}, "two", http.Header{"X-Roles": {"guest"}, "X-Team": {"t"}})
	if ex.Consumer.Name != "a" || ex.Credential != "one" || ex.Auth.Passed != 2 || ex.Auth.Tried != 2 {
		t.Errorf("got consumer %q credential %q passed %d tried %d, want a, one, 2, 2",
			ex.Consumer.Name, ex.Credential, ex.Auth.Passed, ex.Auth.Tried)
	}
	if got := ex.Auth.Headers.Get("X-Roles"); got != "admin" {
		t.Errorf("got X-Roles %q, want admin", got)
	}
	if got := ex.Auth.Headers.Get("X-Team"); got != "t" {
		t.Errorf("got X-Team %q, want t", got)
	}
	if len(first) != 1 {
		t.Errorf("got the first header set changed to %v, want it untouched", first)
	}
	ex.AuthUnchecked()
	if ex.Auth.Tried != 3 || ex.Auth.Unchecked != 1 || ex.Auth.Passed != 2 {
		t.Errorf("got tried %d unchecked %d passed %d, want 3, 1, 2", ex.Auth.Tried, ex.Auth.Unchecked, ex.Auth.Passed)
	}
}
