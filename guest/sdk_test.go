package guest_test

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wasmpool/wasmpool/capability/httpcap"
	"github.com/wasmpool/wasmpool/engine"
	"github.com/wasmpool/wasmpool/internal/testmod"
)

// greeting is the header the loopback server replies with: what
// encoding/json escapes (a quote, a backslash, <, >, &, U+2028) and UTF-8 of
// two, three and four bytes, which each SDK's decoder of the host's
// response must get right.
const greeting = "hi <\"there\"> & \\ olá ✓ \u2028 😀"

// sdkCase is a task for an SDK's example and what it must do.
type sdkCase struct {
	name    string
	task    engine.Task
	out     string // the output of a task that succeeds
	failure string // else the message it fails with
}

// TestSDKsAgree runs the example of each guest SDK (Go, C, Rust,
// AssemblyScript: modules/go/caps and its ports, modules/*/caps.*) on the
// real engine, with a typed host function and HTTP to a loopback server,
// and expects the same outputs and failures from all four.
func TestSDKsAgree(t *testing.T) {
	big := strings.Repeat("0123456789", 10_000)
	mux := http.NewServeMux()
	mux.HandleFunc("/hello", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, "héllo, wasm") })
	mux.HandleFunc("/big", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, big) })
	mux.HandleFunc("/echo", func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		reply := "no X-Test header"
		if r.Header.Get("X-Test") == "yes" {
			reply = greeting
		}
		w.Header().Set("X-Reply", reply)
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
		kv, withOddEcho(httpcap.New(httpcap.Policy{Methods: []string{http.MethodGet, http.MethodPost}})),
	}})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, e.Close(ctx)) })

	kvOnly := func(fn, in string) engine.Task {
		return engine.Task{Func: fn, Input: []byte(in), Grants: []string{"kv"}}
	}
	web := func(fn, in string, allow ...string) engine.Task {
		return engine.Task{Func: fn, Input: []byte(in), Grants: []string{httpcap.Name}, GrantArgs: map[string][]string{httpcap.Name: allow}}
	}
	cases := []sdkCase{
		{name: "call", task: kvOnly("call", "kv\nget\ncity"), out: "Lisbon"},
		{name: "two calls", task: kvOnly("twice", "kv\nget\ncity"), out: "Lisbon|Lisbon"},
		{name: "handled ok", task: kvOnly("handled", "kv\nget\ncity"), out: "ok: Lisbon"},
		{name: "host error as a value", task: kvOnly("handled", "kv\nget\nplanet"),
			out: `error: no key "planet" (not granted: false, no func: false)`},
		{name: "not granted as a value", task: kvOnly("handled", "db\nget\n"),
			out: `error: capability "db" is not granted to this task (granted: kv) (not granted: true, no func: false)`},
		{name: "no func as a value", task: kvOnly("handled", "kv\nput\nx"),
			out: `error: capability "kv" has no function "put" (not granted: false, no func: true)`},
		{name: "pure, granted nothing", task: engine.Task{Func: "pure", Input: []byte("hello, wasm")}, out: "HELLO, WASM"},
		{name: "http get", task: web("fetch", srv.URL+"/hello", "127.0.0.1"), out: "200 héllo, wasm"},
		{name: "http big body", task: web("fetch", srv.URL+"/big", "127.0.0.1"), out: "200 " + big},
		{name: "http post", task: web("post", srv.URL+"/echo\nping", "127.0.0.1"), out: "201 " + greeting + " POST:ping"},
		{name: "host error fails the call", task: kvOnly("call", "kv\nget\nplanet"), failure: `no key "planet"`},
		{name: "not granted", task: engine.Task{Func: "call", Input: []byte("kv\nget\ncity")},
			failure: `capability "kv" is not granted to this task (granted: none)`},
		{name: "http host off the list", task: web("fetch", srv.URL+"/hello", "example.com"),
			failure: `http: host "127.0.0.1" is not allowed (allowed: example.com)`},
		{name: "http not granted", task: kvOnly("fetch", srv.URL+"/hello"),
			failure: `capability "http" is not granted to this task (granted: kv)`},
	}

	// Odd strings through each SDK's encoder of the request and decoder of
	// the response, against encoding/json on the host (see withOddEcho).
	rnd := rand.New(rand.NewPCG(15, 4))
	for i := range 30 {
		url, body := oddEchoPrefix+oddString(rnd, 40), oddBytes(rnd, 300)
		cases = slices.Insert(cases, 0, sdkCase{name: fmt.Sprintf("odd strings %d: %+q", i, url), task: web("post", url+"\n"+string(body)),
			out: "201 " + url + " POST:yes:" + string(body)})
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
	// The tasks run one after another on a warm instance, as a pool runs
	// them, so each SDK must also leave its heap fit for the next task; a
	// task that fails ends its instance, and the next gets a fresh one.
	rt, err := e.NewRuntime(ctx)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, rt.Close(ctx)) })
	for _, mod := range modules {
		t.Run(mod.lang, func(t *testing.T) {
			m, err := e.CompileFile(ctx, mod.path(t, "caps"))
			require.NoError(t, err)
			var inst *engine.Instance
			defer func() {
				if inst != nil {
					require.NoError(t, inst.Close(ctx))
				}
			}()
			for _, c := range cases {
				task := c.task
				task.Module, task.Timeout = m, 10*time.Second
				if inst == nil || inst.Broken() {
					if inst != nil {
						require.NoError(t, inst.Close(ctx))
					}
					inst, err = rt.Instantiate(ctx, task)
					require.NoError(t, err)
				}
				res, err := inst.Call(ctx, task)
				if c.failure == "" {
					if assert.NoError(t, err, c.name) {
						sameOutput(t, c.name, c.out, string(res.Output))
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

// sameOutput compares outputs, a long one by where it first differs rather
// than by a diff of the whole.
func sameOutput(t *testing.T, name, want, got string) {
	t.Helper()
	if len(want) < 256 {
		assert.Equal(t, want, got, name)
		return
	}
	if want == got {
		return
	}
	i := 0
	for i < len(want) && i < len(got) && want[i] == got[i] {
		i++
	}
	t.Errorf("%s: the output (%d bytes, want %d) differs from byte %d: %.40q", name, len(got), len(want), i, got[i:])
}

// TestREADMESDKSnippetsAreTheExamples: each C, Rust and AssemblyScript block
// of the README is a verbatim part of that SDK's example, which
// TestSDKsAgree runs.
func TestREADMESDKSnippetsAreTheExamples(t *testing.T) {
	root, err := testmod.Root()
	require.NoError(t, err)
	md, err := os.ReadFile(filepath.Join(root, "README.md"))
	require.NoError(t, err)
	for lang, example := range map[string]string{"c": "modules/c/caps.c", "rust": "modules/rust/caps.rs", "ts": "modules/assemblyscript/caps.ts"} {
		src, err := os.ReadFile(filepath.Join(root, example))
		require.NoError(t, err)
		blocks := regexp.MustCompile("(?ms)^```"+lang+"\n(.*?)^```\n").FindAllSubmatch(md, -1)
		assert.NotEmpty(t, blocks, "the README shows no %s block", lang)
		for _, b := range blocks {
			assert.True(t, strings.Contains(string(src), string(b[1])), "this %s block of the README is not part of %s, word for word:\n%s", lang, example, b[1])
		}
	}
}

// oddEchoPrefix starts the URL of a request that withOddEcho answers itself.
const oddEchoPrefix = "odd:"

// withOddEcho fronts the HTTP capability: a request whose URL starts with
// oddEchoPrefix is answered here, as encoding/json reads it, with status
// 201, the URL as the first of two X-Reply values, more headers with odd
// names and values, a field no SDK knows, and the body "METHOD:X-TEST:BODY";
// any other request goes to the real capability.
func withOddEcho(c engine.Capability) engine.Capability {
	real := c.Funcs["request"]
	rnd := rand.New(rand.NewPCG(4, 15))
	c.Funcs = map[string]engine.HostFunc{"request": func(ctx context.Context, in []byte) ([]byte, error) {
		var req httpcap.Request
		body, err := httpcap.Decode(in, &req)
		if err != nil || !strings.HasPrefix(req.URL, oddEchoPrefix) {
			return real(ctx, in)
		}
		header := map[string][]string{"X-Reply": {req.URL, "second"}}
		for range 3 {
			header[oddString(rnd, 10)] = []string{oddString(rnd, 20), oddString(rnd, 5)}
		}
		return httpcap.Encode(map[string]any{
			"status": http.StatusCreated,
			"header": header,
			"extra":  map[string]any{"list": []any{1.5e3, -2, true, nil, "x", map[string]any{}, []any{}}, "s": `"\`},
		}, fmt.Appendf(nil, "%s:%s:%s", req.Method, strings.Join(req.Header["X-Test"], ","), body))
	}}
	return c
}

// oddRunes are what a JSON codec must escape, or carry as UTF-8 of every
// length; no NUL (the C SDK's strings end at one) and no newline (the
// examples' inputs are split at one).
var oddRunes = []rune("aZ9 \"\\/<>&'\t\r\x01\x1f\x7féñ✓\u2028\u2029\ufeff\ufffd😀\U0010ffff")

func oddString(rnd *rand.Rand, max int) string {
	r := make([]rune, rnd.IntN(max+1))
	for i := range r {
		r[i] = oddRunes[rnd.IntN(len(oddRunes))]
	}
	return string(r)
}

func oddBytes(rnd *rand.Rand, max int) []byte {
	b := make([]byte, rnd.IntN(max+1))
	for i := range b {
		b[i] = byte(rnd.Uint32())
	}
	return b
}
