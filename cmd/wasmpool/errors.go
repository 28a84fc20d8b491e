package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strings"

	"github.com/wasmpool/wasmpool/engine"
)

// usageError is a mistake in how wasmpool was called: exit status 2. With
// hint set, the message is followed by "see 'wasmpool CMD --help'".
type usageError struct {
	msg  string
	hint bool
}

func (e *usageError) Error() string { return e.msg }

// usagef is a usage error with the --help hint.
func usagef(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...), hint: true}
}

// fileError is a usage error about a file the user named (no hint: the
// flags were right, the file is not).
func fileError(what, path string, err error) error {
	return &usageError{msg: fmt.Sprintf("%s %q: %v", what, path, cleanPathError(err))}
}

// exitStatus ends the command with a status after everything worth saying
// has been said (map and batch report each failure as it happens).
type exitStatus struct{ code int }

func (e *exitStatus) Error() string { return fmt.Sprintf("exit status %d", e.code) }

// badLineError is a batch line that cannot become a task.
type badLineError struct {
	line int
	msg  string
}

func (e *badLineError) Error() string { return fmt.Sprintf("line %d: %s", e.line, e.msg) }

// cleanPathError drops the "open /path:" prefix the caller already shows.
func cleanPathError(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// errorLine renders err as the one line wasmpool prints: the module is named
// (engine errors already do; others get "module NAME:" in front), and
// anything past the first line (a wasm stack trace, say) is left out.
func errorLine(module string, err error) string {
	msg := err.Error()
	var (
		ee *engine.Error
		he hostError
	)
	if module != "" && !errors.As(err, &ee) && !errors.As(err, &he) && !strings.Contains(msg, module) {
		msg = fmt.Sprintf("module %q: %s", module, msg)
	}
	return oneLine(msg)
}

func oneLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = strings.TrimSpace(s[:i]) + " …"
	}
	return s
}

// report prints "wasmpool: MESSAGE" on w.
func report(w io.Writer, format string, args ...any) {
	fmt.Fprintf(w, "wasmpool: %s\n", oneLine(fmt.Sprintf(format, args...)))
}
