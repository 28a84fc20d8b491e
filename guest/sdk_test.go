package guest_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wasmpool/wasmpool/capability/httpcap"
	"github.com/wasmpool/wasmpool/engine"
	"github.com/wasmpool/wasmpool/internal/testmod"
)

// greeting is sent as a response header: JSON escapes (a quote, <, >, &, a
// backslash) and UTF-8 that each SDK's decoder of the host's response must
// get right.
const greeting = `hi <"there"> & \ olá ✓`

// TestSDKsAgree runs the shared example of each guest SDK (Go, C, Rust,
// AssemblyScript: modules/*/sdkexample) on the real engine, with a typed
// host function and HTTP to a loopback server, and expects the same outputs
// and failures from all four.
func TestSDKsAgree(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("/hello", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("X-Greeting", greeting)
		fmt.Fprint(w, "héllo, wasm")
	})
	mux.HandleFunc("/big", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, strings.Repeat("0123456789", 10_000)) })
	mux.HandleFunc("/echo", func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("X-Reply", r.Header.Get("X-Test"))
		w.WriteHeader(http.StatusCreated)
		fmt.Fprintf(w, "%s:%s", r.Method, body)
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)

	store := map[string]string{"city": "Lisbon"}
	kv := engine.Capability{Name: "kv", Funcs: map[string]engine.HostFunc{
		"get": func(_ context.Context, key []byte) ([]byte, error) {
			v, ok := store[string(key)]
			if !ok {
				return nil, fmt.Errorf("no key %q", key)
			}
			return []byte(v), nil
		},
	}}
	ctx := context.Background()
	e, err := engine.New(ctx, engine.Config{CacheDir: testmod.CompileCache(), Capabilities: []engine.Capability{
		kv, httpcap.New(httpcap.Policy{Methods: []string{http.MethodGet, http.MethodPost}}),
	}})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, e.Close(ctx)) })

	kvOnly := func(fn, in string) engine.Task {
		return engine.Task{Func: fn, Input: []byte(in), Grants: []string{"kv"}}
	}
	web := func(fn, in string, allow ...string) engine.Task {
		return engine.Task{Func: fn, Input: []byte(in), Grants: []string{httpcap.Name}, GrantArgs: map[string][]string{httpcap.Name: allow}}
	}
	cases := []struct {
		name    string
		task    engine.Task
		out     string // the output of a task that succeeds
		failure string // else the message it fails with
	}{
		{name: "call", task: kvOnly("lookup", "city"), out: "city=Lisbon"},
		{name: "host error as a value", task: kvOnly("lookup", "planet"), out: `planet: no value (no key "planet")`},
		{name: "not granted", task: engine.Task{Func: "lookup", Input: []byte("city")},
			failure: `capability "kv" is not granted to this task (granted: none)`},
		{name: "probe ok", task: kvOnly("probe", "kv\nget\ncity"), out: "ok: Lisbon"},
		{name: "probe error", task: kvOnly("probe", "kv\nget\nplanet"), out: `error: no key "planet"`},
		{name: "probe not granted", task: kvOnly("probe", "db\nget\n"),
			out: `not granted: capability "db" is not granted to this task (granted: kv)`},
		{name: "probe no func", task: kvOnly("probe", "kv\nput\nx"), out: `no func: capability "kv" has no function "put"`},
		{name: "http get", task: web("fetch", srv.URL+"/hello", "127.0.0.1"), out: "200 " + greeting + " héllo, wasm"},
		{name: "http big body", task: web("fetch", srv.URL+"/big", "127.0.0.1"), out: "200 - " + strings.Repeat("0123456789", 10_000)},
		{name: "http post", task: web("post", srv.URL+"/echo\nping", "127.0.0.1"), out: "201 yes POST:ping"},
		{name: "http host off the list", task: web("fetch", srv.URL+"/hello", "example.com"),
			failure: `http: host "127.0.0.1" is not allowed (allowed: example.com)`},
		{name: "http not granted", task: kvOnly("fetch", srv.URL+"/hello"),
			failure: `capability "http" is not granted to this task (granted: kv)`},
	}

	modules := []struct {
		lang string
		path func(testing.TB, string) string
	}{
		{"go", testmod.Path},
		{"c", testmod.C},
		{"rust", testmod.Rust},
		{"assemblyscript", testmod.AssemblyScript},
	}
	for _, mod := range modules {
		t.Run(mod.lang, func(t *testing.T) {
			m, err := e.CompileFile(ctx, mod.path(t, "sdkexample"))
			require.NoError(t, err)
			for _, c := range cases {
				task := c.task
				task.Module, task.Timeout = m, 10*time.Second
				res, err := e.Run(ctx, task)
				if c.failure == "" {
					if assert.NoError(t, err, c.name) {
						assert.Equal(t, c.out, string(res.Output), c.name)
					}
					continue
				}
				var te *engine.TaskError
				if assert.ErrorAs(t, err, &te, c.name) {
					assert.Equal(t, c.failure, te.Message, c.name)
				}
			}
		})
	}
}
