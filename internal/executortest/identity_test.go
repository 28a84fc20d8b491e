package executortest

import (
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/wasmpool/wasmpool/engine"
	"github.com/wasmpool/wasmpool/future"
	"github.com/wasmpool/wasmpool/internal/wire"
	"github.com/wasmpool/wasmpool/pool"
)

// outcome is what a task ended with on one executor.
type outcome struct {
	res      engine.Result
	err      error
	streamed string // what its streams got, for a task that has some
}

// identity is everything a user can tell an error by: what it matches
// (errors.Is, for every sentinel of the one error codec), its typed errors
// with their fields (errors.As), the module it names, whether it is the
// future's own failure, and its text.
type identity struct {
	Is      []string
	Trap    *engine.TrapError
	Exit    *engine.ExitError
	Task    *engine.TaskError
	Crash   *pool.CrashError
	Module  string
	Failure bool
	Text    string
}

func identify(err error) *identity {
	if err == nil {
		return nil
	}
	id := &identity{Failure: future.IsFailure(err), Text: err.Error()}
	for _, s := range wire.Sentinels {
		if errors.Is(err, s) {
			id.Is = append(id.Is, s.Error())
		}
	}
	var (
		trap  *engine.TrapError
		exit  *engine.ExitError
		task  *engine.TaskError
		crash *pool.CrashError
		ee    *engine.Error
	)
	if errors.As(err, &trap) {
		id.Trap = trap
	}
	if errors.As(err, &exit) {
		id.Exit = exit
	}
	if errors.As(err, &task) {
		id.Task = task
	}
	if errors.As(err, &crash) {
		id.Crash = crash
	}
	if errors.As(err, &ee) {
		id.Module = ee.Module
	}
	return id
}

// variance is what of two outcomes of the same task may differ.
type variance struct {
	// text: the error's text (a stop's wording says where it was stopped).
	text bool
	// stderr: what the guest wrote to stderr, past its first line.
	stderr bool
}

// assertSame asserts that got is the same outcome as want: the same bytes
// and values, and an error of the same identity, apart from what may vary.
func assertSame(t *testing.T, want, got outcome, varies variance) {
	t.Helper()
	assert.Equal(t, string(want.res.Output), string(got.res.Output), "Output")
	if varies.stderr {
		assert.Equal(t, firstWords(want.res.Stderr), firstWords(got.res.Stderr), "Stderr's first words")
	} else {
		assert.Equal(t, string(want.res.Stderr), string(got.res.Stderr), "Stderr")
	}
	assert.Equal(t, want.res.Values, got.res.Values, "Values (nil apart from empty)")
	assert.Equal(t, want.res.ExitCode, got.res.ExitCode, "ExitCode")
	assert.Equal(t, want.res.Fuel, got.res.Fuel, "Fuel used")
	assert.Equal(t, want.streamed, got.streamed, "what the streams got")
	wid, gid := identify(want.err), identify(got.err)
	if varies.text && wid != nil && gid != nil {
		wid.Text, gid.Text = "", ""
	}
	assert.Equal(t, wid, gid, "the error's identity")
}

// matches asserts that err matches every one of targets.
func matches(t *testing.T, err error, targets ...error) {
	t.Helper()
	for _, target := range targets {
		assert.ErrorIs(t, err, target)
	}
}

// firstWords is stderr's first line up to its first digit: "runtime: out
// of memory: cannot allocate " of a Go guest's memory bomb.
func firstWords(stderr []byte) string {
	line, _, _ := strings.Cut(string(stderr), "\n")
	if i := strings.IndexAny(line, "0123456789"); i >= 0 {
		line = line[:i]
	}
	return line
}

func shorten(s string) string {
	if len(s) > 200 {
		return s[:200] + "…"
	}
	return strings.ReplaceAll(s, "\n", "\\n")
}
