package pool_test

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/wasmpool/wasmpool/engine"
	"github.com/wasmpool/wasmpool/future"
	"github.com/wasmpool/wasmpool/pool"
)

// examplePool sets up an engine, a pool and the WAT echo module that the
// examples share.
func examplePool(mode pool.Mode) (*engine.Engine, *pool.Pool, *engine.Module) {
	ctx := context.Background()
	e, err := engine.New(ctx, engine.Config{})
	if err != nil {
		panic(err)
	}
	p, err := pool.New(e, pool.Config{Mode: mode, Workers: 2})
	if err != nil {
		panic(err)
	}
	m, err := e.CompileFile(ctx, "../testdata/wat/echo.wasm")
	if err != nil {
		panic(err)
	}
	return e, p, m
}

func ExamplePool_Submit() {
	ctx := context.Background()
	e, p, echo := examplePool(pool.Threads)
	defer e.Close(ctx)
	defer p.Close()

	f := p.Submit(ctx, engine.Task{Module: echo, Func: "echo", Input: []byte("hello")})
	res, err := f.Result(ctx)
	fmt.Println(string(res.Output), err, f.State())
	// Output: hello <nil> succeeded
}

func ExamplePool_Map() {
	ctx := context.Background()
	e, p, echo := examplePool(pool.Processes)
	defer e.Close(ctx)
	defer p.Close()

	words := slices.Values([]string{"one", "two", "three"})
	tasks := func(yield func(engine.Task) bool) {
		for w := range words {
			if !yield(engine.Task{Module: echo, Func: "echo", Input: []byte(w)}) {
				return
			}
		}
	}
	for res, err := range p.Map(ctx, tasks) {
		fmt.Println(string(res.Output), err)
	}
	// Output:
	// one <nil>
	// two <nil>
	// three <nil>
}

func Example_asCompleted() {
	ctx := context.Background()
	e, p, echo := examplePool(pool.Threads)
	defer e.Close(ctx)
	defer p.Close()

	var fs []*future.Future[engine.Result]
	for _, w := range []string{"a", "b", "c"} {
		fs = append(fs, p.Submit(ctx, engine.Task{Module: echo, Func: "echo", Input: []byte(w)}))
	}
	var got []string
	for f, err := range future.AsCompleted(ctx, fs...) {
		if err != nil {
			panic(err)
		}
		res, _ := f.Result(ctx)
		got = append(got, string(res.Output))
	}
	slices.Sort(got) // completion order varies; the set does not
	fmt.Println(strings.Join(got, " "))
	// Output: a b c
}

func Example_wait() {
	ctx := context.Background()
	e, p, echo := examplePool(pool.Threads)
	defer e.Close(ctx)
	defer p.Close()

	fs := []*future.Future[engine.Result]{
		p.Submit(ctx, engine.Task{Module: echo, Func: "echo", Input: []byte("x")}),
		p.Submit(ctx, engine.Task{Module: echo, Func: "nope"}),
	}
	done, pending, err := future.Wait(ctx, future.AllCompleted, fs...)
	fmt.Println(len(done), len(pending), err)
	fmt.Println(fs[1].Err(ctx) != nil)
	// Output:
	// 2 0 <nil>
	// true
}
