package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wasmpool/wasmpool/cluster/embedded"
)

// --require and a batch line's "require" send tasks only to the workers
// with those labels; a line no live worker can serve fails as no_worker
// after --route-wait, and cluster status lists the sets with their queues.
func TestRequireRoutesMapAndBatch(t *testing.T) {
	srv, err := embedded.StartServer(embedded.ServerConfig{Listen: "127.0.0.1:-1"})
	require.NoError(t, err)
	defer srv.Shutdown()
	url := srv.ClientURL()
	wctx, stop := context.WithCancel(context.Background())
	defer stop()
	exits := make(chan int, 2)
	for _, args := range [][]string{{"--name", "plain"}, {"--name", "gpu", "--label", "gpu=a100"}} {
		go func() {
			exits <- runContext(wctx, append([]string{"worker", "--nats", url, "--workers", "1"}, args...),
				strings.NewReader(""), io.Discard, io.Discard)
		}()
	}
	upper := gomod(t, "upper")

	files := writeFiles(t, "a", "b", "c")
	r := cli(t, "", append([]string{"map", upper, "--func", "upper", "--nats", url, "--require", "gpu=a100", "--format", "jsonl"}, files...)...)
	require.Equal(t, exitOK, r.code, r.stderr)
	sc := bufio.NewScanner(strings.NewReader(r.stdout))
	n := 0
	for ; sc.Scan(); n++ {
		var line struct{ Worker string }
		require.NoError(t, json.Unmarshal(sc.Bytes(), &line))
		assert.Equal(t, "gpu", line.Worker, "map --require runs only on the worker labelled so")
	}
	assert.Equal(t, 3, n)

	batch := `{"module": "` + upper + `", "func": "upper", "input": "x", "require": {"gpu": "a100"}}
{"module": "` + upper + `", "func": "upper", "input": "y", "require": {"gpu": "h100"}}
{"module": "` + upper + `", "func": "upper", "input": "z", "require": {"gpu": ""}}
{"module": "` + upper + `", "func": "upper", "input": "w", "require": {"gpu!": "x"}}
`
	r = cli(t, batch, "batch", "-", "--nats", url, "--route-wait", "200ms")
	assert.Equal(t, exitNoWorker, r.code, r.stderr)
	var lines []resultLine
	sc = bufio.NewScanner(strings.NewReader(r.stdout))
	for sc.Scan() {
		var rl resultLine
		require.NoError(t, json.Unmarshal(sc.Bytes(), &rl))
		lines = append(lines, rl)
	}
	require.Len(t, lines, 4)
	assert.Equal(t, "gpu", lines[0].Worker)
	assert.Equal(t, "X", *lines[0].Text)
	assert.Equal(t, kindNoWorker, lines[1].ErrorKind)
	assert.Equal(t, `module "upper.wasm": no worker can run the task: it requires label gpu=h100; 2 workers live: `+
		`gpu lacks label gpu=h100, plain lacks label gpu=h100 (waited 200ms)`, lines[1].Error)
	assert.Equal(t, kindNoWorker, lines[2].ErrorKind, "an empty value is a value: no worker has it")
	assert.Equal(t, kindBadLine, lines[3].ErrorKind)
	assert.Contains(t, lines[3].Error, `line 4: "require": label "gpu!"`)

	r = cli(t, `{"module": "`+upper+`", "func": "upper", "require": {"gpu": "a100"}}`+"\n", "batch", "-")
	assert.Equal(t, exitUsage, r.code)
	assert.Contains(t, r.stdout, `needs --nats or --nats-embedded`)

	r = cli(t, "", "cluster", "status", "--nats", url)
	require.Equal(t, exitOK, r.code, r.stderr)
	assert.Regexp(t, regexp.MustCompile(`(?m)^REQUIRES\s+QUEUED\s+IN FLIGHT\s+WORKERS\s+KEY\n`), r.stdout)
	assert.Regexp(t, regexp.MustCompile(`(?m)^label gpu=a100\s+0\s+0\s+1\s+\w+$`), r.stdout, "the set map and line 1 used, served by one worker")
	assert.Regexp(t, regexp.MustCompile(`(?m)^label gpu=h100\s+0\s+0\s+0\s+\w+$`), r.stdout, "the set no worker serves, its task gone with its failure")

	stop()
	for range 2 {
		assert.Equal(t, exitOK, <-exits)
	}
}
