// Command clusterjob is the README's named-job example: a job whose
// submitter goes away part-way, and a second submitter that attaches to it
// by name, collects what finished without running it again, and runs only
// the rest. Run it from the repository root after `make modules`:
//
//	go run ./examples/clusterjob
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
	"github.com/wasmpool/wasmpool/future"
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
	// A broker and a worker in this process, as in examples/cluster.
	node, err := embedded.Start(ctx, e, embedded.Config{})
	if err != nil {
		log.Fatal(err)
	}
	defer node.Close()
	nc, err := node.Server.Connect("my-app")
	if err != nil {
		log.Fatal(err)
	}
	defer nc.Close()
	words := []string{"alpha", "beta", "gamma", "delta"}
	task := func(w string) engine.Task { return engine.Task{Module: m, Func: "upper", Input: []byte(w)} }

	// The first submitter of job "nightly" sends the first two words, and
	// goes away: its tasks and their results stay with the job.
	first, err := cluster.New(ctx, nc, cluster.Config{Job: "nightly"})
	if err != nil {
		log.Fatal(err)
	}
	for _, w := range words[:2] {
		_ = first.SubmitWith(ctx, task(w), cluster.TaskOptions{Key: w}).Err(ctx)
	}
	first.Close()

	// The next one attaches by name and submits every word: the two the
	// job has come from its kept results, the others run.
	x, err := cluster.New(ctx, nc, cluster.Config{Job: "nightly"})
	if err != nil {
		log.Fatal(err)
	}
	defer x.Close()
	var fs []*future.Future[engine.Result]
	for _, w := range words {
		fs = append(fs, x.SubmitWith(ctx, task(w), cluster.TaskOptions{Key: w}))
	}
	for _, f := range fs {
		res, err := f.Result(ctx)
		fmt.Println(string(res.Output), err) // ALPHA <nil>, BETA <nil>, ...
	}
	fmt.Println("resumed:", x.Stats().Resumed) // resumed: 2

	// What `wasmpool job nightly --nats URL` shows.
	info, _, err := cluster.Job(ctx, nc, cluster.Settings{}, "nightly")
	fmt.Println(info.Done, info.Left, info.Running, err) // 4 0 0 <nil>
}
