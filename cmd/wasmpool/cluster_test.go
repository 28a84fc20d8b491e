package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wasmpool/wasmpool/cluster/embedded"
)

// map and batch on a cluster print exactly what they print on a pool.

func TestMapOnEmbeddedNode(t *testing.T) {
	t.Parallel()
	files := writeFiles(t, "one", "two\n", "three")
	for _, mode := range []string{"thread", "process"} {
		t.Run(mode, func(t *testing.T) {
			args := append([]string{"map", gomod(t, "upper"), "--func", "upper", "--mode", mode, "--workers", "2"}, files...)
			local := cli(t, "", args...)
			r := cli(t, "", append(args, "--nats-embedded")...)
			assert.Equal(t, exitOK, r.code, r.stderr)
			assert.Equal(t, local.stdout, r.stdout, "as on a local pool")
			assert.Equal(t, files[0]+"\tONE\n"+files[1]+"\tTWO\n"+files[2]+"\tTHREE\n", r.stdout)
			assert.Empty(t, r.stderr, "no port, nothing to announce")
		})
	}
}

// A worker command serving a broker, and batch submitting to it.
func TestWorkerServesBatch(t *testing.T) {
	srv, err := embedded.StartServer(embedded.ServerConfig{Listen: "127.0.0.1:-1"})
	require.NoError(t, err)
	defer srv.Shutdown()
	url := srv.ClientURL()

	wctx, stop := context.WithCancel(context.Background())
	defer stop()
	var werr syncBuffer
	worker := make(chan int, 1)
	go func() {
		worker <- runContext(wctx, []string{"worker", "--nats", url, "--workers", "2", "--mode", "process", "--name", "w1"},
			strings.NewReader(""), io.Discard, &werr)
	}()

	fetch := `{"module": "` + gomod(t, "caps") + `", "func": "fetch", "input": "` + helloServer(t).URL + `/1", "allow_hosts": ["127.0.0.1"]}
`
	batch := `{"module": "` + gomod(t, "upper") + `", "func": "upper", "input": "hi"}
{"module": "` + wat(t, "unreachable") + `", "func": "run"}
{"module": "` + wat(t, "spin") + `", "func": "spin", "timeout": "50ms"}
` + fetch
	r := cli(t, batch, "batch", "-", "--nats", url, "--route-wait", "300ms")
	assert.Equal(t, exitTrap, r.code, r.stderr)
	var lines []resultLine
	sc := bufio.NewScanner(strings.NewReader(r.stdout))
	for sc.Scan() {
		var rl resultLine
		require.NoError(t, json.Unmarshal(sc.Bytes(), &rl))
		lines = append(lines, rl)
	}
	require.Len(t, lines, 4)
	assert.True(t, lines[0].OK)
	assert.Equal(t, "HI", *lines[0].Text)
	assert.Equal(t, kindTrap, lines[1].ErrorKind)
	assert.Contains(t, lines[1].Error, "unreachable.wasm")
	assert.Equal(t, kindTimeout, lines[2].ErrorKind)
	// w1 has no --allow-host: a task granted HTTP is not sent to it, and
	// fails after --route-wait with an error of its own kind and exit
	// status, naming what w1 lacks.
	assert.Equal(t, kindNoWorker, lines[3].ErrorKind)
	assert.Equal(t, `module "caps.wasm": no worker can run the task: it requires capability http; 1 worker live: w1 lacks capability http (waited 300ms)`,
		lines[3].Error)
	assert.Empty(t, lines[3].Worker, "no worker ran it")
	for i, l := range lines[:3] {
		assert.Equal(t, "w1", l.Worker, "line %d names the worker that ran it", i+1)
	}
	r = cli(t, fetch, "batch", "-", "--nats", url, "--route-wait", "100ms")
	assert.Equal(t, exitNoWorker, r.code, "a task no worker can run has its own exit status: %s", r.stdout)

	stop() // SIGINT
	assert.Equal(t, exitOK, <-worker, werr.String())
	log := werr.String()
	assert.Contains(t, log, "worker started")
	// One line per task, saying how it ended.
	assert.Equal(t, 1, strings.Count(log, "msg=\"task done\""), log)
	assert.Equal(t, 2, strings.Count(log, "msg=\"task failed\""), log)
	assert.Contains(t, log, "module=upper.wasm func=upper")
}

// The messages of the cluster commands, as users meet them: a connection
// error is one line that names the server without its token and without a
// module it has nothing to do with; a port in use is said at once; a bad
// port is a usage error.
func TestClusterMessages(t *testing.T) {
	in := writeFiles(t, "x")
	r := cli(t, "", "map", gomod(t, "upper"), "--func", "upper", "--nats", "nats://s3cret@127.0.0.1:1", in[0])
	assert.Equal(t, exitFailed, r.code)
	line := singleLine(t, r.stderr)
	assert.NotContains(t, line, "s3cret")
	assert.NotContains(t, line, "upper.wasm")
	assert.Contains(t, line, "cannot connect to NATS at nats://***@127.0.0.1:1")
	r = cli(t, "", "worker", "--nats", "nats://me:pa55@127.0.0.1:1,nats://t0k3n@127.0.0.2:1")
	assert.NotContains(t, r.stderr, "pa55")
	assert.NotContains(t, r.stderr, "t0k3n")
	assert.Contains(t, r.stderr, "nats://me:***@127.0.0.1:1,nats://***@127.0.0.2:1")

	taken, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer taken.Close()
	for _, args := range [][]string{
		{"serve-nats", "--listen", taken.Addr().String(), "--store", ""},
		{"map", gomod(t, "upper"), "--func", "upper", "--nats-embedded=" + taken.Addr().String(), in[0]},
	} {
		r = cli(t, "", args...)
		assert.Equal(t, exitFailed, r.code, "%q", args)
		assert.Contains(t, singleLine(t, r.stderr), "address already in use", "%q", args)
	}
	for _, addr := range []string{":99999", ":-2", ":http", "4222"} {
		r = cli(t, "", "serve-nats", "--listen", addr, "--store", "")
		assert.Equal(t, exitUsage, r.code, "%s: %s", addr, r.stderr)
	}
}

// With no worker to take them, map's tasks wait in the queue: map says so,
// rather than showing a bar stuck at 0.
func TestMapSaysWhenNoWorkerCame(t *testing.T) {
	defer func(d time.Duration) { noWorkerAfter = d }(noWorkerAfter)
	noWorkerAfter = 50 * time.Millisecond
	srv, err := embedded.StartServer(embedded.ServerConfig{Listen: "127.0.0.1:-1"})
	require.NoError(t, err)
	defer srv.Shutdown()

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stdout, stderr syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- runContext(ctx, []string{"map", gomod(t, "upper"), "--func", "upper", "--lines", "-", "--nats", srv.ClientURL()},
			strings.NewReader("hi\n"), &stdout, &stderr)
	}()
	timeout := time.After(time.Minute)
	for !strings.Contains(stderr.String(), "no worker has taken a task") {
		select {
		case <-stderr.written():
		case code := <-done:
			t.Fatalf("map ended with %d before saying anything: %s", code, stderr.String())
		case <-timeout:
			t.Fatalf("map never said no worker came: %q", stderr.String())
		}
	}
	cancel()
	assert.Equal(t, exitCancelled, <-done)
	assert.Contains(t, stderr.String(), "'wasmpool worker --nats URL'")
}

// serve-nats announces its URL; map submits there; local workers run it.
func TestServeNATSWithLocalWorkers(t *testing.T) {
	sctx, stop := context.WithCancel(context.Background())
	defer stop()
	var serr syncBuffer
	served := make(chan int, 1)
	go func() {
		served <- runContext(sctx, []string{"serve-nats", "--listen", "127.0.0.1:-1", "--store", "", "--workers", "1"},
			strings.NewReader(""), io.Discard, &serr)
	}()
	urlRE := regexp.MustCompile(`serving at (nats://\S+)`)
	var url string
	timeout := time.After(time.Minute)
	for url == "" {
		if m := urlRE.FindStringSubmatch(serr.String()); m != nil {
			url = m[1]
			break
		}
		select {
		case <-serr.written():
		case code := <-served:
			t.Fatalf("serve-nats exited with %d: %s", code, serr.String())
		case <-timeout:
			t.Fatalf("serve-nats never announced its URL: %s", serr.String())
		}
	}
	r := cli(t, "10\n20\n", "map", gomod(t, "fib"), "--func", "fib", "--lines", "-", "--nats", url)
	assert.Equal(t, exitOK, r.code, r.stderr)
	assert.Equal(t, "10\t55\n20\t6765\n", r.stdout)
	stop()
	assert.Equal(t, exitOK, <-served, serr.String())
}

func TestClusterFlagMistakes(t *testing.T) {
	upper := gomod(t, "upper")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"worker"}, "--nats URL is required"},
		{[]string{"worker", "--nats", "nats://127.0.0.1:1", "--mode", "fork"}, "--mode"},
		{[]string{"map", upper, "--func", "upper", "--nats", "nats://x:1", "--nats-embedded", "a"}, "not both"},
		{[]string{"map", upper, "--func", "upper", "--in-flight", "3", "a"}, "need --nats"},
		{[]string{"map", upper, "--func", "upper", "--unavailable-after", "30s", "a"}, "need --nats"},
		{[]string{"map", upper, "--func", "upper", "--nats", "nats://x:1", "--unavailable-after", "0s", "a"}, "--unavailable-after 0s"},
		{[]string{"serve-nats", "--listen", "4222"}, "HOST:PORT"},
		{[]string{"map", upper, "--func", "upper", "--require", "gpu=a100", "a"}, "--require and --route-wait need --nats"},
		{[]string{"map", upper, "--func", "upper", "--nats", "nats://x:1", "--require", "gpu", "a"}, `--require "gpu": want KEY=VALUE`},
		{[]string{"batch", "-", "--nats", "nats://x:1", "--route-wait", "0s"}, "--route-wait 0s"},
	} {
		r := cli(t, "", tc.args...)
		assert.Equal(t, exitUsage, r.code, "%q: %s", tc.args, r.stderr)
		assert.Contains(t, r.stderr, tc.want, "%q", tc.args)
	}
	// Nothing listens there: one line, not a usage error.
	r := cli(t, "", "worker", "--nats", "nats://127.0.0.1:1")
	assert.Equal(t, exitFailed, r.code)
	assert.Equal(t, 1, strings.Count(r.stderr, "\n"), r.stderr)
	assert.Contains(t, r.stderr, "nats://127.0.0.1:1")
}

// syncBuffer is a bytes.Buffer written by a command running in another
// goroutine and read by the test.
type syncBuffer struct {
	mu    sync.Mutex
	b     bytes.Buffer
	wrote chan struct{}
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	select {
	case s.signal() <- struct{}{}:
	default:
	}
	return s.b.Write(p)
}

// written receives after each write (writes in between may be merged).
func (s *syncBuffer) written() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.signal()
}

func (s *syncBuffer) signal() chan struct{} {
	if s.wrote == nil {
		s.wrote = make(chan struct{}, 1)
	}
	return s.wrote
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// A broker that goes away under batch fails its tasks as unavailable
// (error_kind "unavailable", exit 75) once --unavailable-after has passed:
// not as a timeout, which nothing was.
func TestBatchReportsAnOutageAsUnavailable(t *testing.T) {
	srv, err := embedded.StartServer(embedded.ServerConfig{Listen: "127.0.0.1:-1", StoreDir: t.TempDir()})
	require.NoError(t, err)
	defer srv.Shutdown()
	nc, err := srv.Connect("test")
	require.NoError(t, err)
	defer nc.Close()
	js, err := jetstream.New(nc)
	require.NoError(t, err)

	stdin, lines := io.Pipe()
	var stdout, stderr syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- runContext(context.Background(), []string{"batch", "-", "--nats", srv.ClientURL(), "--unavailable-after", "300ms"},
			stdin, &stdout, &stderr)
	}()
	// batch is connected once its executor has written its liveness
	// record, the last thing it does on the broker before it reads lines.
	deadline := time.Now().Add(time.Minute)
	for !hasSubmitterRecord(js) {
		require.True(t, time.Now().Before(deadline), "batch never connected: %s", stderr.String())
		time.Sleep(20 * time.Millisecond) // polling the broker's state, bounded above
	}
	nc.Close()
	srv.Shutdown()
	wrote := make(chan error, 1)
	go func() {
		// In a goroutine: a batch that ended without reading would
		// otherwise hang the test on the pipe instead of failing it.
		_, err := io.WriteString(lines, `{"module": "`+gomod(t, "upper")+`", "func": "upper", "input": "hi"}`+"\n")
		wrote <- errors.Join(err, lines.Close())
	}()

	var code int
	select {
	case code = <-done:
	case <-time.After(time.Minute):
		t.Fatalf("batch did not end a minute after the outage: %s", stderr.String())
	}
	assert.Equal(t, exitUnavailable, code, stderr.String())
	select {
	case err := <-wrote:
		require.NoError(t, err, "batch read its line")
	case <-time.After(time.Minute):
		t.Fatalf("batch ended without reading its line: %s", stderr.String())
	}
	var rl resultLine
	require.NoError(t, json.Unmarshal([]byte(strings.TrimSpace(stdout.String())), &rl), stdout.String())
	assert.False(t, rl.OK)
	assert.Equal(t, kindUnavail, rl.ErrorKind)
	assert.Contains(t, rl.Error, "cluster unavailable")
	assert.Contains(t, rl.Error, "upper.wasm")
}

// serve-nats's flags are the broker's configuration: started again on the
// same store with another --ack-wait, it applies it, and says so.
func TestServeNATSAppliesFlagsToAnExistingStore(t *testing.T) {
	store := t.TempDir()
	serve := func(ackWait string) string {
		ctx, stop := context.WithCancel(context.Background())
		defer stop()
		var serr syncBuffer
		served := make(chan int, 1)
		go func() {
			served <- runContext(ctx, []string{"serve-nats", "--listen", "127.0.0.1:-1", "--store", store, "--ack-wait", ackWait},
				strings.NewReader(""), io.Discard, &serr)
		}()
		timeout := time.After(time.Minute)
		for !strings.Contains(serr.String(), "serving at") {
			select {
			case <-serr.written():
			case code := <-served:
				t.Fatalf("serve-nats exited with %d: %s", code, serr.String())
			case <-timeout:
				t.Fatalf("serve-nats never announced its URL: %s", serr.String())
			}
		}
		stop()
		assert.Equal(t, exitOK, <-served, serr.String())
		return serr.String()
	}
	assert.NotContains(t, serve("30s"), "existing store")
	assert.Contains(t, serve("2s"), "wasmpool: the existing store's AckWait 2s (was 30s)\n")
	assert.NotContains(t, serve("2s"), "existing store", "nothing to change")
}

// hasSubmitterRecord says whether an executor of the default namespace has
// written its liveness record.
func hasSubmitterRecord(js jetstream.JetStream) bool {
	kv, err := js.KeyValue(context.Background(), "wasmpool_submitters")
	if err != nil {
		return false
	}
	keys, err := kv.ListKeys(context.Background())
	if err != nil {
		return false
	}
	defer keys.Stop()
	for range keys.Keys() {
		return true
	}
	return false
}
