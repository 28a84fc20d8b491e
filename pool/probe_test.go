package pool_test

import (
	"context"
	"fmt"
	"os"
	"runtime/debug"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"

	"github.com/wasmpool/wasmpool/engine"
	"github.com/wasmpool/wasmpool/future"
	"github.com/wasmpool/wasmpool/pool"
)

// enteredEnv names a FIFO that test.block writes its process's PID to when
// a guest enters it: how a test knows, without guessing at timing, that a
// worker process is in the middle of a task.
const enteredEnv = "WASMPOOL_TEST_ENTERED_FIFO"

// probeHost is the "test" host module that the childprobe module imports,
// as the worker processes of these tests grant it (TestMain passes it to
// pool.ServeChild). Its functions misbehave at the level of the process.
// The pool's own engine grants it too, only so that childprobe compiles: a
// Subprocess pool never runs guest code in the test process.
func probeHost() engine.HostModule {
	return engine.HostModule{Name: "test", Define: func(b wazero.HostModuleBuilder) {
		def := func(name string, f func(ctx context.Context)) {
			b.NewFunctionBuilder().WithGoModuleFunction(api.GoModuleFunc(func(ctx context.Context, _ api.Module, _ []uint64) {
				f(ctx)
			}), nil, nil).Export(name)
		}
		def("block", func(ctx context.Context) {
			announceEntered()
			<-ctx.Done()
		})
		def("garbage", func(ctx context.Context) {
			_ = pool.ChildProtocolWrite([]byte("this is not a frame\n"))
			<-ctx.Done()
		})
		def("badframe", func(ctx context.Context) {
			// Well framed (5 bytes: a result frame), but no result decodes
			// from "oops".
			_ = pool.ChildProtocolWrite([]byte("\x00\x00\x00\x05\x67oops"))
			<-ctx.Done()
		})
		def("exit", func(context.Context) {
			fmt.Fprintln(os.Stderr, "probe: exiting with status 3 on purpose")
			os.Exit(3)
		})
		def("fatal", func(context.Context) {
			// A goroutine stack past its limit is one of the Go runtime's
			// fatal errors: no recover, the process dies.
			debug.SetMaxStack(1 << 20)
			recurseForever(0)
		})
	}}
}

func announceEntered() {
	path := os.Getenv(enteredEnv)
	if path == "" {
		return
	}
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		fmt.Fprintf(os.Stderr, "probe: %v\n", err)
		return
	}
	fmt.Fprintf(f, "%d\n", os.Getpid())
	_ = f.Close()
}

//go:noinline
func recurseForever(n int) int {
	var pad [256]byte
	pad[n%256] = byte(n)
	return recurseForever(n+1) + int(pad[(n*7)%256])
}

// parentArg starts this test binary as parentMain.
const parentArg = "--test-pool-parent"

// parentMain is a program with a Subprocess pool of two worker processes,
// one spinning in a Go guest, that prints their PIDs and waits to be killed:
// the test that kills it checks that its worker processes die with it.
func parentMain(args []string) int {
	ctx := context.Background()
	e, err := engine.New(ctx, engine.Config{CacheDir: args[0]})
	if err != nil {
		fmt.Println(err)
		return 1
	}
	p, err := pool.New(e, pool.Config{Isolation: pool.Subprocess, Workers: 2})
	if err != nil {
		fmt.Println(err)
		return 1
	}
	m, err := e.CompileFile(ctx, args[1])
	if err != nil {
		fmt.Println(err)
		return 1
	}
	f := p.Submit(ctx, engine.Task{Module: m, Func: "spin"})
	for f.State() != future.Running {
		time.Sleep(time.Millisecond)
	}
	fmt.Println(p.WorkerPIDs())
	select {}
}
