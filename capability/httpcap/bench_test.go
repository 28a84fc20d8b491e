package httpcap_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/wasmpool/wasmpool/capability/httpcap"
	"github.com/wasmpool/wasmpool/engine"
	"github.com/wasmpool/wasmpool/internal/testmod"
	"github.com/wasmpool/wasmpool/pool"
)

// The seeds' flagship, I/O-bound tasks: fetch 200 URLs from a local server
// whose every response takes 20ms, with 50 thread-like workers. The same
// work by a plain goroutine pool with net/http is the bar (issue 15: within
// 1.3x of its wall time). One iteration is the whole 200 URLs.
const (
	fetchURLs    = 200
	fetchWorkers = 50
	fetchDelay   = 20 * time.Millisecond
)

func slowServer(b *testing.B) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(fetchDelay) // the latency of a remote API, not synchronisation
		fmt.Fprintf(w, "page %s", r.URL.Path)
	}))
	b.Cleanup(srv.Close)
	return srv
}

func urls(srv *httptest.Server) []string {
	u := make([]string, fetchURLs)
	for i := range u {
		u[i] = fmt.Sprintf("%s/%d", srv.URL, i)
	}
	return u
}

func BenchmarkFetch200(b *testing.B) {
	b.Run("goroutines-net-http", func(b *testing.B) {
		srv := slowServer(b)
		list := urls(srv)
		client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: fetchWorkers}}
		for b.Loop() {
			work := make(chan string)
			var wg sync.WaitGroup
			for range fetchWorkers {
				wg.Go(func() {
					for u := range work {
						resp, err := client.Get(u)
						if err != nil {
							b.Error(err)
							continue
						}
						_, _ = io.ReadAll(resp.Body)
						resp.Body.Close()
					}
				})
			}
			for _, u := range list {
				work <- u
			}
			close(work)
			wg.Wait()
		}
	})
	for _, mode := range []pool.Mode{pool.Threads, pool.Processes} {
		b.Run("wasmpool-"+mode.String(), func(b *testing.B) { benchPool(b, mode) })
	}
}

// benchPool is the same 200 fetches as wasmpool tasks: the caps module's
// "fetch" export calls guest.HTTP.Get, on a pool of 50 workers in mode.
func benchPool(b *testing.B, mode pool.Mode) {
	srv := slowServer(b)
	list := urls(srv)
	ctx := context.Background()
	e, err := engine.New(ctx, engine.Config{CacheDir: testmod.CompileCache(), Capabilities: []engine.Capability{httpcap.New(httpcap.Policy{})}})
	if err != nil {
		b.Fatal(err)
	}
	defer e.Close(ctx)
	m, err := e.CompileFile(ctx, testmod.Path(b, "caps"))
	if err != nil {
		b.Fatal(err)
	}
	p, err := pool.New(e, pool.Config{Mode: mode, Workers: fetchWorkers, Grants: []string{httpcap.Name},
		GrantArgs: map[string][]string{httpcap.Name: {"127.0.0.1"}}})
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	run := func() {
		tasks := func(yield func(engine.Task) bool) {
			for _, u := range list {
				if !yield(engine.Task{Module: m, Func: "fetch", Input: []byte(u)}) {
					return
				}
			}
		}
		for _, err := range p.Map(ctx, tasks) {
			if err != nil {
				b.Fatal(err)
			}
		}
	}
	run() // the workers' warm instances (Threads), as a long-lived pool has them
	for b.Loop() {
		run()
	}
}
