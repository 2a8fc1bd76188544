package transform

import (
	"os"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/portico-gateway/portico/internal/config"
	"github.com/portico-gateway/portico/internal/pipeline"
)

// TestExampleConfig decodes and validates every request_transform and
// response_transform section of examples/transform.yaml.
func TestExampleConfig(t *testing.T) {
	t.Parallel()
	src, err := os.ReadFile("../../../examples/transform.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(src, &doc); err != nil {
		t.Fatal(err)
	}
	regs := map[string]pipeline.Registration{"request_transform": RequestRegistration(), "response_transform": ResponseRegistration()}
	found := 0
	check := func(plugins *yaml.Node, p config.Path) {
		for i := 0; i+1 < len(plugins.Content); i += 2 {
			reg, ok := regs[plugins.Content[i].Value]
			if !ok {
				continue
			}
			found++
			pp := p.Key(reg.Name)
			spec := reg.Spec()
			if err := (&config.Config{}).DecodeNode(plugins.Content[i+1], pp, spec); err != nil {
				t.Errorf("decode: %s", err.Error())
				continue
			}
			if err := spec.Validate(pp); err != nil {
				t.Errorf("validate: %s", err.Error())
				continue
			}
			if _, err := reg.Build(spec, &pipeline.BuildEnv{}); err != nil {
				t.Errorf("build %s: %s", pp, err.Error())
			}
		}
	}
	root := doc.Content[0]
	for i := 0; i+1 < len(root.Content); i += 2 {
		switch root.Content[i].Value {
		case "plugins":
			check(root.Content[i+1], config.Path{}.Key("plugins"))
		case "routes":
			for j, route := range root.Content[i+1].Content {
				for k := 0; k+1 < len(route.Content); k += 2 {
					if route.Content[k].Value == "plugins" {
						check(route.Content[k+1], config.Path{}.Index("routes", j).Key("plugins"))
					}
				}
			}
		}
	}
	if found != 5 {
		t.Errorf("got %d transform sections, want 5", found)
	}
}
