package main

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/wasmpool/wasmpool/cluster"
	"github.com/wasmpool/wasmpool/pool"
)

// workerFlags are the flags of `wasmpool worker`: where the cluster is, and
// the local pool its tasks run on.
type workerFlags struct {
	engineFlags
	isolationFlag
	child       bool // hidden: a worker process of a --isolation subprocess pool
	nats        string
	mode        string
	workers     int
	name        string
	namespace   string
	allowMounts bool
	labels      []string
	grace       time.Duration
	metrics     metricsFlag
	allowHostFlag
}

// workerCmd is "wasmpool worker": a worker of a NATS cluster, or, with the
// hidden --child flag, a worker process of a --isolation subprocess pool, which
// serves tasks over its stdin and stdout until the pool closes its stdin
// (wasmpool starts those itself; they are not run by hand).
func (a *app) workerCmd() *cobra.Command {
	var f workerFlags
	cmd := &cobra.Command{
		Use:   "worker --nats URL",
		Short: "Serve a NATS cluster: run the tasks that map, batch or the Go API submit to it",
		Long: `Serve a NATS JetStream cluster as a worker: take tasks from it, one per free
slot (--workers), run them on a local pool (--mode), and send each result back
to whoever submitted it. Start as many workers on as many hosts as you like;
each task runs on one of them.

A worker that dies with a task loses it to another worker after the cluster's
ack deadline (serve-nats --ack-wait, 5s by default); a task that kills every
worker it is given fails after its max deliveries. Failures of the task itself (a trap, a
timeout, the memory limit) are its result and are not retried.

It advertises itself to the cluster (its name, slots, mode, --label labels,
the host capabilities it provides, whether it allows mounts, its memory limit
and its counts) for 'wasmpool cluster status'.

The module of a task is fetched from the cluster once per worker and kept
compiled (and in --cache-dir). Tasks may not mount this host's directories
unless --allow-mounts is given.

With --metrics ADDR it serves Prometheus metrics at http://ADDR/metrics: its
tasks by outcome and error kind, their queue wait, run time and fuel, what
is queued and running, instances built, worker processes crashed and
restarted, modules compiled and cache hits (names in the README).

With --isolation subprocess, each of its workers runs tasks in a worker
process of its own, as map and batch do.

SIGINT or SIGTERM stops taking tasks and lets the running ones finish for up
to --grace; what is still running then goes back to the queue for another
worker. A second signal stops at once.`,
		Example: `  wasmpool serve-nats --listen :4222                # on the broker host
  wasmpool worker --nats nats://broker:4222 --workers 8 --mode process
  wasmpool map upper.wasm --func upper --nats nats://broker:4222 *.txt`,
		Args: exactArgs(0, ""),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if f.child {
				return a.runChild(cmd)
			}
			return a.runWorker(cmd, &f)
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&f.nats, "nats", "", "URL of the NATS server or cluster to serve (required), e.g. nats://broker:4222")
	fs.StringVar(&f.mode, "mode", "thread", "worker kind: thread (warm instances reused) or process (a fresh instance per task)")
	fs.IntVar(&f.workers, "workers", 0, "tasks run at once (default: one per CPU)")
	fs.StringVar(&f.name, "name", "", `this worker's name in its logs and in results ("worker" in map and batch JSON lines; default HOST-PID)`)
	fs.StringVar(&f.namespace, "namespace", "", `the cluster's namespace, if it is not "wasmpool"`)
	fs.BoolVar(&f.allowMounts, "allow-mounts", false, "let tasks mount directories of this host")
	fs.StringArrayVar(&f.labels, "label", nil, "KEY=VALUE this worker advertises (repeat): what it has that tasks may need,\n"+
		"shown by 'wasmpool cluster status'")
	fs.DurationVar(&f.grace, "grace", 30*time.Second, "on SIGINT/SIGTERM, how long running tasks may take to finish")
	f.metrics.add(fs)
	f.engineFlags.add(fs)
	f.isolationFlag.add(fs)
	f.allowHostFlag.add(fs, "let tasks make HTTP requests (guest.HTTP) to this host: a name, *.domain, or an IP address (repeat); "+
		"a task's own hosts can only narrow these, and without the flag a task granted HTTP is refused")
	fs.BoolVar(&f.child, "child", false, "serve as a worker process over stdin and stdout")
	_ = fs.MarkHidden("child")
	return cmd
}

// runChild is "wasmpool worker --child": the worker process a --isolation
// process pool starts. Its configuration comes over the protocol, so no
// other flag applies.
func (a *app) runChild(cmd *cobra.Command) error {
	var others []string
	cmd.Flags().Visit(func(fl *pflag.Flag) {
		if fl.Name != "child" {
			others = append(others, "--"+fl.Name)
		}
	})
	if len(others) > 0 {
		return usagef("worker --child takes no other flag (got %s): its pool configures it", strings.Join(others, " "))
	}
	a.started("")
	// Its pool decides when it ends (it closes its stdin, or kills it): a
	// signal that reaches it anyway must not cut its tasks short.
	stopGrace.Store(-1)
	// The tasks name their hosts: the pool that sends them holds them to
	// its own --allow-host.
	if code := pool.RunChildWith(pool.ChildHost{Capabilities: clientCapabilities()}); code != exitOK {
		// RunChild said why on stderr.
		return &exitStatus{code: code}
	}
	return nil
}

func (a *app) runWorker(cmd *cobra.Command, f *workerFlags) error {
	if f.nats == "" {
		return usagef("worker: --nats URL is required")
	}
	pcfg := pool.Config{Workers: f.workers}
	if err := f.isolationFlag.apply(&pcfg); err != nil {
		return err
	}
	mode, err := pool.ParseMode(f.mode)
	if err != nil {
		return usagef("--mode: %v", err)
	}
	if f.workers < 0 {
		return usagef("--workers %d: want 1 or more (0: one per CPU)", f.workers)
	}
	if f.grace < 0 {
		return usagef("--grace %v: cannot be negative", f.grace)
	}
	labels, err := parseLabels(f.labels)
	if err != nil {
		return err
	}
	pcfg.Mode = mode
	if err := f.allowHostFlag.check(); err != nil {
		return err
	}
	f.engineFlags.capabilities = f.workerCapabilities()
	ctx := a.ctx
	e, err := f.newEngine(ctx, cmd.Flags(), a.stderr)
	if err != nil {
		return err
	}
	defer e.Close(context.WithoutCancel(ctx))
	a.started("")
	stopGrace.Store(int64(f.grace + time.Second))
	ms, err := f.metrics.listen()
	if err != nil {
		return err
	}
	defer ms.close()
	pcfg.OnTaskDone = ms.onTaskDone()
	nc, err := connectNATS(f.nats, "wasmpool worker "+f.name)
	if err != nil {
		return err
	}
	defer nc.Close()
	w, err := cluster.NewWorker(ctx, nc, e, cluster.WorkerConfig{
		Settings:    cluster.Settings{Namespace: f.namespace},
		Pool:        pcfg,
		Name:        f.name,
		AllowMounts: f.allowMounts,
		Labels:      labels,
		Logger:      workerLogger(a.stderr),
	})
	if err != nil {
		return err
	}
	if err := ms.serve(a.stderr, w, e); err != nil {
		return err
	}
	return serveUntilSignal(ctx, w, f.grace, a.stderr)
}

// serveUntilSignal waits for ctx to end (SIGINT, SIGTERM), then shuts the
// worker down within grace. A worker that stops by itself (its connection
// closed for good) is an error.
func serveUntilSignal(ctx context.Context, w *cluster.Worker, grace time.Duration, stderr io.Writer) error {
	select {
	case <-w.Done():
		_ = w.Close()
		return errors.New("the worker stopped: its NATS connection was closed")
	case <-ctx.Done():
	}
	if n := w.Stats().Running; n > 0 {
		report(stderr, "stopping: letting %d running task(s) finish (at most %v)", n, grace)
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), grace)
	defer cancel()
	if err := w.Shutdown(sctx); err != nil {
		report(stderr, "stopped after %v: the unfinished tasks went back to the queue", grace)
	}
	return nil
}

// workerLogger writes a worker's events as one line each on stderr.
func workerLogger(w io.Writer) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelInfo}))
}
