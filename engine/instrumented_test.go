package engine_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"

	"github.com/wasmpool/wasmpool/engine"
	"github.com/wasmpool/wasmpool/internal/testmod"
)

// The instrumentation must not change what any guest does. These tests run
// every shipped module (hand-written, Go, C, Rust, AssemblyScript) with
// every export it has through three engines and compare what comes out:
// uninstrumented code (NoInterrupt, the reference: wazero running the
// module as it is), instrumented code, and metered code (a fuel budget).

// stubHosts grant the host functions the hand-written modules import, each
// doing nothing (or something fixed), the same in every engine.
var stubHosts = []engine.HostModule{
	{Name: "test", Define: func(b wazero.HostModuleBuilder) {
		for _, name := range []string{"done", "barrier", "wait"} {
			b.NewFunctionBuilder().WithGoModuleFunction(api.GoModuleFunc(func(context.Context, api.Module, []uint64) {}), nil, nil).Export(name)
		}
	}},
	{Name: "host", Define: func(b wazero.HostModuleBuilder) {
		b.NewFunctionBuilder().WithGoModuleFunction(api.GoModuleFunc(func(_ context.Context, _ api.Module, s []uint64) {
			s[0] = api.EncodeI32(2 * api.DecodeI32(s[0]))
		}), []api.ValueType{api.ValueTypeI32}, []api.ValueType{api.ValueTypeI32}).Export("double")
	}},
}

// neverEnds are exports that wait on something outside (a sleep, the test):
// nothing to compare. (Endless ones are found with a fuel budget.)
var neverEnds = map[string]bool{"nap.wasm run": true, "hostile.wasm sleep": true, "childprobe.wasm": true}

// inputs are what the SDK tasks of the Go guests and C kernels are given
// (others get "hello"); params, what raw exports are (others get zeros).
var (
	inputs = map[string][]string{
		"fib":       {"0", "1", "20", "not a number"},
		"mixed":     {"1"},
		"sha256":    {"", "hello", strings.Repeat("0123456789abcdef", 4096)},
		"jsonx":     {`{"a":[1,2,{"b":null}],"c":"d"}`, `not json`},
		"wordcount": {"one two  three\nfour\n"},
		"upper":     {"hello, World"},
		"echo":      {"echo me"},
	}
	params = map[string][][]uint64{
		"fibrec.wasm fib":      {{0}, {1}, {20}},
		"xorshift.wasm run":    {{1}, {1000}},
		"countdown.wasm run":   {{1000}},
		"add.wasm add":         {{2, 3}, {0xffffffff, 1}},
		"plugin.wasm compute":  {{21}},
		"tablegrow.wasm grow":  {{5}, {20_000_000}},
		"counter.wasm count":   {{}},
		"indirect.wasm run":    {{}},
		"leftover.wasm poke":   {{}},
		"hostile.wasm recurse": nil, // an SDK task
	}
	commandArgs = [][]string{{"-a", "x", "y"}, {"-E"}, {"-x", "3"}, {"-s", "oops"}, {"-t"}, {"trap"}, {}}
)

type fixture struct {
	name string
	path string
}

func allFixtures(t *testing.T) []fixture {
	root, err := testmod.Root()
	require.NoError(t, err)
	var out []fixture
	for _, dir := range []string{"wat", "c", "rust", "assemblyscript"} {
		paths, err := filepath.Glob(filepath.Join(root, "testdata", dir, "*.wasm"))
		require.NoError(t, err)
		for _, p := range paths {
			out = append(out, fixture{dir + "/" + filepath.Base(p), p})
		}
	}
	names, err := testmod.Names()
	require.NoError(t, err)
	for _, n := range names {
		out = append(out, fixture{"go/" + n, testmod.Path(t, n)})
	}
	return out
}

// outcome is what a task produced, in a form to compare.
type outcome struct {
	Output, Stderr string
	Values         []uint64
	ExitCode       uint32
	Err            string // the error's identity: its sentinels, trap kind, exit code
}

func outcomeOf(res engine.Result, err error) outcome {
	o := outcome{Output: string(res.Output), Stderr: string(res.Stderr), Values: res.Values, ExitCode: res.ExitCode}
	if err != nil {
		var ids []string
		for _, s := range []error{engine.ErrTimeout, engine.ErrCancelled, engine.ErrMemoryLimit, engine.ErrOutputLimit,
			engine.ErrNoFunction, engine.ErrBadModule, engine.ErrFuelExhausted, engine.ErrClosed} {
			if errors.Is(err, s) {
				ids = append(ids, s.Error())
			}
		}
		var trap *engine.TrapError
		if errors.As(err, &trap) {
			ids = append(ids, fmt.Sprintf("trap %v %q %q\n%s", trap.Kind, trap.Message, trap.Abort, trap.Stack))
		}
		var exit *engine.ExitError
		if errors.As(err, &exit) {
			ids = append(ids, fmt.Sprintf("exit %d", exit.Code))
		}
		var te *engine.TaskError
		if errors.As(err, &te) {
			ids = append(ids, "task: "+te.Message)
		}
		o.Err = strings.Join(ids, "; ")
		if o.Err == "" {
			o.Err = "other: " + err.Error()
		}
	}
	return o
}

// tasksOf is a task for every export of m, with the inputs above: an SDK
// task per input, a raw call per parameter list, a command per argument list.
func tasksOf(m *engine.Module) []engine.Task {
	var out []engine.Task
	if m.IsCommand() {
		for _, args := range commandArgs {
			out = append(out, engine.Task{Module: m, Args: args, Input: []byte("hello from stdin\n")})
		}
	}
	for _, x := range m.Exports() {
		if x.Name == "_start" || x.Name == "_initialize" {
			continue
		}
		key := m.Name() + " " + x.Name
		if ps, ok := params[key]; ok && ps != nil {
			for _, p := range ps {
				out = append(out, engine.Task{Module: m, Func: x.Name, Params: slices.Clone(p)})
			}
			continue
		}
		if x.IsTask() {
			ins := inputs[x.Name]
			if ins == nil {
				ins = []string{"hello"}
			}
			for _, in := range ins {
				out = append(out, engine.Task{Module: m, Func: x.Name, Input: []byte(in)})
			}
			continue
		}
		out = append(out, engine.Task{Module: m, Func: x.Name, Params: make([]uint64, len(x.Params))})
	}
	return out
}

func truncate(b []byte) string {
	if len(b) > 20 {
		return string(b[:20]) + "…"
	}
	return string(bytes.Clone(b))
}
