// Command plugin is the README's plugin host: guests get two capabilities, a
// typed host function ("config"."get") and HTTP to one allowed host, and
// nothing else. Run it from the repository root after `make modules`:
//
//	go run ./examples/plugin
package main

import (
	"context"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"

	"github.com/wasmpool/wasmpool/capability/httpcap"
	"github.com/wasmpool/wasmpool/engine"
	"github.com/wasmpool/wasmpool/pool"
)

func main() {
	// A local weather API, standing in for a real one.
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "sunny in %s", strings.TrimPrefix(r.URL.Path, "/"))
	}))
	defer api.Close()

	// A typed host function: bytes in, bytes out; the host never sees a
	// guest pointer. ctx is the calling task's.
	config := engine.Capability{Name: "config", Funcs: map[string]engine.HostFunc{
		"get": func(ctx context.Context, key []byte) ([]byte, error) {
			if string(key) != "weather_api" {
				return nil, fmt.Errorf("no setting %q", key)
			}
			return []byte(api.URL), nil
		},
	}}

	ctx := context.Background()
	cache, _ := os.UserCacheDir()
	e, err := engine.New(ctx, engine.Config{
		CacheDir:     filepath.Join(cache, "wasmpool", "compiled"),
		Capabilities: []engine.Capability{config, httpcap.New(httpcap.Policy{})},
	})
	if err != nil {
		log.Fatal(err)
	}
	defer e.Close(ctx)
	plugin, err := e.CompileFile(ctx, "build/modules/weather.wasm")
	if err != nil {
		log.Fatal(err)
	}
	// Every task of the pool may read its config and reach the API's host
	// (its address: a name resolving to loopback would be refused).
	p, err := pool.New(e, pool.Config{
		Grants:    []string{"config", httpcap.Name},
		GrantArgs: map[string][]string{httpcap.Name: {"127.0.0.1"}},
	})
	if err != nil {
		log.Fatal(err)
	}
	defer p.Close()

	res, err := p.Submit(ctx, engine.Task{Module: plugin, Func: "weather", Input: []byte("Lisbon")}).Result(ctx)
	fmt.Println(string(res.Output), err) // sunny in Lisbon <nil>

	// A task granted only its config cannot reach the network.
	_, err = p.Submit(ctx, engine.Task{Module: plugin, Func: "weather", Input: []byte("Porto"),
		Grants: []string{"config"}}).Result(ctx)
	fmt.Println(err) // module "weather.wasm": task failed: capability "http" is not granted to this task (granted: config)
}
