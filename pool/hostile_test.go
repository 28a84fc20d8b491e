package pool_test

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wasmpool/wasmpool/engine"
	"github.com/wasmpool/wasmpool/future"
	"github.com/wasmpool/wasmpool/internal/testmod"
	"github.com/wasmpool/wasmpool/pool"
)

const (
	hostileMemLimit = 32 << 20
	hostileOutLimit = 4 << 20
	// hostileHeapSlack is how much the host's live heap may grow over three
	// rounds of every hostile task. A leak of any one thing the hostile
	// tasks make the host hold (an output flood: 4 MiB; a memory bomb: 32
	// MiB; a recursion's wasm stack: 84 MiB) would be three times that.
	hostileHeapSlack = 12 << 20
)

// hostile is one misbehaving task and the one error class (see errorClass)
// it must end with.
type hostile struct {
	name  string
	task  engine.Task
	want  string
	check func(t *testing.T, res engine.Result)
}

func hostileTasks(t *testing.T, e *engine.Engine) []hostile {
	wat := func(name string) *engine.Module { return watModule(t, e, name) }
	gomod := goModule(t, e, "hostile")
	long := time.Minute // a bound that only matters if the limit under test fails
	atMostLimit := func(t *testing.T, res engine.Result) {
		assert.LessOrEqual(t, len(res.Output), hostileOutLimit, "the host never holds more output than the limit")
		assert.LessOrEqual(t, len(res.Stderr), hostileOutLimit, "nor more stderr")
	}
	exitCode := func(code uint32) func(*testing.T, engine.Result) {
		return func(t *testing.T, res engine.Result) { assert.Equal(t, code, res.ExitCode) }
	}
	hs := []hostile{
		{name: "infinite loop", task: engine.Task{Module: wat("spin"), Func: "spin", Timeout: 50 * time.Millisecond}, want: "timeout"},
		{name: "go infinite loop", task: engine.Task{Module: gomod, Func: "spin", Timeout: 50 * time.Millisecond}, want: "timeout"},
		{name: "go sleeps for an hour", task: engine.Task{Module: gomod, Func: "sleep", Input: []byte("1h"), Timeout: 50 * time.Millisecond}, want: "timeout"},
		{name: "memory bomb", task: engine.Task{Module: wat("membomb"), Func: "run", Timeout: long}, want: "memory limit"},
		{name: "go memory bomb", task: engine.Task{Module: gomod, Func: "membomb", Timeout: long}, want: "memory limit"},
		{name: "unbounded recursion", task: engine.Task{Module: wat("recurse"), Func: "run", Timeout: long}, want: "trap stack overflow"},
		// A Go guest's stack lives in its linear memory.
		{name: "go unbounded recursion", task: engine.Task{Module: gomod, Func: "recurse", Timeout: long}, want: "memory limit"},
		{name: "unreachable", task: engine.Task{Module: wat("unreachable"), Func: "run"}, want: "trap unreachable"},
		{name: "out of bounds", task: engine.Task{Module: wat("oob"), Func: "run"}, want: "trap out of bounds"},
		{name: "divide by zero", task: engine.Task{Module: wat("divzero"), Func: "run"}, want: "trap divide by zero"},
		{name: "integer overflow", task: engine.Task{Module: wat("intoverflow"), Func: "run"}, want: "trap integer overflow"},
		{name: "output flood", task: engine.Task{Module: wat("flood"), Func: "flood", Timeout: long}, want: "output limit", check: atMostLimit},
		{name: "go output flood", task: engine.Task{Module: gomod, Func: "flood", Timeout: long}, want: "output limit", check: atMostLimit},
		{name: "go stderr flood", task: engine.Task{Module: gomod, Func: "stderrflood", Timeout: long}, want: "output limit", check: atMostLimit},
		{name: "go panic", task: engine.Task{Module: gomod, Func: "panic", Timeout: long}, want: "trap unreachable: panic: boom"},
		{name: "go deadlock", task: engine.Task{Module: gomod, Func: "deadlock", Timeout: long},
			want: "trap unreachable: fatal error: all goroutines are asleep - deadlock!"},
		{name: "proc_exit 0", task: engine.Task{Module: wat("exit")}, want: "ok", check: exitCode(0)},
		{name: "proc_exit 1", task: engine.Task{Module: wat("exit"), Args: make([]string, 1)}, want: "exit 1", check: exitCode(1)},
		{name: "proc_exit 255", task: engine.Task{Module: wat("exit"), Args: make([]string, 255)}, want: "exit 255", check: exitCode(255)},
		{name: "input larger than the output limit", task: engine.Task{Module: wat("echo"), Func: "echo",
			Input: []byte(strings.Repeat("x", 2*hostileOutLimit)), Timeout: long}, want: "output limit", check: atMostLimit},
		// table.grow by 2^31-1 elements (16 GiB of host memory) is refused
		// the way the spec allows: it returns -1.
		{name: "table bomb", task: engine.Task{Module: wat("tablegrow"), Func: "grow", Params: []uint64{0x7fffffff}}, want: "ok",
			check: func(t *testing.T, res engine.Result) { assert.Equal(t, []uint64{0xffffffff}, res.Values) }},
	}
	for _, fn := range []string{"read_neg", "read_huge", "read_past", "write_oob", "write_wrap", "write_neglen", "error_oob"} {
		hs = append(hs, hostile{name: "ABI misuse " + fn, task: engine.Task{Module: wat("abuse"), Func: fn, Input: []byte("input")},
			want: "trap out of bounds"})
	}
	return hs
}

// badModules cannot even be compiled; they are compiled on the pool's engine
// while the pool runs, to show a bad plugin costs nothing but its own error.
var badModules = []struct{ file, want string }{
	{"unknown_import", "bad module"},
	{"not_wasm", "bad module"},
	{"truncated", "bad module"},
	{"count_bomb", "bad module"},
	{"locals_bomb", "bad module"},
	{"bigmem", "memory limit"}, // a declared minimum of 512 MiB
}

// goodTask is the n-th well-behaved task of the mix, and a check of its
// result that only the right answer passes.
func goodTask(t *testing.T, e *engine.Engine, n int) (engine.Task, func(engine.Result, error) error) {
	s := strconv.Itoa(n)
	want := func(got, want string, err error) error {
		if err != nil {
			return err
		}
		if got != want {
			return fmt.Errorf("got %q, want %q", got, want)
		}
		return nil
	}
	switch n % 3 {
	case 0:
		return engine.Task{Module: goModule(t, e, "upper"), Func: "upper", Input: []byte("good " + s)},
			func(res engine.Result, err error) error { return want(string(res.Output), "GOOD "+s, err) }
	case 1:
		return engine.Task{Module: watModule(t, e, "echo"), Func: "echo", Input: []byte("echo " + s)},
			func(res engine.Result, err error) error { return want(string(res.Output), "echo "+s, err) }
	default:
		return engine.Task{Module: watModule(t, e, "add"), Func: "add", Params: []uint64{uint64(n), 1}},
			func(res engine.Result, err error) error {
				return want(fmt.Sprint(res.Values), fmt.Sprintf("[%d]", n+1), err)
			}
	}
}

// runHostileRound submits every hostile task among three times as many
// good ones, compiles the bad modules meanwhile, and checks every outcome.
func runHostileRound(t *testing.T, e *engine.Engine, p *pool.Pool, hs []hostile) {
	t.Helper()
	ctx := within(t)
	type good struct {
		f     *future.Future[engine.Result]
		check func(engine.Result, error) error
	}
	var goods []good
	bad := make([]*future.Future[engine.Result], len(hs))
	n := 0
	for i, h := range hs {
		for range 3 {
			task, check := goodTask(t, e, n)
			n++
			goods = append(goods, good{p.Submit(ctx, task), check})
		}
		bad[i] = p.Submit(ctx, h.task)
		if i < len(badModules) {
			bm := badModules[i]
			_, err := e.CompileFile(ctx, testmod.WAT(t, bm.file))
			assert.Equal(t, bm.want, errorClass(err), "compiling %s: %v", bm.file, err)
		}
	}
	for i, h := range hs {
		res, err := bad[i].Result(ctx)
		if assert.Equal(t, h.want, errorClass(err), "%s: %v", h.name, err) && h.check != nil {
			h.check(t, res)
		}
	}
	for i, g := range goods {
		res, err := g.f.Result(ctx)
		assert.NoError(t, g.check(res, err), "good task %d", i)
	}
}

// Every hostile case runs in a pool that is running good tasks, in both
// modes: each ends with exactly its own error, every good task gets its
// right answer, the pool keeps all its workers, and the host keeps no
// memory of any of it.
func TestHostileModulesInABusyPool(t *testing.T) {
	for _, mode := range modes {
		t.Run(mode.String(), func(t *testing.T) {
			const workers = 2
			b := newBarrier(workers)
			e := testEngine(t, engine.Config{MemoryLimitBytes: hostileMemLimit, OutputLimitBytes: hostileOutLimit}, b)
			p := newPool(t, e, pool.Config{Mode: mode, Workers: workers})
			hs := hostileTasks(t, e)
			barrier := watModule(t, e, "barrier")

			// The first round also compiles every module into each worker's
			// runtime and warms the good modules' instances: memory the
			// pool keeps on purpose, so it is measured from after it.
			runHostileRound(t, e, p, hs)
			assertFullCapacity(t, p, barrier, workers)
			before := heapInUse()
			for range 3 {
				runHostileRound(t, e, p, hs)
			}
			assertFullCapacity(t, p, barrier, workers)
			after := heapInUse()
			t.Logf("live heap before %d MiB, after three rounds %d MiB", before>>20, after>>20)
			assert.Less(t, int64(after)-int64(before), int64(hostileHeapSlack),
				"the live heap grew by %d MiB over three rounds", (int64(after)-int64(before))>>20)

			st := p.Stats()
			assert.Zero(t, st.Running)
			assert.Zero(t, st.Queued)
			assert.Equal(t, st.Submitted, st.Succeeded+st.Failed+st.Cancelled+st.TimedOut, "every task is accounted for")
		})
	}
}

// A pool whose every worker is stuck in a guest asleep for an hour still
// closes at once: Close interrupts running tasks, sleeping ones included.
func TestCloseInterruptsSleepingGuests(t *testing.T) {
	for _, mode := range modes {
		t.Run(mode.String(), func(t *testing.T) {
			b := newBarrier(1) // no waiting: it only reports each guest that enters
			e := testEngine(t, engine.Config{}, b)
			p, err := pool.New(e, pool.Config{Mode: mode, Workers: 2})
			require.NoError(t, err)
			nap := watModule(t, e, "nap")
			ctx := within(t)
			var fs []*future.Future[engine.Result]
			for range 4 {
				fs = append(fs, p.Submit(ctx, engine.Task{Module: nap, Func: "run"}))
			}
			for range 2 { // both workers are about to sleep
				<-b.entered
			}
			closed := make(chan error, 1)
			go func() { closed <- p.Close() }()
			select {
			case err := <-closed:
				require.NoError(t, err)
			case <-ctx.Done():
				t.Fatal("Close waited on guests asleep for an hour")
			}
			for _, f := range fs {
				_, err := f.Result(ctx)
				assert.Equal(t, "cancelled", errorClass(err), "%v", err)
			}
		})
	}
}
