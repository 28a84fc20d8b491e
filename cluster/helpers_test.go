package cluster_test

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"
	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"go.uber.org/goleak"

	"github.com/wasmpool/wasmpool/cluster"
	"github.com/wasmpool/wasmpool/cluster/embedded"
	"github.com/wasmpool/wasmpool/engine"
	"github.com/wasmpool/wasmpool/internal/testmod"
	"github.com/wasmpool/wasmpool/pool"
)

// Worker processes are this test binary run again with workerEnv set: it
// then serves as a cluster worker instead of running tests (see
// workerMain).
const (
	workerEnv     = "WASMPOOL_TEST_WORKER" // the NATS URL to serve
	workerNameEnv = "WASMPOOL_TEST_WORKER_NAME"
	workerNSEnv   = "WASMPOOL_TEST_WORKER_NS"
	workerAckEnv  = "WASMPOOL_TEST_WORKER_ACK_WAIT"
	workerGateEnv = "WASMPOOL_TEST_WORKER_GATE" // block, pass or die
	// workerNoCacheEnv set: the worker compiles without the tests' shared
	// compiled-code cache.
	workerNoCacheEnv = "WASMPOOL_TEST_WORKER_NO_CACHE"
)

func TestMain(m *testing.M) {
	if url := os.Getenv(workerEnv); url != "" {
		os.Exit(workerMain(url))
	}
	if url := os.Getenv(submitterEnv); url != "" {
		os.Exit(submitterMain(url))
	}
	// nats.go's async-publish watcher exits on the connection's CLOSED
	// event, which nats.go itself can swallow: Conn.sendStatusEvent probes a
	// listener channel for closure by receiving from it, and so eats an
	// earlier event still buffered there, then drops the listener. Not
	// ours to fix; everything else must stop.
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction("github.com/nats-io/nats.go/jetstream.(*jetStream).resetPendingAcksOnReconnect"))
}

// within bounds a test's waits: a deadlock fails the test instead of hanging.
func within(t testing.TB) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// settings are a test's own cluster: its own namespace, and an ack deadline
// short enough that a dead worker's task moves on within the test.
func settings(t testing.TB, ackWait time.Duration) cluster.Settings {
	return cluster.Settings{Namespace: "t" + strconv.FormatInt(time.Now().UnixNano(), 36), AckWait: ackWait}
}

// startServer starts an embedded server that stops with the test.
func startServer(t testing.TB, cfg embedded.ServerConfig) *embedded.Server {
	t.Helper()
	s, err := embedded.StartServer(cfg)
	require.NoError(t, err)
	t.Cleanup(s.Shutdown)
	return s
}

func connect(t testing.TB, s *embedded.Server, name string) *nats.Conn {
	t.Helper()
	nc, err := s.Connect(name)
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	return nc
}

func newExecutor(t testing.TB, nc *nats.Conn, cfg cluster.Config) *cluster.Executor {
	t.Helper()
	x, err := cluster.New(within(t), nc, cfg)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, x.Close()) })
	return x
}

// gate is the "test"."barrier" capability of the barrier module: a task of
// it tells the test it has entered, then does what the gate's mode says.
// Tests use it to hold a worker busy, to know where a task runs, and to
// kill the worker running it.
type gate struct {
	mode    string        // block (until released), pass, or die
	entered func()        // called as a task enters
	release chan struct{} // closed to let blocked tasks go
}

func (g *gate) hostModule() engine.HostModule {
	return engine.HostModule{Name: "test", Define: func(hb wazero.HostModuleBuilder) {
		hb.NewFunctionBuilder().WithGoModuleFunction(api.GoModuleFunc(func(ctx context.Context, _ api.Module, _ []uint64) {
			g.entered()
			switch g.mode {
			case "block":
				select {
				case <-g.release:
				case <-ctx.Done():
				}
			case "die":
				p, _ := os.FindProcess(os.Getpid())
				_ = p.Kill()
				select {} // the kill is on its way
			}
		}), nil, nil).Export("barrier")
	}}
}

// localGate is a gate for workers in this process.
func localGate(mode string) (*gate, chan struct{}) {
	entered := make(chan struct{}, 64)
	return &gate{mode: mode, release: make(chan struct{}), entered: func() { entered <- struct{}{} }}, entered
}

// newEngine is a worker's (or submitter's) engine with the gate; with none,
// a gate that lets tasks pass, so that the barrier module compiles.
func newEngine(t testing.TB, g *gate) *engine.Engine {
	t.Helper()
	if g == nil {
		g = &gate{mode: "pass", entered: func() {}}
	}
	cfg := engine.Config{CacheDir: testmod.CompileCache(), HostModules: []engine.HostModule{g.hostModule()}}
	e, err := engine.New(context.Background(), cfg)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, e.Close(context.Background())) })
	return e
}

func newWorker(t testing.TB, nc *nats.Conn, e *engine.Engine, s cluster.Settings, slots int) *cluster.Worker {
	t.Helper()
	w, err := cluster.NewWorker(within(t), nc, e, cluster.WorkerConfig{
		Settings: s, Pool: pool.Config{Workers: slots}, PollWait: time.Second,
	})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, w.Close()) })
	return w
}

func wat(t testing.TB, e *engine.Engine, name string) *engine.Module {
	t.Helper()
	m, err := e.CompileFile(context.Background(), testmod.WAT(t, name))
	require.NoError(t, err)
	return m
}

func gomod(t testing.TB, e *engine.Engine, name string) *engine.Module {
	t.Helper()
	m, err := e.CompileFile(context.Background(), testmod.Path(t, name))
	require.NoError(t, err)
	return m
}

// workerProc is a worker process: this test binary, serving url.
type workerProc struct {
	name string
	cmd  *exec.Cmd
	done chan struct{} // closed when the process has exited
}

// startWorkerProc starts a worker process with one slot, killed at the end
// of the test.
func startWorkerProc(t testing.TB, url, name string, s cluster.Settings, gateMode string) *workerProc {
	t.Helper()
	p, err := spawnWorker(url, name, s, gateMode)
	require.NoError(t, err)
	t.Cleanup(p.kill)
	return p
}

func spawnWorker(url, name string, s cluster.Settings, gateMode string) (*workerProc, error) {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(),
		workerEnv+"="+url, workerNameEnv+"="+name, workerNSEnv+"="+s.Namespace,
		workerAckEnv+"="+s.AckWait.String(), workerGateEnv+"="+gateMode)
	cmd.Stderr = os.Stderr
	if _, err := cmd.StdinPipe(); err != nil { // held open for the worker's life
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &workerProc{name: name, cmd: cmd, done: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// kill ends the process at once (SIGKILL) and waits for it.
func (p *workerProc) kill() {
	_ = p.cmd.Process.Kill()
	<-p.done
}

// workerMain is the worker process: one slot, serving until killed, or
// until its stdin closes (the test binary is gone: no orphan outlives it).
// The gate reports entries on the cluster's NATS, so the test knows which
// process runs what.
func workerMain(url string) int {
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		os.Exit(0)
	}()
	name, ns := os.Getenv(workerNameEnv), os.Getenv(workerNSEnv)
	ackWait, err := time.ParseDuration(os.Getenv(workerAckEnv))
	if err != nil {
		return fail("ack wait: %v", err)
	}
	nc, err := cluster.Connect(url, name)
	if err != nil {
		return fail("%v", err)
	}
	defer nc.Close()
	g := &gate{mode: os.Getenv(workerGateEnv), release: make(chan struct{})}
	var once sync.Once
	if _, err := nc.Subscribe(ns+".test.release", func(*nats.Msg) { once.Do(func() { close(g.release) }) }); err != nil {
		return fail("%v", err)
	}
	g.entered = func() {
		_ = nc.Publish(ns+".test.entered", []byte(name))
		_ = nc.Flush()
	}
	cacheDir := testmod.CompileCache()
	if os.Getenv(workerNoCacheEnv) != "" {
		cacheDir = "" // the soak's thousands of modules stay out of the tests' cache
	}
	e, err := engine.New(context.Background(), engine.Config{CacheDir: cacheDir, HostModules: []engine.HostModule{g.hostModule()}})
	if err != nil {
		return fail("%v", err)
	}
	s := cluster.Settings{Namespace: ns, AckWait: ackWait}
	w, err := cluster.NewWorker(context.Background(), nc, e, cluster.WorkerConfig{
		Settings: s, Name: name, Pool: pool.Config{Workers: 1}, PollWait: time.Second,
	})
	if err != nil {
		return fail("%v", err)
	}
	<-w.Done()
	return 0
}

func fail(format string, args ...any) int {
	fmt.Fprintf(os.Stderr, "test worker: "+format+"\n", args...)
	return 1
}
