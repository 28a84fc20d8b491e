package main

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// helloServer answers /N with "hello N", on the loopback interface.
func helloServer(t *testing.T) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello %s", strings.TrimPrefix(r.URL.Path, "/"))
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestRunAllowHost(t *testing.T) {
	t.Parallel()
	srv := helloServer(t)
	caps := gomod(t, "caps")
	for _, iso := range []string{"in-process", "subprocess"} {
		r := cli(t, srv.URL+"/1", "run", caps, "--func", "fetch", "--allow-host", "127.0.0.1", "--isolation", iso)
		assert.Equal(t, exitOK, r.code, r.stderr)
		assert.Equal(t, "200 hello 1", r.stdout, iso)
	}

	r := cli(t, srv.URL+"/1", "run", caps, "--func", "fetch")
	assert.Equal(t, exitFailed, r.code)
	assert.Contains(t, r.stderr, `capability "http" is not granted to this task (granted: none)`)

	r = cli(t, srv.URL+"/1", "run", caps, "--func", "fetch", "--allow-host", "example.com", "--allow-host", "*.example.org")
	assert.Equal(t, exitFailed, r.code)
	assert.Contains(t, r.stderr, `http: host "127.0.0.1" is not allowed (allowed: example.com, *.example.org)`)

	r = cli(t, srv.URL+"/1", "run", caps, "--func", "fetch", "--allow-host", srv.URL)
	assert.Equal(t, exitUsage, r.code)
	assert.Contains(t, r.stderr, "--allow-host: host pattern")
}

func TestMapAllowHost(t *testing.T) {
	t.Parallel()
	srv := helloServer(t)
	urls := srv.URL + "/a\n" + srv.URL + "/b\n"
	for _, extra := range [][]string{nil, {"--nats-embedded"}} {
		args := append([]string{"map", gomod(t, "caps"), "--func", "fetch", "--lines", "-", "--format", "raw", "--allow-host", "127.0.0.1"}, extra...)
		r := cli(t, urls, args...)
		assert.Equal(t, exitOK, r.code, r.stderr)
		assert.Equal(t, "200 hello a\n200 hello b\n", r.stdout, "%v", extra)
	}
}

func TestBatchAllowHosts(t *testing.T) {
	t.Parallel()
	srv := helloServer(t)
	dir := t.TempDir()
	b, err := os.ReadFile(gomod(t, "caps"))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "caps.wasm"), b, 0o644))
	line := func(input, extra string) string {
		return fmt.Sprintf(`{"module": "caps.wasm", "func": "fetch", "input": %q%s}`, srv.URL+input, extra)
	}
	p := filepath.Join(dir, "tasks.jsonl")
	require.NoError(t, os.WriteFile(p, []byte(strings.Join([]string{
		line("/1", `, "allow_hosts": ["127.0.0.1"]`),
		line("/2", ""),
		line("/3", `, "allow_hosts": []`),
		line("/4", `, "allow_hosts": ["http://127.0.0.1/"]`),
	}, "\n")+"\n"), 0o644))

	res := parseResults(t, cli(t, "", "batch", p).stdout)
	require.Len(t, res, 4)
	assert.True(t, res[1].OK, res[1].Error)
	assert.Equal(t, "200 hello 1", *res[1].Text)
	assert.Contains(t, res[2].Error, `capability "http" is not granted`, "no --allow-host, no allow_hosts: no HTTP")
	assert.Contains(t, res[4].Error, `"allow_hosts": host pattern "http://127.0.0.1/"`)
	assert.Equal(t, "bad_line", res[4].ErrorKind)

	res = parseResults(t, cli(t, "", "batch", p, "--allow-host", "127.0.0.1").stdout)
	assert.True(t, res[2].OK, "--allow-host is the default of a line without allow_hosts: %s", res[2].Error)
	assert.Contains(t, res[3].Error, `capability "http" is not granted`, "a line's empty allow_hosts grants none")
}
