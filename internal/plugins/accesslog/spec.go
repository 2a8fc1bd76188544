package accesslog

import (
	"strings"

	"github.com/portico-gateway/portico/internal/config"
	"github.com/portico-gateway/portico/internal/pipeline"
)

// Spec configures access_log.
type Spec struct {
	// Output is where the lines go: "stdout" (the default), "stderr", or the
	// path of a file, opened for appending (created with mode 0644) and
	// reopened on SIGUSR1 for log rotation. Routes naming the same output
	// share one buffered writer.
	Output string `yaml:"output"`
}

var _ pipeline.Spec = (*Spec)(nil)

// Validate checks that an output is named.
func (s *Spec) Validate(p config.Path) error {
	if strings.TrimSpace(s.Output) == "" {
		return p.Key("output").Errorf("must not be empty; use stdout, stderr or a file path")
	}
	return nil
}
