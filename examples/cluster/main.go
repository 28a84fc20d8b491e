// Command cluster is the README's cluster example: a broker, a worker and a
// submitter. On real hosts they are three programs (wasmpool serve-nats, a
// wasmpool worker on each worker host, and yours); here all three run in
// this one, over a port on 127.0.0.1. Run it from the repository root after
// `make modules`:
//
//	go run ./examples/cluster
package main

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/wasmpool/wasmpool/cluster"
	"github.com/wasmpool/wasmpool/cluster/embedded"
	"github.com/wasmpool/wasmpool/engine"
	"github.com/wasmpool/wasmpool/pool"
)

func main() {
	ctx := context.Background()
	cache, _ := os.UserCacheDir()
	e, err := engine.New(ctx, engine.Config{CacheDir: filepath.Join(cache, "wasmpool", "compiled")})
	if err != nil {
		log.Fatal(err)
	}
	defer e.Close(ctx)
	m, err := e.CompileFile(ctx, "build/modules/upper.wasm")
	if err != nil {
		log.Fatal(err)
	}

	// The broker (wasmpool serve-nats, or any NATS server with JetStream).
	broker, err := embedded.StartServer(embedded.ServerConfig{Listen: "127.0.0.1:-1"})
	if err != nil {
		log.Fatal(err)
	}
	defer broker.Shutdown()
	url := broker.ClientURL() // nats://127.0.0.1:PORT

	// A worker (wasmpool worker --nats URL --label zone=eu-west-1): runs
	// what is submitted, and advertises what it has.
	wnc, err := cluster.Connect(url, "worker-1")
	if err != nil {
		log.Fatal(err)
	}
	defer wnc.Close()
	w, err := cluster.NewWorker(ctx, wnc, e, cluster.WorkerConfig{
		Name: "worker-1", Pool: pool.Config{Mode: pool.Processes, Workers: 2},
		Labels: map[string]string{"zone": "eu-west-1"}})
	if err != nil {
		log.Fatal(err)
	}
	defer w.Close()

	// A submitter: the pool's API, over NATS.
	nc, err := cluster.Connect(url, "my-app")
	if err != nil {
		log.Fatal(err)
	}
	defer nc.Close()
	x, err := cluster.New(ctx, nc, cluster.Config{})
	if err != nil {
		log.Fatal(err)
	}
	defer x.Close()
	res, err := x.Submit(ctx, engine.Task{Module: m, Func: "upper", Input: []byte("over nats")}).Result(ctx)
	fmt.Println(string(res.Output), res.Worker, err) // OVER NATS worker-1 <nil>

	// What the broker knows (wasmpool cluster status --nats URL): the
	// workers' records, the queue, the rates.
	st, err := cluster.Status(ctx, nc, cluster.Settings{})
	if err != nil {
		log.Fatal(err)
	}
	for _, wi := range st.Workers {
		fmt.Println(wi.Name, wi.Slots, wi.Labels, st.Queued) // worker-1 2 map[zone:eu-west-1] 0
	}

	// Or all of it in this process, with no port: a Node, swappable with a
	// *pool.Pool (both are a pool.Executor).
	node, err := embedded.Start(ctx, e, embedded.Config{})
	if err != nil {
		log.Fatal(err)
	}
	defer node.Close()
	var ex pool.Executor = node
	res, err = ex.Submit(ctx, engine.Task{Module: m, Func: "upper", Input: []byte("in process")}).Result(ctx)
	fmt.Println(string(res.Output), err) // IN PROCESS <nil>
}
