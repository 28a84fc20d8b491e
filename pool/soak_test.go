//go:build soak

package pool_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wasmpool/wasmpool/engine"
	"github.com/wasmpool/wasmpool/future"
	"github.com/wasmpool/wasmpool/pool"
)

// The soak test (make soak; build tag soak, so never part of make test):
// WASMPOOL_SOAK_TASKS (default 1,000,000) tasks through each mode, a mix of
// good and hostile modules, from four producers. It reports the throughput,
// the process's RSS after 1k, 100k and all tasks, and the goroutines left,
// and checks that every input got exactly one result, the right one.

// rssBytes reads the process's resident set from /proc/self/status (0 if
// it cannot: the figure is reported, not asserted).
func rssBytes() uint64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, _ := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// soakTask is the i-th task of the mix and the check of its outcome. Good
// tasks' inputs carry i, so a result given to the wrong future shows.
type soakTask struct {
	task  engine.Task
	check func(res engine.Result, err error) bool
	kind  string
}

func soakMix(t *testing.T, e *engine.Engine) func(i int) soakTask {
	add, echo, upper := watModule(t, e, "add"), watModule(t, e, "echo"), goModule(t, e, "upper")
	hostile := goModule(t, e, "hostile")
	class := func(want string) func(engine.Result, error) bool {
		return func(_ engine.Result, err error) bool { return errorClass(err) == want }
	}
	bad := []struct {
		every int
		kind  string
		task  engine.Task
		want  string
	}{
		{500, "divide by zero", engine.Task{Module: watModule(t, e, "divzero"), Func: "run"}, "trap divide by zero"},
		{1000, "unreachable", engine.Task{Module: watModule(t, e, "unreachable"), Func: "run"}, "trap unreachable"},
		{1000, "out of bounds", engine.Task{Module: watModule(t, e, "oob"), Func: "run"}, "trap out of bounds"},
		{1000, "ABI misuse", engine.Task{Module: watModule(t, e, "abuse"), Func: "write_wrap"}, "trap out of bounds"},
		{1000, "exit 3", engine.Task{Module: watModule(t, e, "exit"), Args: []string{"a", "b", "c"}}, "exit 3"},
		{2000, "infinite loop", engine.Task{Module: watModule(t, e, "spin"), Func: "spin", Timeout: 2 * time.Millisecond}, "timeout"},
		{2000, "memory bomb", engine.Task{Module: watModule(t, e, "membomb"), Func: "run"}, "memory limit"},
		{2000, "output flood", engine.Task{Module: watModule(t, e, "flood"), Func: "flood"}, "output limit"},
		{10000, "go panic", engine.Task{Module: hostile, Func: "panic"}, "trap unreachable: panic: boom"},
		{10000, "unbounded recursion", engine.Task{Module: watModule(t, e, "recurse"), Func: "run"}, "trap stack overflow"},
	}
	return func(i int) soakTask {
		for j, b := range bad {
			if i%b.every == 17+j {
				return soakTask{b.task, class(b.want), b.kind}
			}
		}
		s := strconv.Itoa(i)
		switch {
		case i%200 == 3: // a Go guest: an instantiation of a 2 MB module in Processes mode
			return soakTask{engine.Task{Module: upper, Func: "upper", Input: []byte("up " + s)},
				func(res engine.Result, err error) bool { return err == nil && string(res.Output) == "UP "+s }, "go upper"}
		case i%3 == 0:
			return soakTask{engine.Task{Module: echo, Func: "echo", Input: []byte("echo " + s)},
				func(res engine.Result, err error) bool { return err == nil && string(res.Output) == "echo "+s }, "echo"}
		}
		return soakTask{engine.Task{Module: add, Func: "add", Params: []uint64{uint64(i), 1}},
			func(res engine.Result, err error) bool {
				return err == nil && len(res.Values) == 1 && res.Values[0] == uint64(i+1)
			}, "add"}
	}
}

func TestSoak(t *testing.T) {
	tasks := 1_000_000
	if s := os.Getenv("WASMPOOL_SOAK_TASKS"); s != "" {
		n, err := strconv.Atoi(s)
		require.NoError(t, err)
		tasks = n
	}
	for _, mode := range modes {
		t.Run(mode.String(), func(t *testing.T) { soak(t, mode, tasks) })
	}
}

func soak(t *testing.T, mode pool.Mode, tasks int) {
	const producers = 4
	e := testEngine(t, engine.Config{MemoryLimitBytes: 32 << 20, OutputLimitBytes: 1 << 20}, nil)
	mix := soakMix(t, e)
	goroutinesBefore := runtime.NumGoroutine()
	p, err := pool.New(e, pool.Config{Mode: mode})
	require.NoError(t, err)
	ctx := context.Background()

	results := make([]atomic.Int32, tasks) // results seen per input
	wrong := make([]atomic.Bool, tasks)
	var done atomic.Int64
	var rssMu sync.Mutex
	rss := map[int]uint64{}
	allDone := make(chan struct{})
	mark := func(n int64) {
		if n == 1_000 || n == 100_000 || n == int64(tasks) {
			rssMu.Lock()
			rss[int(n)] = rssBytes()
			rssMu.Unlock()
		}
		if n == int64(tasks) {
			close(allDone)
		}
	}
	inFlight := make(chan struct{}, 4096) // bounds the futures held at once
	kinds := make([]string, tasks)

	start := time.Now()
	var wg sync.WaitGroup
	for w := range producers {
		wg.Go(func() {
			for i := w; i < tasks; i += producers {
				st := mix(i)
				kinds[i] = st.kind
				inFlight <- struct{}{}
				f := p.Submit(ctx, st.task)
				f.OnDone(func(f *future.Future[engine.Result]) {
					res, err := f.Result(ctx)
					results[i].Add(1)
					if !st.check(res, err) {
						wrong[i].Store(true)
					}
					<-inFlight
					mark(done.Add(1))
				})
			}
		})
	}
	wg.Wait()
	select {
	case <-allDone:
	case <-time.After(time.Hour):
		t.Fatalf("only %d of %d tasks finished", done.Load(), tasks)
	}
	elapsed := time.Since(start)
	require.NoError(t, p.Shutdown(ctx))
	require.NoError(t, p.Close())
	runtime.GC()
	goroutinesAfter := runtime.NumGoroutine()

	lost, dup, bad := 0, 0, map[string]int{}
	for i := range results {
		switch n := results[i].Load(); {
		case n == 0:
			lost++
		case n > 1:
			dup++
		}
		if wrong[i].Load() {
			bad[kinds[i]]++
		}
	}
	st := p.Stats()
	report := fmt.Sprintf("%s: %d tasks in %v = %.0f tasks/s; RSS after 1k %d MiB, 100k %d MiB, %d %d MiB; "+
		"goroutines before %d, after %d; results lost %d, duplicated %d, wrong %v; stats %+v",
		mode, tasks, elapsed.Round(time.Millisecond), float64(tasks)/elapsed.Seconds(),
		rss[1_000]>>20, rss[100_000]>>20, tasks, rss[tasks]>>20,
		goroutinesBefore, goroutinesAfter, lost, dup, bad, st)
	t.Log(report)
	fmt.Println("SOAK " + report)
	assert.Zero(t, lost, "inputs without a result")
	assert.Zero(t, dup, "inputs with more than one result")
	assert.Empty(t, bad, "results that were not the input's")
	assert.Equal(t, int64(tasks), st.Submitted)
	assert.LessOrEqual(t, goroutinesAfter, goroutinesBefore, "goroutines left behind")
}
