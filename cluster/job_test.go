package cluster_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wasmpool/wasmpool/cluster"
	"github.com/wasmpool/wasmpool/cluster/embedded"
	"github.com/wasmpool/wasmpool/engine"
	"github.com/wasmpool/wasmpool/future"
	"github.com/wasmpool/wasmpool/internal/testmod"
)

// Named jobs and fate-sharing. Runs are counted by the workers' own
// counters: a key whose result was kept and that ran again would show as
// one Finished more than there are keys.

// A submitter process for the kill test is this test binary run again with
// submitterEnv set (see submitterMain).
const (
	submitterEnv       = "WASMPOOL_TEST_SUBMITTER" // the NATS URL
	submitterNSEnv     = "WASMPOOL_TEST_SUBMITTER_NS"
	submitterModuleEnv = "WASMPOOL_TEST_SUBMITTER_MODULE"
	submitterGateEnv   = "WASMPOOL_TEST_SUBMITTER_GATE" // the barrier module
)

func jobTask(m *engine.Module, i int) engine.Task {
	return engine.Task{Module: m, Func: "upper", Input: fmt.Appendf(nil, "item %d", i)}
}

// collect waits for every future and counts, by content, the lost and the
// wrong results.
func collect(t *testing.T, ctx context.Context, fs []*future.Future[engine.Result]) (lost, wrong int) {
	t.Helper()
	for i, f := range fs {
		res, err := f.Result(ctx)
		switch {
		case err != nil:
			t.Errorf("task %d: %v", i, err)
			lost++
		case string(res.Output) != fmt.Sprintf("ITEM %d", i):
			t.Errorf("task %d: got %q", i, res.Output)
			wrong++
		}
	}
	return lost, wrong
}

// settled waits for the worker to have counted every task it ran: a
// job's future settles from the task's record, which the worker writes
// before it counts the task.
func settled(t *testing.T, w *cluster.Worker) {
	t.Helper()
	require.Eventually(t, func() bool { return w.Stats().Running == 0 }, 10*time.Second, time.Millisecond)
}

// A job whose submitter closes part-way, without waiting, is resumed by a
// submitter attaching to it: the finished keys come from the kept results
// (no worker runs them again), the rest are run, each once.
func TestJobResumesAfterItsSubmitterCloses(t *testing.T) {
	s := startServer(t, embedded.ServerConfig{})
	set := settings(t, time.Second)
	e := newEngine(t, nil)
	w := newWorker(t, connect(t, s, "worker"), e, set, 2)
	upper := gomod(t, e, "upper")
	ctx := within(t)
	const n, first = 40, 10
	cfg := cluster.Config{Settings: set, Job: "resume"}

	x1, err := cluster.New(ctx, connect(t, s, "first"), cfg)
	require.NoError(t, err)
	fs := make([]*future.Future[engine.Result], n)
	for i := range n {
		fs[i] = x1.Submit(ctx, jobTask(upper, i))
		if i == first-1 {
			for _, f := range fs[:first] {
				require.NoError(t, f.Err(ctx))
			}
		}
	}
	require.NoError(t, x1.Close()) // the rest queued, running, or not yet sent

	x2 := newExecutor(t, connect(t, s, "second"), cfg)
	fs2 := make([]*future.Future[engine.Result], n)
	for i := range n {
		fs2[i] = x2.Submit(ctx, jobTask(upper, i))
	}
	lost, wrong := collect(t, ctx, fs2)
	assert.Zero(t, lost, "lost")
	assert.Zero(t, wrong, "wrong")
	st := x2.Stats()
	settled(t, w)
	runs := w.Stats().Finished
	assert.GreaterOrEqual(t, st.Resumed, int64(first), "the keys finished before the first submitter closed come from the job")
	assert.Equal(t, int64(n), runs, "each key ran once")

	info, tasks, err := cluster.Job(ctx, connect(t, s, "admin"), set, "resume")
	require.NoError(t, err)
	assert.Equal(t, n, info.Done)
	assert.Equal(t, n, info.Total)
	assert.Len(t, tasks, n)
	jobs, err := cluster.Jobs(ctx, connect(t, s, "admin2"), set)
	require.NoError(t, err)
	require.Len(t, jobs, 1)
	assert.Equal(t, "resume", jobs[0].Name)

	// A third submitter has every result at once; a deleted job has none.
	x3 := newExecutor(t, connect(t, s, "third"), cfg)
	var res engine.Result
	for range 2 { // the second time, read again from the broker
		res, err = x3.SubmitWith(ctx, jobTask(upper, 7), cluster.TaskOptions{Key: "#7"}).Result(ctx)
		require.NoError(t, err)
		assert.Equal(t, "ITEM 7", string(res.Output))
	}
	assert.Equal(t, int64(2), x3.Stats().Resumed)
	require.NoError(t, x3.Close())
	require.NoError(t, cluster.DeleteJob(ctx, connect(t, s, "admin3"), set, "resume"))
	_, _, err = cluster.Job(ctx, connect(t, s, "admin4"), set, "resume")
	assert.ErrorIs(t, err, cluster.ErrNoJob)
	// A job made again after its deletion runs its keys again.
	x4 := newExecutor(t, connect(t, s, "fourth"), cfg)
	res, err = x4.SubmitWith(ctx, jobTask(upper, 7), cluster.TaskOptions{Key: "#7"}).Result(ctx)
	require.NoError(t, err)
	assert.Equal(t, "ITEM 7", string(res.Output))
	assert.Zero(t, x4.Stats().Resumed)
	settled(t, w)
	assert.Equal(t, int64(n+1), w.Stats().Finished)
	t.Logf("%d tasks, the submitter closed after %d: %d resumed from the job, %d attached; %d runs", n, first, st.Resumed, st.Attached, runs)
}

// A submitter killed (SIGKILL) mid-job loses nothing: a submitter attaching
// to the job collects every result, right by its content, waits for the
// tasks the dead one left queued rather than sending them again, and no
// key whose result was kept runs again. The first worker (one slot) is
// held in the gate of task gateAt, so that the tasks after it are still
// queued when the second submitter attaches; it then closes, handing the
// gated task back, and another worker takes over.
func TestJobResumesAfterItsSubmitterIsKilled(t *testing.T) {
	s := startServer(t, embedded.ServerConfig{Listen: "127.0.0.1:-1"})
	set := settings(t, time.Second)
	g, entered := localGate("block")
	w1 := newWorker(t, connect(t, s, "worker1"), newEngine(t, g), set, 1)
	e := newEngine(t, nil)
	upper := gomod(t, e, "upper")
	ctx := within(t)
	const n, gateAt = 60, 20

	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), submitterEnv+"="+s.ClientURL(), submitterNSEnv+"="+set.Namespace,
		submitterModuleEnv+"="+testmod.Path(t, "upper"), submitterGateEnv+"="+testmod.WAT(t, "barrier"),
		"WASMPOOL_TEST_SUBMITTER_N="+strconv.Itoa(n), "WASMPOOL_TEST_SUBMITTER_GATE_AT="+strconv.Itoa(gateAt))
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	in, err := cmd.StdinPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	exited := make(chan struct{})
	t.Cleanup(func() { _ = cmd.Process.Kill(); <-exited })
	lines := bufio.NewScanner(out)
	next := func(want string) {
		t.Helper()
		require.True(t, lines.Scan(), "the submitter process ended early")
		require.Equal(t, want, lines.Text())
	}
	for range gateAt {
		next("result")
	}
	next("gated")
	<-entered // the worker holds the gated task: the rest will queue
	_, err = in.Write([]byte("go\n"))
	require.NoError(t, err)
	next("queued")
	require.NoError(t, cmd.Process.Kill())
	killed := time.Now()
	go func() { _ = cmd.Wait(); close(exited) }()
	<-exited

	x := newExecutor(t, connect(t, s, "resumer"), cluster.Config{Settings: set, Job: "killed"})
	gated := wat(t, e, "barrier")
	fs := make([]*future.Future[engine.Result], n)
	for i := range n {
		task := jobTask(upper, i)
		if i == gateAt {
			task = engine.Task{Module: gated, Func: "run"}
		}
		fs[i] = x.Submit(ctx, task)
	}
	require.NoError(t, x.Flush(ctx))
	attached := time.Since(killed)
	st := x.Stats()
	require.NoError(t, w1.Close()) // hands the gated task back
	w2 := newWorker(t, connect(t, s, "worker2"), e, set, 2)
	lost, wrong := 0, 0
	for i, f := range fs {
		res, err := f.Result(ctx)
		switch {
		case err != nil:
			t.Errorf("task %d: %v", i, err)
			lost++
		case i != gateAt && string(res.Output) != fmt.Sprintf("ITEM %d", i):
			t.Errorf("task %d: got %q", i, res.Output)
			wrong++
		}
	}
	recovery := time.Since(killed)
	assert.Zero(t, lost, "lost")
	assert.Zero(t, wrong, "wrong")
	settled(t, w2)
	runs := w1.Stats().Finished + w2.Stats().Finished
	assert.GreaterOrEqual(t, st.Resumed, int64(gateAt))
	assert.Positive(t, st.Attached, "the tasks the dead submitter left queued are waited for, not sent again")
	assert.Equal(t, int64(n), runs, "each key ran once")
	t.Logf("%d tasks, the submitter killed with %d results kept: %d lost, %d wrong, %d resumed from the job, %d attached, %d runs; "+
		"resumed (every key kept, waited for or sent) %v after the kill, all collected %v after it",
		n, gateAt, lost, wrong, st.Resumed, st.Attached, runs, attached.Round(time.Millisecond), recovery.Round(time.Millisecond))
}

// submitterMain is the submitter process: it submits the job's tasks and
// prints a line for each result, until killed.
func submitterMain(url string) int {
	nc, err := cluster.Connect(url, "test submitter")
	if err != nil {
		return fail("%v", err)
	}
	defer nc.Close()
	pass := &gate{mode: "pass", entered: func() {}} // the barrier module's import, for compiling it
	e, err := engine.New(context.Background(), engine.Config{CacheDir: testmod.CompileCache(), HostModules: []engine.HostModule{pass.hostModule()}})
	if err != nil {
		return fail("%v", err)
	}
	m, err := e.CompileFile(context.Background(), os.Getenv(submitterModuleEnv))
	if err != nil {
		return fail("%v", err)
	}
	n, _ := strconv.Atoi(os.Getenv("WASMPOOL_TEST_SUBMITTER_N"))
	x, err := cluster.New(context.Background(), nc, cluster.Config{
		Settings: cluster.Settings{Namespace: os.Getenv(submitterNSEnv), AckWait: time.Second}, Job: "killed", Window: 32,
	})
	if err != nil {
		return fail("%v", err)
	}
	gated, err := e.CompileFile(context.Background(), os.Getenv(submitterGateEnv))
	if err != nil {
		return fail("%v", err)
	}
	gateAt, _ := strconv.Atoi(os.Getenv("WASMPOOL_TEST_SUBMITTER_GATE_AT"))
	// The tasks before the gate, their results collected; the gated one;
	// once the test says its worker holds it, the rest, left queued.
	submit := func(from, to int) []*future.Future[engine.Result] {
		var fs []*future.Future[engine.Result]
		for i := from; i < to; i++ {
			task := jobTask(m, i)
			if i == gateAt {
				task = engine.Task{Module: gated, Func: "run"}
			}
			fs = append(fs, x.Submit(context.Background(), task))
		}
		if err := x.Flush(context.Background()); err != nil {
			panic(err)
		}
		return fs
	}
	for _, f := range submit(0, gateAt) {
		if err := f.Err(context.Background()); err != nil {
			return fail("%v", err)
		}
		fmt.Println("result")
	}
	submit(gateAt, gateAt+1)
	fmt.Println("gated")
	if _, err := bufio.NewReader(os.Stdin).ReadString('\n'); err != nil {
		return fail("%v", err)
	}
	submit(gateAt+1, n)
	fmt.Println("queued")
	select {} // killed before it gets here
}

// A key the job has for other work is refused, not answered with the
// other work's result; a bad job name is refused at once.
func TestJobKeyReusedForOtherWorkIsAnError(t *testing.T) {
	s := startServer(t, embedded.ServerConfig{})
	set := settings(t, time.Second)
	e := newEngine(t, nil)
	newWorker(t, connect(t, s, "worker"), e, set, 1)
	upper := gomod(t, e, "upper")
	ctx := within(t)
	nc := connect(t, s, "x")

	x := newExecutor(t, nc, cluster.Config{Settings: set, Job: "keys"})
	res, err := x.SubmitWith(ctx, jobTask(upper, 1), cluster.TaskOptions{Key: "a"}).Result(ctx)
	require.NoError(t, err)
	assert.Equal(t, "ITEM 1", string(res.Output))
	_, err = x.SubmitWith(ctx, jobTask(upper, 2), cluster.TaskOptions{Key: "a"}).Result(ctx)
	require.ErrorIs(t, err, cluster.ErrKeyReused)
	assert.Contains(t, err.Error(), `job keys: key "a"`)
	var ee *engine.Error
	require.ErrorAs(t, err, &ee)
	assert.Equal(t, "upper.wasm", ee.Module)

	_, err = cluster.New(ctx, nc, cluster.Config{Settings: set, Job: "no spaces"})
	require.ErrorIs(t, err, cluster.ErrBadName)
	assert.Contains(t, err.Error(), `job "no spaces"`)
	_, _, err = cluster.Job(ctx, nc, set, "nosuchjob")
	require.ErrorIs(t, err, cluster.ErrNoJob)
}

// CancelJob stops a job's running task and removes its queued one: its
// attached submitter's futures end cancelled, and no worker finishes
// either.
func TestCancelJobStopsItsTasks(t *testing.T) {
	s := startServer(t, embedded.ServerConfig{})
	set := settings(t, time.Second)
	g, entered := localGate("block")
	e := newEngine(t, g)
	w := newWorker(t, connect(t, s, "worker"), e, set, 1)
	gated := wat(t, e, "barrier")
	ctx := within(t)
	x := newExecutor(t, connect(t, s, "x"), cluster.Config{Settings: set, Job: "doomed"})
	running := x.SubmitWith(ctx, engine.Task{Module: gated, Func: "run"}, cluster.TaskOptions{Key: "running"})
	queued := x.SubmitWith(ctx, engine.Task{Module: gated, Func: "run"}, cluster.TaskOptions{Key: "queued"})
	<-entered
	require.NoError(t, x.Flush(ctx))

	n, err := cluster.CancelJob(ctx, connect(t, s, "admin"), set, "doomed")
	require.NoError(t, err)
	assert.Equal(t, 2, n)
	for _, f := range []*future.Future[engine.Result]{running, queued} {
		require.ErrorIs(t, f.Err(ctx), engine.ErrCancelled)
	}
	info, _, err := cluster.Job(ctx, connect(t, s, "admin2"), set, "doomed")
	require.NoError(t, err)
	assert.Equal(t, 2, info.Cancelled)
	require.Eventually(t, func() bool { return w.Stats().Running == 0 }, 10*time.Second, 10*time.Millisecond)
	assert.Zero(t, w.Stats().Finished)

	// Submitted to the job again, the cancelled keys run anew.
	close(g.release)
	for _, key := range []string{"running", "queued"} {
		require.NoError(t, x.SubmitWith(ctx, engine.Task{Module: gated, Func: "run"}, cluster.TaskOptions{Key: key}).Err(ctx), key)
	}
	info, _, err = cluster.Job(ctx, connect(t, s, "admin3"), set, "doomed")
	require.NoError(t, err)
	assert.Equal(t, 2, info.Done)
}

// The tasks of an anonymous submitter that dies are not run for nobody:
// its running task stops once its liveness record expires, and its queued
// ones are dropped by the worker that takes them.
func TestAnonymousTasksOfADeadSubmitterAreDropped(t *testing.T) {
	s := startServer(t, embedded.ServerConfig{})
	set := settings(t, 500*time.Millisecond) // the liveness records' TTL
	g, entered := localGate("block")
	e := newEngine(t, g)
	w := newWorker(t, connect(t, s, "worker"), e, set, 1)
	gated := wat(t, e, "barrier")
	ctx := within(t)
	nc, err := s.Connect("doomed submitter")
	require.NoError(t, err)
	x, err := cluster.New(ctx, nc, cluster.Config{Settings: set})
	require.NoError(t, err)
	const n = 3
	for range n {
		x.Submit(ctx, engine.Task{Module: gated, Func: "run"})
	}
	require.NoError(t, x.Flush(ctx))
	<-entered
	died := time.Now()
	nc.Close() // the submitter is gone without a word

	require.Eventually(t, func() bool { return w.Stats().Cancelled == n }, 20*time.Second, 10*time.Millisecond,
		"the worker drops the dead submitter's tasks")
	dropped := time.Since(died)
	st := w.Stats()
	assert.Zero(t, st.Finished, "no task ran to its end for nobody")
	assert.Zero(t, len(entered), "no queued task began")
	admin := connect(t, s, "admin")
	require.Eventually(t, func() bool {
		bs, err := cluster.ReadBrokerStats(ctx, admin, set)
		return err == nil && bs.Queued+bs.InFlight == 0
	}, 10*time.Second, 10*time.Millisecond, "nothing is left in the queue")
	_ = x.Close() // its connection is closed: nothing to remove with
	t.Logf("a dead submitter's %d tasks dropped %v after it died (AckWait %v)", n, dropped.Round(time.Millisecond), set.AckWait)
}

// A clean run leaves nothing on the broker: no results (those stored in
// the result stream, acknowledged as the executor closes, included), no
// consumer, no liveness record.
func TestCleanRunLeavesNothingBehind(t *testing.T) {
	s := startServer(t, embedded.ServerConfig{})
	set := settings(t, time.Second)
	e := newEngine(t, nil)
	newWorker(t, connect(t, s, "worker"), e, set, 2)
	upper := gomod(t, e, "upper")
	ctx := within(t)
	x, err := cluster.New(ctx, connect(t, s, "x"), cluster.Config{Settings: set})
	require.NoError(t, err)
	require.NoError(t, cluster.RefuseAnswers(x)) // every result through the stream
	const n = 50
	fs := make([]*future.Future[engine.Result], n)
	for i := range n {
		fs[i] = x.Submit(ctx, jobTask(upper, i))
	}
	lost, wrong := collect(t, ctx, fs)
	require.Zero(t, lost+wrong)
	require.NoError(t, x.Close())

	js, err := jetstream.New(connect(t, s, "admin"))
	require.NoError(t, err)
	st, err := js.Stream(ctx, strings.ToUpper(set.Namespace)+"_RESULTS")
	require.NoError(t, err)
	info, err := st.Info(ctx)
	require.NoError(t, err)
	assert.Zero(t, info.State.Msgs, "results left behind")
	assert.Zero(t, info.State.Consumers, "consumers left behind")
	kv, err := js.KeyValue(ctx, set.Namespace+"_submitters")
	require.NoError(t, err)
	keys, err := kv.ListKeys(ctx)
	require.NoError(t, err)
	var left []string
	for k := range keys.Keys() {
		left = append(left, k)
	}
	assert.Empty(t, left, "liveness records left behind")
}

// A submitter cut off from the broker for longer than the AckWait is taken
// for dead: the workers drop its tasks, and when it is back its futures
// fail as unavailable instead of waiting for results that will not come.
func TestSilentSubmitterIsPresumedDead(t *testing.T) {
	s := startServer(t, embedded.ServerConfig{})
	set := settings(t, 500*time.Millisecond)
	g, entered := localGate("block")
	e := newEngine(t, g)
	w := newWorker(t, connect(t, s, "worker"), e, set, 1)
	gated := wat(t, e, "barrier")
	ctx := within(t)
	x := newExecutor(t, connect(t, s, "x"), cluster.Config{Settings: set})
	fs := []*future.Future[engine.Result]{x.Submit(ctx, engine.Task{Module: gated, Func: "run"}), x.Submit(ctx, engine.Task{Module: gated, Func: "run"})}
	<-entered
	resume := cluster.SilenceLiveness(x)
	require.Eventually(t, func() bool { return w.Stats().Cancelled == 2 }, 20*time.Second, 10*time.Millisecond)
	resume()
	for _, f := range fs {
		require.ErrorIs(t, f.Err(ctx), cluster.ErrUnavailable)
	}
	assert.Contains(t, fs[0].Err(ctx).Error(), "out of touch with the broker for longer than its record lives")
	assert.Zero(t, w.Stats().Finished)
	// Back in touch, it is alive again.
	close(g.release)
	require.NoError(t, x.Submit(ctx, engine.Task{Module: gated, Func: "run"}).Err(ctx))
}
