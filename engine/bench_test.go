package engine_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/wasmpool/wasmpool/engine"
	"github.com/wasmpool/wasmpool/internal/testmod"
)

// Each hot path of the engine, for benchstat:
//
//	go test -run '^$' -bench . -benchmem ./engine/

// BenchmarkCompile measures compiling a Go guest (2-3 MB) in a new engine:
// from nothing, and from a warm on-disk cache (what a CLI start pays).
func BenchmarkCompile(b *testing.B) {
	wasm := testmod.Bytes(b, "upper")
	ctx := context.Background()
	compile := func(b *testing.B, cfg engine.Config) {
		for b.Loop() {
			e, err := engine.New(ctx, cfg)
			require.NoError(b, err)
			_, err = e.Compile(ctx, wasm)
			require.NoError(b, err)
			require.NoError(b, e.Close(ctx))
		}
	}
	b.Run("cold", func(b *testing.B) { compile(b, engine.Config{}) })
	b.Run("disk-cache", func(b *testing.B) {
		cfg := engine.Config{CacheDir: b.TempDir()}
		e, err := engine.New(ctx, cfg)
		require.NoError(b, err)
		_, err = e.Compile(ctx, wasm)
		require.NoError(b, err)
		require.NoError(b, e.Close(ctx))
		b.ResetTimer()
		compile(b, cfg)
	})
}

// BenchmarkRunFresh is one task in a new instance, closed afterwards: the
// unit of work of the Processes mode.
func BenchmarkRunFresh(b *testing.B) {
	ctx := context.Background()
	e := newEngine(b, engine.Config{})
	for _, bc := range []struct {
		name string
		m    *engine.Module
		fn   string
	}{
		{"wat-noop", compileWAT(b, e, "noop"), "noop"},
		{"go-upper", compileGo(b, e, "upper"), "upper"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			task := engine.Task{Module: bc.m, Func: bc.fn, Input: []byte("x")}
			for b.Loop() {
				if _, err := e.Run(ctx, task); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkWarmCall is one task on a reused instance: the unit of work of
// the Threads mode.
func BenchmarkWarmCall(b *testing.B) { benchmarkWarmCall(b, 0) }

// BenchmarkWarmCallTimeout is BenchmarkWarmCall with a timeout on every
// task: what enforcing it adds to a warm call.
func BenchmarkWarmCallTimeout(b *testing.B) { benchmarkWarmCall(b, 10*time.Second) }

func benchmarkWarmCall(b *testing.B, timeout time.Duration) {
	ctx := context.Background()
	e := newEngine(b, engine.Config{})
	rt, err := e.NewRuntime(ctx)
	require.NoError(b, err)
	defer rt.Close(ctx)
	for _, bc := range []struct {
		name string
		m    *engine.Module
		fn   string
	}{
		{"wat-noop", compileWAT(b, e, "noop"), "noop"},
		{"go-upper", compileGo(b, e, "upper"), "upper"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			task := engine.Task{Module: bc.m, Func: bc.fn, Input: []byte("x"), Timeout: timeout}
			inst, err := rt.Instantiate(ctx, task)
			require.NoError(b, err)
			defer inst.Close(ctx)
			for b.Loop() {
				if _, err := inst.Call(ctx, task); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkInstantiate is a fresh instance built and closed on an isolated
// runtime, as a process-like worker does, without a call: a tiny module,
// and a Go reactor (whose _initialize runs the Go runtime's start-up).
func BenchmarkInstantiate(b *testing.B) {
	ctx := context.Background()
	e := newEngine(b, engine.Config{})
	for _, bc := range []struct {
		name string
		m    *engine.Module
		fn   string
	}{
		{"wat-noop", compileWAT(b, e, "noop"), "noop"},
		{"go-fib", compileGo(b, e, "fib"), "fib"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			rt, err := e.NewRuntime(ctx)
			require.NoError(b, err)
			defer rt.Close(ctx)
			task := engine.Task{Module: bc.m, Func: bc.fn}
			for b.Loop() {
				inst, err := rt.Instantiate(ctx, task)
				if err != nil {
					b.Fatal(err)
				}
				_ = inst.Close(ctx)
			}
		})
	}
}
