package httpcap_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/wasmpool/wasmpool/capability/httpcap"
	"github.com/wasmpool/wasmpool/engine"
	"github.com/wasmpool/wasmpool/internal/testmod"
)

// A plugin host: the embedder provides two capabilities, a typed host
// function over bytes ("kv"."get") and HTTP, and each task gets only what
// it grants: here, the key-value store and HTTP to one host.
func Example_pluginHost() {
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "weather in %s: sunny", strings.TrimPrefix(r.URL.Path, "/"))
	}))
	defer api.Close()

	store := map[string]string{"city": "Lisbon"}
	kv := engine.Capability{Name: "kv", Funcs: map[string]engine.HostFunc{
		"get": func(ctx context.Context, key []byte) ([]byte, error) {
			v, ok := store[string(key)]
			if !ok {
				return nil, fmt.Errorf("no key %q", key)
			}
			return []byte(v), nil
		},
	}}

	ctx := context.Background()
	e, err := engine.New(ctx, engine.Config{
		Capabilities: []engine.Capability{kv, httpcap.New(httpcap.Policy{})},
		CacheDir:     testmod.CompileCache(), // the compiled code tests share: seconds under -race
	})
	if err != nil {
		panic(err)
	}
	defer e.Close(ctx)
	path, err := testmod.Build("caps") // modules/go/caps: guest.Call and guest.HTTP
	if err != nil {
		panic(err)
	}
	plugin, err := e.CompileFile(ctx, path)
	if err != nil {
		panic(err)
	}

	// A typed host function: the guest calls guest.Call("kv", "get", key).
	res, err := e.Run(ctx, engine.Task{Module: plugin, Func: "call", Input: []byte("kv\nget\ncity"),
		Grants: []string{"kv"}, Timeout: time.Second})
	if err != nil {
		panic(err)
	}
	city := string(res.Output)
	fmt.Println("kv:", city)

	// HTTP to one allowed host (the test server's address: a name that
	// resolved to a loopback address would be refused).
	grantHTTP := func(t engine.Task) engine.Task {
		t.Grants = []string{httpcap.Name}
		t.GrantArgs = map[string][]string{httpcap.Name: {"127.0.0.1"}}
		return t
	}
	res, err = e.Run(ctx, grantHTTP(engine.Task{Module: plugin, Func: "fetch", Input: []byte(api.URL + "/" + city)}))
	if err != nil {
		panic(err)
	}
	fmt.Println("http:", string(res.Output))

	// Anywhere else is refused, and the guest is told why.
	_, err = e.Run(ctx, grantHTTP(engine.Task{Module: plugin, Func: "fetch", Input: []byte("http://example.com/")}))
	var te *engine.TaskError
	fmt.Println("refused:", errors.As(err, &te), te.Message)

	// Output:
	// kv: Lisbon
	// http: 200 weather in Lisbon: sunny
	// refused: true http: host "example.com" is not allowed (allowed: 127.0.0.1)
}
