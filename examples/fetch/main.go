// Command fetch is the README's I/O-bound example, the job Python's
// ThreadPoolExecutor is for: 200 URLs fetched by 50 thread-like workers,
// each URL a sandboxed task whose guest calls guest.HTTP.Get, granted HTTP
// to one host and nothing else. Run it from the repository root after
// `make modules`:
//
//	go run ./examples/fetch
package main

import (
	"context"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"time"

	"github.com/wasmpool/wasmpool/capability/httpcap"
	"github.com/wasmpool/wasmpool/engine"
	"github.com/wasmpool/wasmpool/pool"
)

func main() {
	// A local API whose every answer takes 20 ms, standing in for a remote one.
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(20 * time.Millisecond)
		fmt.Fprintf(w, "page %s", r.URL.Path)
	}))
	defer api.Close()

	ctx := context.Background()
	cache, _ := os.UserCacheDir()
	e, err := engine.New(ctx, engine.Config{
		CacheDir:     filepath.Join(cache, "wasmpool", "compiled"),
		Capabilities: []engine.Capability{httpcap.New(httpcap.Policy{})},
	})
	if err != nil {
		log.Fatal(err)
	}
	defer e.Close(ctx)
	// Its "fetch" task: guest.HTTP.Get(url), output "STATUS BODY".
	fetcher, err := e.CompileFile(ctx, "build/modules/caps.wasm")
	if err != nil {
		log.Fatal(err)
	}
	// 50 workers, each task granted HTTP to the API's address only (each
	// request bounded by the capability's timeout, 30s by default).
	p, err := pool.New(e, pool.Config{Mode: pool.Threads, Workers: 50,
		Grants:    []string{httpcap.Name},
		GrantArgs: map[string][]string{httpcap.Name: {"127.0.0.1"}},
	})
	if err != nil {
		log.Fatal(err)
	}
	defer p.Close()

	urls := func(yield func(engine.Task) bool) {
		for i := range 200 {
			url := fmt.Sprintf("%s/%d", api.URL, i)
			if !yield(engine.Task{Module: fetcher, Func: "fetch", Input: []byte(url)}) {
				return
			}
		}
	}
	start, pages := time.Now(), 0
	for res, err := range p.Map(ctx, urls) { // results in order, 50 fetches at a time
		if err != nil {
			log.Fatal(err)
		}
		if pages == 0 {
			fmt.Println(string(res.Output)) // 200 page /0
		}
		pages++
	}
	fmt.Println(pages, "pages") // 200 pages
	// 80 ms of waiting (200 x 20 ms / 50), plus each worker's first instance.
	fmt.Fprintln(os.Stderr, "in", time.Since(start).Round(time.Millisecond))
}
