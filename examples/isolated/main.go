// Command isolated is the README's subprocess-isolation example: each worker
// of the pool runs in a worker process, which is this program itself. Run it
// from the repository root after `make modules`:
//
//	go run ./examples/isolated
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
	"github.com/wasmpool/wasmpool/pool"
)

func main() {
	pool.ServeChild() // first line: when a pool starts this program as a worker process, serve and exit

	ctx := context.Background()
	cache, _ := os.UserCacheDir()
	e, err := engine.New(ctx, engine.Config{CacheDir: filepath.Join(cache, "wasmpool", "compiled")})
	if err != nil {
		log.Fatal(err)
	}
	defer e.Close(ctx)
	hostile, err := e.CompileFile(ctx, "build/modules/hostile.wasm")
	if err != nil {
		log.Fatal(err)
	}
	p, err := pool.New(e, pool.Config{Isolation: pool.Subprocess, Workers: 2})
	if err != nil {
		log.Fatal(err)
	}
	defer p.Close()

	// A guest stuck in a loop: its worker process stops it, or is killed.
	_, err = p.Submit(ctx, engine.Task{Module: hostile, Func: "spin", Timeout: 100 * time.Millisecond}).Result(ctx)
	fmt.Println(errors.Is(err, engine.ErrTimeout)) // true

	// The pool goes on, with a fresh worker process if one was killed.
	res, err := p.Submit(ctx, engine.Task{Module: hostile, Func: "echo", Input: []byte("still here")}).Result(ctx)
	fmt.Println(string(res.Output), err) // still here <nil>
}
