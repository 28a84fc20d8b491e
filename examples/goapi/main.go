// Command goapi is the README's Go API example. Run it from the repository
// root after `make modules`:
//
//	go run ./examples/goapi
package main

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"time"

	"github.com/wasmpool/wasmpool/engine"
	"github.com/wasmpool/wasmpool/future"
	"github.com/wasmpool/wasmpool/pool"
)

func main() {
	ctx := context.Background()
	// CacheDir keeps compiled code on disk, shared with the CLI: without it,
	// every run of this program compiles upper.wasm from scratch (a second).
	cache, _ := os.UserCacheDir()
	e, err := engine.New(ctx, engine.Config{
		MemoryLimitBytes: 64 << 20,
		CacheDir:         filepath.Join(cache, "wasmpool", "compiled"),
	})
	if err != nil {
		log.Fatal(err)
	}
	defer e.Close(ctx)
	m, err := e.CompileFile(ctx, "build/modules/upper.wasm")
	if err != nil {
		log.Fatal(err)
	}

	p, err := pool.New(e, pool.Config{Mode: pool.Threads, Workers: 4, TaskTimeout: time.Second})
	if err != nil {
		log.Fatal(err)
	}
	defer p.Close()

	// One task: a future, then its result.
	f := p.Submit(ctx, engine.Task{Module: m, Func: "upper", Input: []byte("hi")})
	res, err := f.Result(ctx)
	fmt.Println(string(res.Output), err) // HI <nil>

	// Many: Map takes an iter.Seq of tasks and yields results in input
	// order, reading the input lazily, a bounded window ahead.
	words := []string{"one", "two", "three"}
	tasks := func(yield func(engine.Task) bool) {
		for _, w := range words {
			if !yield(engine.Task{Module: m, Func: "upper", Input: []byte(w)}) {
				return
			}
		}
	}
	for res, err := range p.Map(ctx, tasks) {
		fmt.Println(string(res.Output), err) // ONE <nil>, then TWO, THREE
	}

	// Futures in completion order, or waited on together.
	var fs []*future.Future[engine.Result]
	for _, w := range words {
		fs = append(fs, p.Submit(ctx, engine.Task{Module: m, Func: "upper", Input: []byte(w)}))
	}
	n := 0
	for f, err := range future.AsCompleted(ctx, fs...) {
		if err == nil && f.State() == future.Succeeded {
			n++
		}
	}
	done, pending, err := future.Wait(ctx, future.FirstError, fs...)
	fmt.Println(n, len(done), len(pending), err) // 3 3 0 <nil>

	// Errors match with errors.Is and errors.As, and name the module.
	_, err = p.Submit(ctx, engine.Task{Module: m, Func: "nosuch"}).Result(ctx)
	fmt.Println(errors.Is(err, engine.ErrNoFunction), err)
}
