package benchcmp

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/wasmpool/wasmpool/cluster"
	"github.com/wasmpool/wasmpool/cluster/embedded"
	"github.com/wasmpool/wasmpool/engine"
	"github.com/wasmpool/wasmpool/future"
	"github.com/wasmpool/wasmpool/internal/testmod"
)

// Issue 16's throughput rows: wasmpool's cluster against a raw JetStream
// job queue on the same broker (rawjs.go), through the embedded node (a
// server, an executor and a local worker in this process) and through
// `wasmpool serve-nats` with two `wasmpool worker` processes on loopback.
// Each round measures the raw probe and wasmpool one after the other (their
// order alternating), for each task; a row's ratio is the median of its
// rounds' ratios, so a load passing over the machine weighs on both alike.

// ClusterRow is one setup running one task, wasmpool and the raw probe.
type ClusterRow struct {
	Setup    string  `json:"setup"`
	Task     string  `json:"task"`
	Slots    int     `json:"slots"`  // tasks run at once, over all workers
	Window   int     `json:"window"` // tasks submitted and not finished
	Wasmpool float64 `json:"wasmpool_tasks_per_s"`
	Raw      float64 `json:"raw_jetstream_tasks_per_s"`
	Ratio    float64 `json:"ratio"` // median over the rounds of wasmpool/raw
	Rounds   int     `json:"rounds"`
}

const (
	setupEmbedded  = "embedded node"
	setupServeNATS = "serve-nats + 2 worker processes"
	taskNoop       = "no-op"
	taskSleep      = "10 ms"
	// Issue 16's goals, wasmpool over raw JetStream.
	goalClusterNoop  = 0.5
	goalClusterSleep = 0.9
)

// clusterTask is one task both sides run: wasmpool's as a wasm task, the
// raw probe's as the same work in plain Go.
type clusterTask struct {
	name string
	task engine.Task
	work func()
	// slots is each worker's (the raw consumers' handlers): no-op tasks
	// want many, since a slot waits for its next task through the broker
	// (no prefetch); 10 ms tasks few, so that the machine is not the limit.
	slots  int
	window int // tasks in flight, per slot
}

// clusterSide is one way of running tasks: submit calls done once the task
// is finished.
type clusterSide func(i int, done func(error))

func measureCluster(ctx context.Context, c Config, e *engine.Engine, prog *progress) ([]ClusterRow, error) {
	root, err := testmod.Root()
	if err != nil {
		return nil, err
	}
	noop, err := e.CompileFile(ctx, filepath.Join(root, "testdata", "wat", "noop.wasm"))
	if err != nil {
		return nil, err
	}
	hostilePath, err := testmod.Build("hostile")
	if err != nil {
		return nil, err
	}
	sleeper, err := e.CompileFile(ctx, hostilePath)
	if err != nil {
		return nil, err
	}
	tasks := []clusterTask{
		{name: taskNoop, task: engine.Task{Module: noop, Func: "noop"}, work: func() {}, slots: 64, window: 32},
		{name: taskSleep, task: engine.Task{Module: sleeper, Func: "sleep", Input: []byte("10ms")},
			work: func() { time.Sleep(10 * time.Millisecond) }, slots: 8, window: 2},
	}
	rounds := max(3, min(7, int(5*time.Second/c.Budget)))
	var rows []ClusterRow
	prog.say("cluster: the embedded node")
	r, err := measureEmbedded(ctx, c, e, tasks, rounds, prog)
	if err != nil {
		return nil, fmt.Errorf("cluster, %s: %w", setupEmbedded, err)
	}
	rows = append(rows, r...)
	prog.say("cluster: serve-nats and two worker processes")
	r, err = measureServeNATS(ctx, c, tasks, rounds, prog)
	if err != nil {
		return nil, fmt.Errorf("cluster, %s: %w", setupServeNATS, err)
	}
	return append(rows, r...), nil
}

// measureEmbedded runs, for each task, an embedded node whose local worker
// has the slots of two workers, and the raw probe with one consumer as
// busy.
func measureEmbedded(ctx context.Context, c Config, e *engine.Engine, tasks []clusterTask, rounds int, prog *progress) ([]ClusterRow, error) {
	var rows []ClusterRow
	for _, t := range tasks {
		slots := 2 * t.slots
		cfg := embedded.Config{Executor: cluster.Config{MaxPending: 8192, Settings: cluster.Settings{Namespace: "bench"}}}
		cfg.Worker.Pool.Workers = slots
		row, err := func() (ClusterRow, error) {
			node, err := embedded.Start(ctx, e, cfg)
			if err != nil {
				return ClusterRow{}, err
			}
			defer node.Close()
			prod, err := node.Server.Connect("bench raw producer")
			if err != nil {
				return ClusterRow{}, err
			}
			defer prod.Close()
			wc, err := node.Server.Connect("bench raw consumer")
			if err != nil {
				return ClusterRow{}, err
			}
			defer wc.Close()
			return measureTask(ctx, c, setupEmbedded, node.Executor, prod, []*nats.Conn{wc}, slots, t, rounds, prog)
		}()
		if err != nil {
			return nil, err
		}
		rows = append(rows, row)
	}
	return rows, nil
}

// measureServeNATS starts the broker as the CLI, on loopback, and for each
// task two workers as the CLI, and submits to them from here.
func measureServeNATS(ctx context.Context, c Config, tasks []clusterTask, rounds int, prog *progress) ([]ClusterRow, error) {
	dir, err := os.MkdirTemp("", "wasmpool-bench-cluster-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	cli := c.WasmpoolBin
	if cli == "" {
		cli = filepath.Join(dir, "wasmpool")
		prog.say("cluster: building the CLI")
		if err := goBuild(ctx, cli, "./cmd/wasmpool"); err != nil {
			return nil, err
		}
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	url := fmt.Sprintf("nats://127.0.0.1:%d", port)
	cache := filepath.Join(testmod.CacheDir(), "bench-cluster-compiled")
	broker, err := startProc(ctx, cli, "serve-nats", "--listen", fmt.Sprintf("127.0.0.1:%d", port), "--store", "", "--namespace", "bench")
	if err != nil {
		return nil, err
	}
	defer broker.stop()
	var conns []*nats.Conn
	defer func() {
		for _, nc := range conns {
			nc.Close()
		}
	}()
	dial := func(name string) (*nats.Conn, error) {
		nc, err := dialRetry(ctx, url, name)
		if err == nil {
			conns = append(conns, nc)
		}
		return nc, err
	}
	prod, err := dial("bench producer")
	if err != nil {
		return nil, err
	}
	rawProd, err := dial("bench raw producer")
	if err != nil {
		return nil, err
	}
	var consumers []*nats.Conn
	for i := range 2 {
		nc, err := dial(fmt.Sprintf("bench raw consumer %d", i+1))
		if err != nil {
			return nil, err
		}
		consumers = append(consumers, nc)
	}
	x, err := cluster.New(ctx, prod, cluster.Config{MaxPending: 8192, Settings: cluster.Settings{Namespace: "bench"}})
	if err != nil {
		return nil, err
	}
	defer x.Close()
	var rows []ClusterRow
	for _, t := range tasks {
		row, err := func() (ClusterRow, error) {
			for i := range 2 {
				w, err := startProc(ctx, cli, "worker", "--nats", url, "--namespace", "bench", "--workers", strconv.Itoa(t.slots),
					"--name", fmt.Sprintf("bench-%d", i+1), "--cache-dir", cache)
				if err != nil {
					return ClusterRow{}, err
				}
				defer w.stop()
			}
			return measureTask(ctx, c, setupServeNATS, x, rawProd, consumers, t.slots, t, rounds, prog)
		}()
		if err != nil {
			return nil, err
		}
		rows = append(rows, row)
	}
	return rows, nil
}

// measureTask measures one task on one setup, round by round: the raw
// probe's consumers have slotsPer handlers each.
func measureTask(ctx context.Context, c Config, setup string, x *cluster.Executor, prod *nats.Conn, consumers []*nats.Conn,
	slotsPer int, t clusterTask, rounds int, prog *progress) (ClusterRow, error) {
	totalSlots := slotsPer * len(consumers)
	raw, err := newRawJetStream(ctx, prod, consumers, slotsPer, t.work)
	if err != nil {
		return ClusterRow{}, err
	}
	defer raw.close()
	task := t.task
	sides := [2]clusterSide{
		func(i int, done func(error)) {
			x.Submit(ctx, task).OnDone(func(f *future.Future[engine.Result]) { done(f.Err(ctx)) })
		},
		func(i int, done func(error)) { raw.submit(strconv.Itoa(i), done) },
	}
	window := t.window * totalSlots
	// Warm: the workers fetch and compile the module, the broker's streams
	// and the connections get going.
	for _, side := range sides {
		if _, err := drive(ctx, c.Budget/4, window, side); err != nil {
			return ClusterRow{}, err
		}
	}
	row := ClusterRow{Setup: setup, Task: t.name, Slots: totalSlots, Window: window, Rounds: rounds}
	var wp, rj, ratios []float64
	for i := range rounds {
		prog.say(fmt.Sprintf("cluster: %s, %s tasks, round %d/%d", setup, t.name, i+1, rounds))
		var rates [2]float64
		for k := range 2 {
			s := (k + i) % 2 // alternate which side goes first
			if rates[s], err = drive(ctx, c.Budget, window, sides[s]); err != nil {
				return ClusterRow{}, err
			}
		}
		wp, rj = append(wp, rates[0]), append(rj, rates[1])
		ratios = append(ratios, rates[0]/rates[1])
	}
	row.Wasmpool, row.Raw, row.Ratio = medianFloat(wp), medianFloat(rj), medianFloat(ratios)
	return row, nil
}

// drive keeps window tasks in flight for d, then waits for the last, and
// returns the tasks finished per second.
func drive(ctx context.Context, d time.Duration, window int, submit clusterSide) (float64, error) {
	sem := make(chan struct{}, window)
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
	)
	done := func(err error) {
		if err != nil {
			mu.Lock()
			if first == nil {
				first = err
			}
			mu.Unlock()
		}
		<-sem
		wg.Done()
	}
	start := time.Now()
	n := 0
	for time.Since(start) < d && ctx.Err() == nil {
		sem <- struct{}{}
		wg.Add(1)
		submit(n, done)
		n++
	}
	wg.Wait()
	elapsed := time.Since(start)
	if first != nil {
		return 0, first
	}
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	return float64(n) / elapsed.Seconds(), nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// dialRetry connects once the broker listens (it is starting).
func dialRetry(ctx context.Context, url, name string) (*nats.Conn, error) {
	deadline := time.Now().Add(20 * time.Second)
	for {
		nc, err := cluster.Connect(url, name)
		if err == nil {
			return nc, nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return nil, err
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// proc is a CLI process the cluster rows started.
type proc struct {
	cmd  *exec.Cmd
	done chan struct{}
}

func startProc(ctx context.Context, cli string, args ...string) (*proc, error) {
	cmd := exec.CommandContext(ctx, cli, args...)
	cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &proc{cmd: cmd, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(p.done) }()
	return p, nil
}

// stop asks the process to stop (SIGTERM), then kills it.
func (p *proc) stop() {
	_ = p.cmd.Process.Signal(os.Interrupt)
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

func (r *Report) clusterTargets() []Target {
	var ts []Target
	for _, setup := range []string{setupEmbedded, setupServeNATS} {
		for _, task := range []string{taskNoop, taskSleep} {
			goal := goalClusterNoop
			if task == taskSleep {
				goal = goalClusterSleep
			}
			t := Target{Name: fmt.Sprintf("Cluster, %s: %s tasks/s vs raw JetStream (median ratio)", setup, task),
				Unit: "ratio", Goal: fmt.Sprintf(">= %.1f", goal)}
			i := slices.IndexFunc(r.Cluster, func(row ClusterRow) bool { return row.Setup == setup && row.Task == task })
			if i >= 0 && r.Cluster[i].Ratio > 0 {
				row := r.Cluster[i]
				t.Value, t.Display, t.Met = row.Ratio, fmtRatio(row.Ratio)+"x", met(row.Ratio >= goal)
				t.Anchor = fmt.Sprintf("wasmpool %s/s, raw JetStream %s/s, %d slots, %d rounds",
					fmtRate(row.Wasmpool), fmtRate(row.Raw), row.Slots, row.Rounds)
			}
			ts = append(ts, t)
		}
	}
	return ts
}

// writeCluster prints the cluster rows.
func (r *Report) writeCluster(w io.Writer) {
	if len(r.Cluster) == 0 {
		return
	}
	fmt.Fprint(w, `
cluster (issue 16): tasks/s with a window of tasks in flight, against a raw JetStream job
queue on the same broker (work-queue stream, pull consumer fetching in batches, core
replies, the same work in plain Go, as many handlers as wasmpool has slots); rounds
interleaved, medians; ratio: the median of the rounds' wasmpool/raw
`)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "setup\ttask\tslots\twindow\twasmpool\traw JetStream\tratio\t")
	for _, row := range r.Cluster {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%s\t%s\t%sx\t\n", row.Setup, row.Task, row.Slots, row.Window,
			fmtRate(row.Wasmpool), fmtRate(row.Raw), fmtRatio(row.Ratio))
	}
	_ = tw.Flush()
}
