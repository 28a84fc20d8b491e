package main

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/wasmpool/wasmpool/cluster"
	"github.com/wasmpool/wasmpool/cluster/embedded"
	"github.com/wasmpool/wasmpool/pool"
)

type serveFlags struct {
	engineFlags
	listen    string
	monitor   string
	store     string
	token     string
	namespace string
	ackWait   time.Duration
	mode      string
	workers   int
	grace     time.Duration
	metrics   metricsFlag
}

func (a *app) serveNATSCmd() *cobra.Command {
	var f serveFlags
	cmd := &cobra.Command{
		Use:   "serve-nats",
		Short: "Run a NATS JetStream broker for a small team's wasmpool cluster",
		Long: `Run a NATS server with JetStream inside wasmpool: the broker of a cluster
for a small team, with no other software to install. Workers on other hosts
join it with 'wasmpool worker --nats URL'; map and batch submit to it with
--nats URL. For a real clustered broker, point them at an existing NATS
cluster instead.

Queued tasks are kept in --store, so they survive a restart of this command
(--store "" keeps them in memory). --ack-wait is how long a silent worker
keeps a task before it goes to another: how long a dead worker's tasks wait
(5s by default); it applies to an existing --store too. --workers N also runs N local
workers in this process (default none).

The server has no authentication unless --token is given; then clients put
it in their URL: nats://TOKEN@host:4222.

With --monitor ADDR it serves NATS's own monitoring endpoints at
http://ADDR (/varz, /jsz, /connz...: what NATS tools and dashboards read);
they take no token, so bind them where only operators reach (127.0.0.1).
'wasmpool cluster status --nats URL' shows the cluster's workers and queue.

With --metrics ADDR it serves Prometheus metrics at http://ADDR/metrics: the
cluster's queue depth, tasks in flight, free worker slots and workers
connected, and with --workers those of its local workers (names in the
README).`,
		Example: `  wasmpool serve-nats --listen :4222 --token s3cret
  wasmpool worker --nats nats://s3cret@broker:4222 --workers 8      # on each worker host`,
		Args: exactArgs(0, ""),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.runServeNATS(cmd, &f)
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&f.listen, "listen", ":4222", "address to listen on, HOST:PORT (port -1: any free port)")
	fs.StringVar(&f.monitor, "monitor", "", "serve NATS's monitoring endpoints (/varz, /jsz...) at HOST:PORT, e.g. 127.0.0.1:8222 (no token)")
	fs.StringVar(&f.store, "store", defaultStoreDir(), `directory that keeps queued tasks across restarts ("" for memory)`)
	fs.StringVar(&f.token, "token", "", "require clients to give this token (nats://TOKEN@host:port)")
	fs.StringVar(&f.namespace, "namespace", "", `the cluster's namespace (default "wasmpool")`)
	fs.DurationVar(&f.ackWait, "ack-wait", cluster.DefaultAckWait, "how long a silent (dead) worker keeps a task before it goes to another;\n"+
		"applied to an existing --store too")
	fs.StringVar(&f.mode, "mode", "thread", "local workers' kind: thread or process")
	fs.IntVar(&f.workers, "workers", 0, "local worker slots to run in this process (default none)")
	fs.DurationVar(&f.grace, "grace", 30*time.Second, "on SIGINT/SIGTERM, how long local running tasks may take to finish")
	f.metrics.add(fs)
	f.engineFlags.add(fs)
	return cmd
}

// defaultStoreDir is wasmpool/nats under the user's cache directory.
func defaultStoreDir() string {
	d, err := os.UserCacheDir()
	if err != nil {
		return ""
	}
	return filepath.Join(d, "wasmpool", "nats")
}

func (a *app) runServeNATS(cmd *cobra.Command, f *serveFlags) error {
	mode, err := pool.ParseMode(f.mode)
	if err != nil {
		return usagef("--mode: %v", err)
	}
	if f.workers < 0 || f.ackWait <= 0 || f.grace < 0 {
		return usagef("--workers, --ack-wait and --grace cannot be negative (and --ack-wait not 0)")
	}
	a.started("")
	if err := checkListen("--listen", f.listen); err != nil {
		return err
	}
	if f.monitor != "" {
		if err := checkListen("--monitor", f.monitor); err != nil {
			return err
		}
	}
	ms, err := f.metrics.listen()
	if err != nil {
		return err
	}
	defer ms.close()
	stopGrace.Store(int64(f.grace + time.Second))
	ctx := a.ctx
	srv, err := embedded.StartServer(embedded.ServerConfig{StoreDir: f.store, Listen: f.listen, Token: f.token, Monitor: f.monitor})
	if err != nil {
		return err
	}
	defer srv.Shutdown()
	set := cluster.Settings{Namespace: f.namespace, AckWait: f.ackWait, Memory: f.store == ""}
	nc, err := srv.Connect("wasmpool serve-nats")
	if err != nil {
		return err
	}
	defer nc.Close()
	// Its flags are the broker's configuration: an existing store takes
	// them too.
	changed, err := cluster.Apply(ctx, nc, set)
	if err != nil {
		return err
	}
	for _, c := range changed {
		report(a.stderr, "the existing store's %s", c)
	}
	url := srv.ClientURL()
	report(a.stderr, "NATS broker serving at %s (store: %s)", url, storeName(f.store))
	report(a.stderr, "workers join with: wasmpool worker --nats %s", url)
	if m := srv.MonitorURL(); m != "" {
		report(a.stderr, "NATS monitoring at %s (/varz, /jsz, /connz)", m)
	}
	if host, _, _ := net.SplitHostPort(f.listen); f.token == "" && host != "127.0.0.1" && host != "localhost" && host != "::1" {
		report(a.stderr, "warning: no --token: anyone who can reach this port can submit tasks to the workers")
	}
	broker, err := brokerCollector(srv, nc, set)
	if err != nil {
		return err
	}
	if f.workers == 0 {
		if err := ms.serve(a.stderr, nil, nil, broker); err != nil {
			return err
		}
		<-ctx.Done()
		return nil
	}
	e, err := f.newEngine(ctx, cmd.Flags(), a.stderr)
	if err != nil {
		return err
	}
	defer e.Close(context.WithoutCancel(ctx))
	wnc, err := srv.Connect("wasmpool serve-nats worker")
	if err != nil {
		return err
	}
	defer wnc.Close()
	w, err := cluster.NewWorker(ctx, wnc, e, cluster.WorkerConfig{
		Settings: set, Pool: pool.Config{Mode: mode, Workers: f.workers, OnTaskDone: ms.onTaskDone()}, Logger: workerLogger(a.stderr),
	})
	if err != nil {
		return err
	}
	if err := ms.serve(a.stderr, w, e, broker); err != nil {
		return err
	}
	return serveUntilSignal(ctx, w, f.grace, a.stderr)
}

func storeName(dir string) string {
	if dir == "" {
		return "memory"
	}
	return dir
}
