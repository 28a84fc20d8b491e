package embedded_test

import (
	"context"
	"fmt"
	"os"

	"github.com/wasmpool/wasmpool/cluster"
	"github.com/wasmpool/wasmpool/cluster/embedded"
	"github.com/wasmpool/wasmpool/engine"
	"github.com/wasmpool/wasmpool/pool"
)

// A single-machine node: the same Submit and Map as a pool, through a NATS
// server in this process, with no port open.
func Example() {
	ctx := context.Background()
	e, _ := engine.New(ctx, engine.Config{})
	defer e.Close(ctx)
	wasm, _ := os.ReadFile("../../testdata/wat/add.wasm")
	add, _ := e.Compile(ctx, wasm)

	node, err := embedded.Start(ctx, e, embedded.Config{
		Worker: cluster.WorkerConfig{Pool: pool.Config{Mode: pool.Threads, Workers: 2}},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer node.Close()

	var x pool.Executor = node // or a *pool.Pool: the code below is the same
	res, err := x.Submit(ctx, engine.Task{Module: add, Func: "add", Params: []uint64{40, 2}}).Result(ctx)
	fmt.Println(res.Values, err)
	_ = x.Shutdown(ctx)
	// Output: [42] <nil>
}
