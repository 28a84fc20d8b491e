package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/wasmpool/wasmpool/engine"
)

// taskFields are the fields of a JSON result line that map and batch share:
// everything the task wrote and every fact about how it ended, true as
// reported. A failed task keeps its output and stderr: what a script printed
// before it failed is often what explains the failure.
type taskFields struct {
	OK bool `json:"ok"`
	payload
	OutputFile string `json:"output_file,omitempty"` // map --output-dir: where the output went instead
	Stderr     string `json:"stderr,omitempty"`
	// ExitCode is the guest's own exit code when it exited (a command: 0
	// on success), and absent when it did not (an export, a trap, a
	// timeout, a task that never ran).
	ExitCode   *uint32 `json:"exit_code,omitempty"`
	Error      string  `json:"error,omitempty"`
	ErrorKind  string  `json:"error_kind,omitempty"`
	Stack      string  `json:"stack,omitempty"` // a trap's wasm stack trace
	DurationMS float64 `json:"duration_ms"`
	Fuel       uint64  `json:"fuel,omitempty"`   // the instructions it ran, with a fuel budget (--fuel, "fuel")
	Worker     string  `json:"worker,omitempty"` // the cluster worker that ran it (--nats)
}

// newTaskFields fills the fields from a task's outcome; module names the
// module in the error line.
func newTaskFields(t engine.Task, res engine.Result, err error, module string) taskFields {
	f := taskFields{OK: err == nil, Stderr: string(res.Stderr), ExitCode: exitCodeOf(t, err),
		DurationMS: millis(res.Duration), Fuel: res.Fuel, Worker: res.Worker}
	if err == nil || len(res.Output) > 0 {
		f.payload = newPayload(res.Output)
	}
	if err != nil {
		f.Error, f.ErrorKind = errorLine(module, err), errorKind(err)
		f.Stack = trapStack(err)
	}
	return f
}

// exitCodeOf is the guest's exit code if it exited: a command that ran to
// its end, or any guest that called proc_exit with a non-zero code.
func exitCodeOf(t engine.Task, err error) *uint32 {
	var exit *engine.ExitError
	switch {
	case errors.As(err, &exit):
		code := exit.Code
		return &code
	case err == nil && t.Func == "":
		code := uint32(0)
		return &code
	}
	return nil
}

// trapStack is the wasm stack trace of a trap, or "".
func trapStack(err error) string {
	var trap *engine.TrapError
	if errors.As(err, &trap) {
		return trap.Stack
	}
	return ""
}

// writeStack prints a trap's stack as wazero does, under the error line:
// "wasm stack trace:", then its frames, a function at one tab and its source
// line (when the module carries DWARF) at two, each line after prefix.
// TrapError.Stack has lost the first frame's tab to trimming: it gets it back.
func writeStack(w io.Writer, prefix, stack string) {
	if stack == "" {
		return
	}
	var b strings.Builder
	b.WriteString(prefix + "wasm stack trace:\n")
	for _, line := range strings.Split(stack, "\n") {
		if !strings.HasPrefix(line, "\t") {
			line = "\t" + line
		}
		b.WriteString(prefix + line + "\n")
	}
	_, _ = io.WriteString(w, b.String())
}

// tagLines writes each line of b (a last line without its newline too) as
// "TAG\tLINE", as GNU parallel's --tag does: every line says which input it
// belongs to, whatever order the results come in.
func tagLines(tag string, b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	var out bytes.Buffer
	for len(b) > 0 {
		line := b
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			line, b = b[:i], b[i+1:]
		} else {
			b = nil
		}
		fmt.Fprintf(&out, "%s\t%s\n", tag, line)
	}
	return out.Bytes()
}
