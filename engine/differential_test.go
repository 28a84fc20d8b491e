//go:build !race

package engine_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wasmpool/wasmpool/engine"
)

// The differential tests over every shipped module: each runs every task
// of every fixture one at a time through several engines and compares what
// comes out. There is no concurrency in them for the race detector to
// check, and under it wazero's compiler and interpreter run 15-20x slower:
// make test runs them in its step without -race (see the Makefile), and
// go test -race leaves them out.

func TestInstrumentationChangesNothing(t *testing.T) {
	ctx := context.Background()
	// Deterministic: the clock and random bytes are the same in all three,
	// so any difference is the instrumentation's.
	det := &engine.Determinism{WalltimeUnixNano: 1_700_000_000e9, Seed: 7}
	reference := newEngine(t, engine.Config{NoInterrupt: true, Deterministic: det, HostModules: stubHosts})
	instrumented := newEngine(t, engine.Config{Deterministic: det, HostModules: stubHosts})
	compared := 0
	for _, f := range allFixtures(t) {
		t.Run(f.name, func(t *testing.T) {
			wasm, err := os.ReadFile(f.path)
			require.NoError(t, err)
			base := filepath.Base(f.path)
			ref, refErr := reference.CompileNamed(ctx, base, wasm)
			ins, insErr := instrumented.CompileNamed(ctx, base, wasm)
			require.Equal(t, outcomeOf(engine.Result{}, refErr), outcomeOf(engine.Result{}, insErr), "compiling")
			if refErr != nil || neverEnds[base] {
				return
			}
			assert.Equal(t, ref.Exports(), ins.Exports(), "the exports and their signatures")
			assert.Equal(t, ref.Imports(), ins.Imports(), "the imports")
			for _, task := range tasksOf(ref) {
				if neverEnds[base+" "+task.Func] {
					continue
				}
				name := fmt.Sprintf("%s %v %q %v", task.Func, task.Args, truncate(task.Input), task.Params)
				task.Timeout = 30 * time.Second
				// Nothing stops an endless task on the reference (nor can
				// the world stop while it runs): a fuel budget finds them.
				bounded := task
				bounded.Module, bounded.Fuel = ins, 2_000_000_000
				if _, err := instrumented.Run(ctx, bounded); errors.Is(err, engine.ErrFuelExhausted) {
					continue
				}
				want := outcomeOf(reference.Run(ctx, task))
				task.Module = ins
				assert.Equal(t, want, outcomeOf(instrumented.Run(ctx, task)), "instrumented: %s", name)
				task.Fuel = lots
				got, err := instrumented.Run(ctx, task)
				assert.Equal(t, want, outcomeOf(got, err), "metered: %s", name)
				compared++
			}
		})
	}
	t.Logf("%d tasks compared", compared)
	assert.Greater(t, compared, 100)
}

// TestFuelIsTheSameEverywhere: the same task from the same state uses the
// same fuel on a fresh instance and a warm one, in the shared runtime and an
// isolated one, with wazero's compiler and its interpreter, run after run.
func TestFuelIsTheSameEverywhere(t *testing.T) {
	ctx := context.Background()
	compiler := newEngine(t, engine.Config{})
	interp := newEngine(t, engine.Config{Interpreter: true})
	noInterrupt := newEngine(t, engine.Config{NoInterrupt: true})
	tasks := func(e *engine.Engine) map[string]engine.Task {
		return map[string]engine.Task{
			"wat recursion": {Module: compileWAT(t, e, "fibrec"), Func: "fib", Params: []uint64{12}},
			"go fib":        {Module: compileGo(t, e, "fib"), Func: "fib", Input: []byte("12")},
			"go sha256":     {Module: compileGo(t, e, "sha256"), Func: "sha256", Input: []byte("some bytes to hash")},
			"c mixed":       {Module: compileC(t, e, "kernels"), Func: "mixed", Input: []byte("1")},
		}
	}
	for name := range tasks(compiler) {
		t.Run(name, func(t *testing.T) {
			want := fuelOf(t, compiler, tasks(compiler)[name])
			assert.Equal(t, want, fuelOf(t, compiler, tasks(compiler)[name]), "run after run")
			assert.Equal(t, want, fuelOf(t, interp, tasks(interp)[name]), "in wazero's interpreter")
			assert.Equal(t, want, fuelOf(t, noInterrupt, tasks(noInterrupt)[name]), "metered even with NoInterrupt")

			task := tasks(compiler)[name]
			task.Fuel = lots
			rt, err := compiler.NewRuntime(ctx)
			require.NoError(t, err)
			defer rt.Close(ctx)
			res, err := rt.Run(ctx, task)
			require.NoError(t, err)
			assert.Equal(t, want, res.Fuel, "in an isolated runtime")
			inst, err := rt.Instantiate(ctx, task)
			require.NoError(t, err)
			defer inst.Close(ctx)
			res, err = inst.Call(ctx, task)
			require.NoError(t, err)
			assert.Equal(t, want, res.Fuel, "on a warm instance")
		})
	}
}
