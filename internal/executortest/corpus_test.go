package executortest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wasmpool/wasmpool/engine"
	"github.com/wasmpool/wasmpool/internal/testmod"
)

// modules compiles the corpus's modules once, on the submitters' engine.
type modules struct {
	t  *testing.T
	e  *engine.Engine
	mu sync.Mutex
	m  map[string]*engine.Module
}

func (ms *modules) get(kind, name string) *engine.Module {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	key := kind + "/" + name
	if m, ok := ms.m[key]; ok {
		return m
	}
	var path string
	switch kind {
	case "go":
		path = testmod.Path(ms.t, name)
	case "wat":
		path = testmod.WAT(ms.t, name)
	case "c":
		path = testmod.C(ms.t, name)
	case "rust":
		path = testmod.Rust(ms.t, name)
	case "as":
		path = testmod.AssemblyScript(ms.t, name)
	}
	m, err := ms.e.CompileFile(context.Background(), path)
	require.NoError(ms.t, err)
	ms.m[key] = m
	return m
}

// dcase is one task of the corpus.
type dcase struct {
	name string
	// task is the task to run, made afresh for each executor, and what
	// reads back its streams (nil if it has none).
	task func() (engine.Task, func() string)
	// check asserts the outcome on the reference executor (a Threads pool
	// in this process): that it is the one intended, before every other
	// executor is held to it.
	check func(t *testing.T, o outcome)
	// streams: the task hands a command this process's streams, which only
	// an executor running guests in this process can do.
	streams bool
	// varies is what of the outcome may differ between two runs.
	varies variance
}

func plain(t engine.Task) func() (engine.Task, func() string) {
	return func() (engine.Task, func() string) { return t, nil }
}

func ok(want string) func(*testing.T, outcome) {
	return func(t *testing.T, o outcome) {
		require.NoError(t, o.err)
		assert.Equal(t, want, string(o.res.Output))
	}
}

func fails(targets ...error) func(*testing.T, outcome) {
	return func(t *testing.T, o outcome) {
		require.Error(t, o.err)
		matches(t, o.err, targets...)
	}
}

func traps(kind engine.TrapKind, abort string) func(*testing.T, outcome) {
	return func(t *testing.T, o outcome) {
		var trap *engine.TrapError
		require.ErrorAs(t, o.err, &trap)
		assert.Equal(t, kind, trap.Kind)
		assert.Equal(t, abort, trap.Abort)
	}
}

func corpus(t *testing.T, e *engine.Engine) []dcase {
	ms := &modules{t: t, e: e, m: map[string]*engine.Module{}}
	gomod := func(name string) *engine.Module { return ms.get("go", name) }
	wat := func(name string) *engine.Module { return ms.get("wat", name) }
	hostile := gomod("hostile")
	caps := gomod("caps")
	long := time.Minute // a bound that only matters if what it guards fails

	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "f.txt"), []byte("mounted contents"), 0o644))
	binary := make([]byte, 256)
	for i := range binary {
		binary[i] = byte(i)
	}
	big := bytes.Repeat([]byte("wasmpool "), (2<<20)/9) // past a NATS message: the payload store

	cs := []dcase{
		{name: "sdk upper", task: plain(engine.Task{Module: gomod("upper"), Func: "upper", Input: []byte("hello wasm")}), check: ok("HELLO WASM")},
		{name: "sdk echo of every byte", task: plain(engine.Task{Module: wat("echo"), Func: "echo", Input: binary}), check: ok(string(binary))},
		{name: "sdk input and output past a message", task: plain(engine.Task{Module: gomod("upper"), Func: "upper", Input: big}),
			check: ok(strings.ToUpper(string(big)))},
		{name: "sdk fib", task: plain(engine.Task{Module: gomod("fib"), Func: "fib", Input: []byte("20")}), check: ok("6765")},
		{name: "raw params", task: plain(engine.Task{Module: wat("add"), Func: "add", Params: []uint64{2, 3}}),
			check: func(t *testing.T, o outcome) { require.NoError(t, o.err); assert.Equal(t, []uint64{5}, o.res.Values) }},
		// The same export two ways: nil Params is an SDK call, empty Params
		// a raw call returning the status (JSON's omitempty once made the
		// second the first on the way to a cluster worker).
		{name: "nil params: an SDK call", task: plain(engine.Task{Module: wat("noop"), Func: "noop"}),
			check: func(t *testing.T, o outcome) { require.NoError(t, o.err); assert.Nil(t, o.res.Values) }},
		{name: "empty params: a raw call", task: plain(engine.Task{Module: wat("noop"), Func: "noop", Params: []uint64{}}),
			check: func(t *testing.T, o outcome) { require.NoError(t, o.err); assert.Equal(t, []uint64{0}, o.res.Values) }},
		{name: "raw xorshift", task: plain(engine.Task{Module: wat("xorshift"), Func: "run", Params: []uint64{1000}}),
			check: func(t *testing.T, o outcome) { require.NoError(t, o.err); assert.Len(t, o.res.Values, 1) }},
		{name: "sdk env", task: plain(engine.Task{Module: hostile, Func: "printenv", Env: map[string]string{"K": "V", "EMPTY": ""}}),
			check: ok("EMPTY=\nK=V")},
		{name: "sdk mount read-only", task: plain(engine.Task{Module: hostile, Func: "readfile", Input: []byte("/data/f.txt"),
			Mounts: []engine.Mount{{HostPath: dir, GuestPath: "/data", ReadOnly: true}}}), check: ok("mounted contents")},
		{name: "command hello", task: plain(engine.Task{Module: wat("hello")}),
			check: func(t *testing.T, o outcome) { require.NoError(t, o.err); assert.NotEmpty(t, o.res.Output) }},
		{name: "command args", task: plain(engine.Task{Module: gomod("wasicmd"), Args: []string{"args", "a", "", "c d"}}), check: ok("args\na\n\nc d\n")},
		{name: "command env", task: plain(engine.Task{Module: gomod("wasicmd"), Args: []string{"env"}, Env: map[string]string{"Z": "1", "A": "2"}}),
			check: ok("A=2\nZ=1\n")},
		{name: "command stdin as input", task: plain(engine.Task{Module: gomod("wasicmd"), Args: []string{"upper"}, Input: []byte("from stdin")}),
			check: ok("FROM STDIN")},
		{name: "command stderr", task: plain(engine.Task{Module: gomod("wasicmd"), Args: []string{"stderr", "to stderr"}}),
			check: func(t *testing.T, o outcome) {
				require.NoError(t, o.err)
				assert.Equal(t, "to stderr\n", string(o.res.Stderr))
			}},
		{name: "command ls a mount", task: plain(engine.Task{Module: gomod("wasicmd"), Args: []string{"ls", "/data"},
			Mounts: []engine.Mount{{HostPath: dir, GuestPath: "/data"}}}), check: ok("f.txt\n")},
		{name: "command writes to a read-only mount", task: plain(engine.Task{Module: gomod("wasicmd"), Args: []string{"write", "/data/new", "x"},
			Mounts: []engine.Mount{{HostPath: dir, GuestPath: "/data", ReadOnly: true}}}),
			check: func(t *testing.T, o outcome) {
				var exit *engine.ExitError
				require.ErrorAs(t, o.err, &exit)
				assert.Equal(t, uint32(1), exit.Code)
			}},
		{name: "C wasicat", task: plain(engine.Task{Module: ms.get("c", "wasicat"), Input: []byte("cat in C")}), check: ok("cat in C")},
		{name: "Rust wasicat", task: plain(engine.Task{Module: ms.get("rust", "wasicat"), Input: []byte("cat in Rust")}), check: ok("cat in Rust")},
		{name: "AssemblyScript wasicat", task: plain(engine.Task{Module: ms.get("as", "wasicat"), Input: []byte("cat in AS")}), check: ok("cat in AS")},
		{name: "C kernel fib", task: plain(engine.Task{Module: ms.get("c", "kernels"), Func: "fib", Input: []byte("20")}), check: ok("6765")},
		{name: "table bomb refused", task: plain(engine.Task{Module: wat("tablegrow"), Func: "grow", Params: []uint64{0x7fffffff}}),
			check: func(t *testing.T, o outcome) {
				require.NoError(t, o.err)
				assert.Equal(t, []uint64{0xffffffff}, o.res.Values)
			}},

		// Every error class.
		{name: "no module", task: plain(engine.Task{Func: "run"}), check: fails(engine.ErrBadModule)},
		{name: "no such function", task: plain(engine.Task{Module: gomod("upper"), Func: "nope"}), check: fails(engine.ErrNoFunction)},
		{name: "wrong params", task: plain(engine.Task{Module: wat("add"), Func: "add", Params: []uint64{1}}), check: fails(engine.ErrNoFunction)},
		{name: "not a command", task: plain(engine.Task{Module: gomod("upper")}), check: fails(engine.ErrNoFunction)},
		{name: "a mount that does not exist", task: plain(engine.Task{Module: hostile, Func: "echo",
			Mounts: []engine.Mount{{HostPath: filepath.Join(dir, "missing"), GuestPath: "/m"}}}), check: fails(engine.ErrBadMount, fs.ErrNotExist)},
		{name: "unreachable", task: plain(engine.Task{Module: wat("unreachable"), Func: "run"}), check: traps(engine.TrapUnreachable, "")},
		{name: "out of bounds", task: plain(engine.Task{Module: wat("oob"), Func: "run"}), check: traps(engine.TrapOutOfBounds, "")},
		{name: "divide by zero", task: plain(engine.Task{Module: wat("divzero"), Func: "run"}), check: traps(engine.TrapDivideByZero, "")},
		{name: "integer overflow", task: plain(engine.Task{Module: wat("intoverflow"), Func: "run"}), check: traps(engine.TrapIntegerOverflow, "")},
		{name: "bad conversion", task: plain(engine.Task{Module: wat("badconv"), Func: "run"}), check: traps(engine.TrapInvalidConversion, "")},
		{name: "indirect call mismatch", task: plain(engine.Task{Module: wat("indirect"), Func: "run"}), check: traps(engine.TrapIndirectCall, "")},
		{name: "unbounded recursion", task: plain(engine.Task{Module: wat("recurse"), Func: "run", Timeout: long}),
			check: traps(engine.TrapStackOverflow, "")},
		{name: "a trap in the start section", task: plain(engine.Task{Module: wat("start_trap"), Func: "run"}),
			check: func(t *testing.T, o outcome) { require.ErrorAs(t, o.err, new(*engine.TrapError)) }},
		{name: "go panic", task: plain(engine.Task{Module: hostile, Func: "panic", Timeout: long}), check: traps(engine.TrapUnreachable, "panic: boom")},
		{name: "go deadlock", task: plain(engine.Task{Module: hostile, Func: "deadlock", Timeout: long}),
			check: traps(engine.TrapUnreachable, "fatal error: all goroutines are asleep - deadlock!")},
		{name: "command panic", task: plain(engine.Task{Module: gomod("wasicmd"), Args: []string{"panic"}}),
			check: func(t *testing.T, o outcome) {
				var exit *engine.ExitError
				require.ErrorAs(t, o.err, &exit)
				assert.Equal(t, uint32(2), exit.Code)
			}},
		{name: "memory bomb", task: plain(engine.Task{Module: wat("membomb"), Func: "run", Timeout: long}), check: fails(engine.ErrMemoryLimit)},
		{name: "go memory bomb", task: plain(engine.Task{Module: hostile, Func: "membomb", Timeout: long}), check: fails(engine.ErrMemoryLimit),
			// The Go runtime's dying words say how much was in use and
			// what its background goroutines were doing, which depend on
			// when its collector ran: on the clock.
			varies: variance{stderr: true}},
		{name: "go unbounded recursion", task: plain(engine.Task{Module: hostile, Func: "recurse", Timeout: long}), check: fails(engine.ErrMemoryLimit)},
		{name: "output flood", task: plain(engine.Task{Module: wat("flood"), Func: "flood", Timeout: long}), check: fails(engine.ErrOutputLimit)},
		{name: "go stderr flood", task: plain(engine.Task{Module: hostile, Func: "stderrflood", Timeout: long}), check: fails(engine.ErrOutputLimit)},
		{name: "input past the output limit", task: plain(engine.Task{Module: wat("echo"), Func: "echo",
			Input: bytes.Repeat([]byte("x"), 8<<20), Timeout: long}), check: fails(engine.ErrOutputLimit)},
		{name: "exit 255", task: plain(engine.Task{Module: wat("exit"), Args: make([]string, 255)}),
			check: func(t *testing.T, o outcome) {
				var exit *engine.ExitError
				require.ErrorAs(t, o.err, &exit)
				assert.Equal(t, uint32(255), exit.Code)
				assert.Equal(t, uint32(255), o.res.ExitCode)
			}},
		{name: "a reported failure", task: plain(engine.Task{Module: hostile, Func: "fail"}),
			check: func(t *testing.T, o outcome) {
				var te *engine.TaskError
				require.ErrorAs(t, o.err, &te)
				assert.Equal(t, "hostile failure", te.Message)
			}},
		{name: "ABI misuse", task: plain(engine.Task{Module: wat("abuse"), Func: "write_oob", Input: []byte("input")}),
			check: traps(engine.TrapOutOfBounds, "")},
		{name: "timeout of a loop", task: plain(engine.Task{Module: wat("spin"), Func: "spin", Timeout: 100 * time.Millisecond}),
			check: fails(engine.ErrTimeout, context.DeadlineExceeded)},
		{name: "timeout of a go loop", task: plain(engine.Task{Module: hostile, Func: "spin", Timeout: 100 * time.Millisecond}),
			check: fails(engine.ErrTimeout, context.DeadlineExceeded)},
		{name: "timeout of a go sleep", task: plain(engine.Task{Module: hostile, Func: "sleep", Input: []byte("1h"), Timeout: 100 * time.Millisecond}),
			check: fails(engine.ErrTimeout, context.DeadlineExceeded)},

		{name: "timeout of a recursion without loops", task: plain(engine.Task{Module: wat("fibrec"), Func: "fib", Params: []uint64{60},
			Timeout: 100 * time.Millisecond}),
			check: fails(engine.ErrTimeout, context.DeadlineExceeded)},

		// Fuel: counted the same on every machine and run, so every executor
		// must report the same Fuel used and exhaust it at the same point.
		{name: "fuel enough", task: plain(engine.Task{Module: wat("fibrec"), Func: "fib", Params: []uint64{15}, Fuel: 1 << 30}),
			check: func(t *testing.T, o outcome) {
				require.NoError(t, o.err)
				assert.Equal(t, []uint64{610}, o.res.Values)
				assert.Positive(t, o.res.Fuel, "the instructions the task used")
			}},
		{name: "fuel exhausted", task: plain(engine.Task{Module: wat("fibrec"), Func: "fib", Params: []uint64{30}, Fuel: 100_000}),
			check: func(t *testing.T, o outcome) {
				require.ErrorIs(t, o.err, engine.ErrFuelExhausted)
				assert.False(t, errors.As(o.err, new(*engine.TrapError)), "never a trap of the guest's own")
				assert.Equal(t, uint64(100_000), o.res.Fuel, "all of it")
			}},
		{name: "fuel ends an endless loop", task: plain(engine.Task{Module: wat("spin"), Func: "spin", Fuel: 1_000_000}),
			check: fails(engine.ErrFuelExhausted)},

		// A command's streams, which only an executor in this process can
		// hand over: the others must refuse them, not drop them.
		{name: "command streams", streams: true, task: func() (engine.Task, func() string) {
			var out, errs bytes.Buffer
			return engine.Task{Module: gomod("wasicmd"), Args: []string{"upper"}, Stdin: strings.NewReader("streamed in"),
					Stdout: &out, Stderr: &errs},
				func() string { return out.String() + errs.String() }
		}, check: func(t *testing.T, o outcome) {
			require.NoError(t, o.err)
			assert.Equal(t, "STREAMED IN", o.streamed)
			assert.Empty(t, o.res.Output, "what went to the stream is not in the result")
		}},

		// Capabilities: grants travel by name, and every executor's engine
		// (a worker process's, a cluster worker's) provides "kv" itself.
		{name: "capability granted, with its args", task: plain(capTask(caps, "call", "kv\nget\nkey", []string{"kv"}, []string{"x", "y"})),
			check: ok("value of key [x y]")},
		{name: "capability not granted, handled by the guest", task: plain(capTask(caps, "handled", "kv\nget\nkey", nil, nil)),
			check: ok(`error: capability "kv" is not granted to this task (granted: none) (not granted: true, no func: false)`)},
		{name: "capability error reaches the guest", task: plain(capTask(caps, "handled", "kv\nfail\n", []string{"kv"}, nil)),
			check: ok("error: kv is out of order (not granted: false, no func: false)")},
		{name: "capability not provided", task: plain(capTask(caps, "pure", "", []string{"kv", "nosuch"}, nil)),
			check: fails(engine.ErrNoCapability),
			// A cluster finds no worker to send it to (cluster.ErrNoWorker,
			// which says what each live worker lacks) rather than a worker
			// that refuses it: the same identity, other words.
			varies: variance{text: true}},
		{name: "capability panics", task: plain(capTask(caps, "call", "kv\npanic\n", []string{"kv"}, nil)),
			check: fails(engine.ErrHostPanic)},
	}
	return cs
}

// capTask is a task of the caps module granted grants, with args for "kv".
func capTask(m *engine.Module, fn, input string, grants, args []string) engine.Task {
	t := engine.Task{Module: m, Func: fn, Input: []byte(input), Grants: grants}
	if args != nil {
		t.GrantArgs = map[string][]string{"kv": args}
	}
	return t
}

// kvCapability is what every executor's engine provides.
func kvCapability() engine.Capability {
	return engine.Capability{Name: "kv", Funcs: map[string]engine.HostFunc{
		"get": func(ctx context.Context, in []byte) ([]byte, error) {
			return fmt.Appendf(nil, "value of %s %v", in, engine.GrantArgs(ctx)), nil
		},
		"fail":  func(context.Context, []byte) ([]byte, error) { return nil, errors.New("kv is out of order") },
		"panic": func(context.Context, []byte) ([]byte, error) { panic("kv exploded") },
	}}
}
