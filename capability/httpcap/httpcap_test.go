package httpcap_test

import (
	"context"
	"fmt"
	"net"
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

// server is a loopback server: /hello, /big (4 KiB), /redirect (to the same
// server under the name localhost), /self (to /hello, same host), /slow
// (answers when the request is given up), /echo (a POST's body and
// X-Test header).
func server(t *testing.T) *httptest.Server {
	mux := http.NewServeMux()
	mux.HandleFunc("/hello", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, "hello") })
	mux.HandleFunc("/big", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, strings.Repeat("x", 4096)) })
	mux.HandleFunc("/bigchunked", func(w http.ResponseWriter, _ *http.Request) {
		for range 4 {
			fmt.Fprint(w, strings.Repeat("x", 1024))
			w.(http.Flusher).Flush()
		}
	})
	mux.HandleFunc("/redirect", func(w http.ResponseWriter, r *http.Request) {
		_, port, _ := net.SplitHostPort(r.Host)
		http.Redirect(w, r, "http://localhost:"+port+"/hello", http.StatusFound)
	})
	mux.HandleFunc("/self", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/hello", http.StatusFound) })
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() })
	mux.HandleFunc("/echo", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Reply", r.Header.Get("X-Test"))
		w.WriteHeader(http.StatusCreated)
		_, _ = w.Write([]byte(r.Method + ":"))
		buf := make([]byte, 64)
		n, _ := r.Body.Read(buf)
		_, _ = w.Write(buf[:n])
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

func setup(t *testing.T, p httpcap.Policy) (*engine.Engine, *engine.Module) {
	e, err := engine.New(context.Background(), engine.Config{CacheDir: testmod.CompileCache(), Capabilities: []engine.Capability{httpcap.New(p)}})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, e.Close(context.Background())) })
	m, err := e.CompileFile(context.Background(), testmod.Path(t, "caps"))
	require.NoError(t, err)
	return e, m
}

func fetch(m *engine.Module, url string, allow ...string) engine.Task {
	return engine.Task{Module: m, Func: "fetch", Input: []byte(url),
		Grants: []string{httpcap.Name}, GrantArgs: map[string][]string{httpcap.Name: allow}}
}

// failure is the message the guest failed its task with.
func failure(t *testing.T, err error) string {
	t.Helper()
	var te *engine.TaskError
	require.ErrorAs(t, err, &te)
	return te.Message
}

func TestAllowedHost(t *testing.T) {
	srv := server(t)
	e, m := setup(t, httpcap.Policy{})
	res, err := e.Run(context.Background(), fetch(m, srv.URL+"/hello", "127.0.0.1"))
	require.NoError(t, err)
	assert.Equal(t, "200 hello", string(res.Output))

	res, err = e.Run(context.Background(), fetch(m, srv.URL+"/self", "127.0.0.1"))
	require.NoError(t, err)
	assert.Equal(t, "200 hello", string(res.Output), "a redirect within the list is followed")
}

func TestHostNotAllowed(t *testing.T) {
	srv := server(t)
	e, m := setup(t, httpcap.Policy{})
	_, err := e.Run(context.Background(), fetch(m, srv.URL+"/hello", "example.com", "*.example.org"))
	assert.Equal(t, `http: host "127.0.0.1" is not allowed (allowed: example.com, *.example.org)`, failure(t, err))

	_, err = e.Run(context.Background(), fetch(m, srv.URL+"/hello"))
	assert.Equal(t, `http: host "127.0.0.1" is not allowed (allowed: none)`, failure(t, err), "no pattern allows nothing")

	// The embedder's list bounds the task's: a task cannot widen it.
	e, m = setup(t, httpcap.Policy{AllowHosts: []string{"example.com"}})
	_, err = e.Run(context.Background(), fetch(m, srv.URL+"/hello", "127.0.0.1"))
	assert.Contains(t, failure(t, err), `host "127.0.0.1" is not allowed`)

	// Not granted at all: the guest is told so, naming the capability.
	_, err = e.Run(context.Background(), engine.Task{Module: m, Func: "fetch", Input: []byte(srv.URL)})
	assert.Equal(t, `capability "http" is not granted to this task (granted: none)`, failure(t, err))
}

func TestRedirectOffTheListRefused(t *testing.T) {
	srv := server(t)
	e, m := setup(t, httpcap.Policy{})
	_, err := e.Run(context.Background(), fetch(m, srv.URL+"/redirect", "127.0.0.1"))
	assert.Equal(t, `http: redirect refused: host "localhost" is not allowed (allowed: 127.0.0.1)`, failure(t, err))
}

func TestNameResolvingToLoopbackRefused(t *testing.T) {
	srv := server(t)
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	url := "http://localhost:" + port + "/hello"
	e, m := setup(t, httpcap.Policy{})
	_, err := e.Run(context.Background(), fetch(m, url, "localhost"))
	assert.Contains(t, failure(t, err), "is refused: a loopback, private or link-local address that no pattern names")

	e, m = setup(t, httpcap.Policy{AllowPrivate: true})
	res, err := e.Run(context.Background(), fetch(m, url, "localhost"))
	require.NoError(t, err)
	assert.Equal(t, "200 hello", string(res.Output))
}

func TestResponseOverTheCap(t *testing.T) {
	srv := server(t)
	e, m := setup(t, httpcap.Policy{MaxResponseBytes: 1024})
	for _, path := range []string{"/big", "/bigchunked"} {
		_, err := e.Run(context.Background(), fetch(m, srv.URL+path, "127.0.0.1"))
		assert.Equal(t, "http: the response from "+srv.Listener.Addr().String()+" is over the 1024-byte limit", failure(t, err), path)
	}
}

func TestRequestTimeout(t *testing.T) {
	srv := server(t)
	e, m := setup(t, httpcap.Policy{Timeout: 50 * time.Millisecond})
	_, err := e.Run(context.Background(), fetch(m, srv.URL+"/slow", "127.0.0.1"))
	assert.Contains(t, failure(t, err), "http: the request timed out")

	// The task's own timeout stops a request the policy would let run.
	e, m = setup(t, httpcap.Policy{})
	task := fetch(m, srv.URL+"/slow", "127.0.0.1")
	task.Timeout = 50 * time.Millisecond
	_, err = e.Run(context.Background(), task)
	require.ErrorIs(t, err, engine.ErrTimeout)
}

func TestMethodsHeadersAndRequestCap(t *testing.T) {
	srv := server(t)
	post := func(m *engine.Module, body string) engine.Task {
		return engine.Task{Module: m, Func: "post", Input: []byte(srv.URL + "/echo\n" + body),
			Grants: []string{httpcap.Name}, GrantArgs: map[string][]string{httpcap.Name: {"127.0.0.1"}}}
	}
	e, m := setup(t, httpcap.Policy{})
	_, err := e.Run(context.Background(), post(m, "hi"))
	assert.Equal(t, "http: method POST is not allowed (allowed: GET, HEAD)", failure(t, err))

	e, m = setup(t, httpcap.Policy{Methods: []string{"POST"}, MaxRequestBytes: 8})
	res, err := e.Run(context.Background(), post(m, "hi"))
	require.NoError(t, err)
	assert.Equal(t, "201 yes POST:hi", string(res.Output), "status, headers in and out, body")

	_, err = e.Run(context.Background(), post(m, "far too long"))
	assert.Equal(t, "http: the request body of 12 bytes is over the 8-byte limit", failure(t, err))
}

func TestMatch(t *testing.T) {
	for _, c := range []struct {
		pattern, host string
		want          bool
	}{
		{"example.com", "example.com", true},
		{"example.com", "EXAMPLE.com.", true},
		{"example.com", "api.example.com", false},
		{"*.example.com", "api.example.com", true},
		{"*.example.com", "a.b.example.com", true},
		{"*.example.com", "example.com", false},
		{"*.example.com", "badexample.com", false},
		{"127.0.0.1", "127.0.0.1", true},
		{"*.0.0.1", "127.0.0.1", false},
		{"::1", "[::1]", true},
		{"", "example.com", false},
	} {
		assert.Equal(t, c.want, httpcap.Match(c.pattern, c.host), "%q ~ %q", c.pattern, c.host)
	}
}
