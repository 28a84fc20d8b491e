package taskerr

import (
	"fmt"
	"slices"
	"strings"

	"github.com/wasmpool/wasmpool/engine"
)

// Lacks is the refusal of a task by a worker that does not provide a
// capability the task grants: a worker process, a cluster worker. It is
// the engine's own refusal (engine.ErrNoCapability), said by the worker
// that refused, so that whoever reads it knows which worker to fix. nil
// when the worker provides every grant.
func Lacks(worker string, grants, provided []string) error {
	for _, g := range grants {
		if !slices.Contains(provided, g) {
			return &lacksError{worker: worker, capability: g, provided: provided}
		}
	}
	return nil
}

// lacksError crosses a wire as its text and engine.ErrNoCapability (the
// codec's sentinel), which is all it is.
type lacksError struct {
	worker, capability string
	provided           []string
}

func (e *lacksError) Error() string {
	have := "none"
	if len(e.provided) > 0 {
		have = strings.Join(e.provided, ", ")
	}
	return fmt.Sprintf("%s refused the task: it does not provide capability %q, which the task grants (it provides: %s)",
		e.worker, e.capability, have)
}

func (e *lacksError) Unwrap() error { return engine.ErrNoCapability }
