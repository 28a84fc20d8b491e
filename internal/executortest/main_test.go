package executortest

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/wasmpool/wasmpool/cluster"
	"github.com/wasmpool/wasmpool/engine"
	"github.com/wasmpool/wasmpool/internal/testmod"
	"github.com/wasmpool/wasmpool/pool"
)

// The cluster's separate worker is this test binary run again with
// workerURLEnv set: it serves the cluster instead of running tests.
const (
	workerURLEnv   = "WASMPOOL_DIFF_WORKER"
	workerNSEnv    = "WASMPOOL_DIFF_NS"
	workerSlotsEnv = "WASMPOOL_DIFF_SLOTS"
)

func TestMain(m *testing.M) {
	// Subprocess pools start this test binary as their worker processes.
	pool.ServeChildWith(pool.ChildHost{Capabilities: []engine.Capability{kvCapability()}})
	if url := os.Getenv(workerURLEnv); url != "" {
		os.Exit(workerMain(url))
	}
	// nats.go's async-publish watcher can miss the connection's CLOSED
	// event (see cluster's TestMain): not ours to fix.
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction("github.com/nats-io/nats.go/jetstream.(*jetStream).resetPendingAcksOnReconnect"))
}

// engineConfig is every executor's engine, the separate worker's too:
// limits small enough that the hostile tasks end fast.
func engineConfig() engine.Config {
	return engine.Config{MemoryLimitBytes: 32 << 20, OutputLimitBytes: 4 << 20, CacheDir: testmod.CompileCache(),
		Capabilities: []engine.Capability{kvCapability()}}
}

// workerMain is the cluster's separate worker: serving until killed, or
// until its stdin closes (the test binary is gone: no orphan outlives it).
func workerMain(url string) int {
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		os.Exit(0)
	}()
	fail := func(err error) int {
		fmt.Fprintf(os.Stderr, "differential worker: %v\n", err)
		return 1
	}
	slots, err := strconv.Atoi(os.Getenv(workerSlotsEnv))
	if err != nil {
		return fail(err)
	}
	nc, err := cluster.Connect(url, "differential worker")
	if err != nil {
		return fail(err)
	}
	defer nc.Close()
	e, err := engine.New(context.Background(), engineConfig())
	if err != nil {
		return fail(err)
	}
	w, err := cluster.NewWorker(context.Background(), nc, e, cluster.WorkerConfig{
		Settings: settings(os.Getenv(workerNSEnv)), Name: "separate", AllowMounts: true,
		Pool: pool.Config{Workers: slots}, PollWait: time.Second,
	})
	if err != nil {
		return fail(err)
	}
	<-w.Done()
	return 0
}

func settings(ns string) cluster.Settings {
	return cluster.Settings{Namespace: ns, AckWait: 30 * time.Second, Memory: true}
}

// startWorker starts the separate worker process, killed at the end of the
// test.
func startWorker(t *testing.T, url, ns string, slots int) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), workerURLEnv+"="+url, workerNSEnv+"="+ns, workerSlotsEnv+"="+strconv.Itoa(slots))
	cmd.Stderr = os.Stderr
	if _, err := cmd.StdinPipe(); err != nil { // held open for the worker's life
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(done)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-done
	})
}
