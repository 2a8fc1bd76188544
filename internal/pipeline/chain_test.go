package pipeline

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/portico-gateway/portico/internal/config"
	"go.yaml.in/yaml/v3"
)

type noteSpec struct {
	Note string `yaml:"note"`
}

func (s *noteSpec) Validate(p config.Path) error {
	if s.Note == "bad" {
		return p.Key("note").Errorf("must not be bad")
	}
	return nil
}

// recording returns a registration whose middleware appends its name and
// note to the X-Order header on the way in.
func recording(name string, phase Phase) Registration {
	return Registration{
		Name:  name,
		Phase: phase,
		Spec:  func() Spec { return &noteSpec{Note: "default"} },
		Build: func(s Spec, env *BuildEnv) (Middleware, error) {
			note := s.(*noteSpec).Note
			scope := env.Scope.String()
			return func(next http.Handler) http.Handler {
				return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					r.Header.Add("X-Order", name+":"+note+":"+scope)
					next.ServeHTTP(w, r)
				})
			}, nil
		},
	}
}

func pluginSet(t *testing.T, src string) (*config.Config, config.PluginSet) {
	t.Helper()
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(src), &doc); err != nil {
		t.Fatal(err)
	}
	m := doc.Content[0]
	var set config.PluginSet
	for i := 0; i < len(m.Content); i += 2 {
		name := m.Content[i].Value
		set.Entries = append(set.Entries, config.PluginEntry{Name: name, Node: m.Content[i+1],
			Path: config.Path{}.Key("plugins").Key(name)})
	}
	return &config.Config{}, set
}

func TestChainOrderIsByPhaseNotByConfig(t *testing.T) {
	reg := NewRegistry([]Registration{
		recording("auth", PhaseAuthenticate),
		recording("limit", PhaseRateLimit),
		recording("id", PhaseRequestID),
	}, nil)
	// Written in the "wrong" order: the chain must still run id → auth → limit.
	cfg, set := pluginSet(t, "limit: {}\nauth: {note: x}\nid: {}\n")
	cs, err := reg.Decode(cfg, set, ScopeRoute)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	h, err := Chain(cs, BuildEnv{}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r.Header["X-Order"]
	}))
	if err != nil {
		t.Fatal(err)
	}
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/", nil))
	want := "id:default:route,auth:x:route,limit:default:route"
	if strings.Join(got, ",") != want {
		t.Errorf("got order %v, want %s", got, want)
	}
}

func TestMergeMostSpecificWins(t *testing.T) {
	a := Registration{Name: "a"}
	b := Registration{Name: "b"}
	global := []Configured{{Reg: &a, Scope: ScopeGlobal}, {Reg: &b, Scope: ScopeGlobal}}
	service := []Configured{{Reg: &b, Scope: ScopeService}}
	route := []Configured{{Reg: &a, Scope: ScopeRoute}}
	got := Merge(global, service, route)
	if len(got) != 2 || got[0].Scope != ScopeRoute || got[1].Scope != ScopeService {
		t.Errorf("got %+v, want a from the route and b from the service", got)
	}
}

func TestDecodeErrors(t *testing.T) {
	reg := NewRegistry([]Registration{recording("request_id", PhaseRequestID)},
		map[string]string{"jwt": "JWT authentication"})
	cfg, set := pluginSet(t, "request_idd: {}\njwt: {}\nrequest_id: {note: bad}\nzzz: {}\n")
	_, err := reg.Decode(cfg, set, ScopeGlobal)
	if err == nil {
		t.Fatal("got nil error, want four")
	}
	for _, want := range []string{
		`plugins.request_idd: unknown plugin "request_idd"; did you mean "request_id"?`,
		`plugins.jwt: plugin "jwt" (JWT authentication) is not available in this version`,
		`plugins.request_id.note: must not be bad`,
		`plugins.zzz: unknown plugin "zzz"; available plugins: request_id`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("got:\n%s\nwant a line containing %q", err, want)
		}
	}
}
