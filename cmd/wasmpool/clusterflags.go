package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/spf13/pflag"

	"github.com/wasmpool/wasmpool/cluster"
	"github.com/wasmpool/wasmpool/cluster/embedded"
	"github.com/wasmpool/wasmpool/engine"
	"github.com/wasmpool/wasmpool/future"
	"github.com/wasmpool/wasmpool/pool"
)

// clusterFlags make map and batch run their tasks on a NATS cluster instead
// of a pool in this process. Everything else about the commands (inputs,
// output, progress, exit status) stays the same.
type clusterFlags struct {
	nats       string // URL of an existing cluster
	embedded   string // run an embedded node: "none" (no port) or the address it listens on
	inFlight   int
	atMostOnce bool
	// unavailableAfter bounds the submitter's retries against a broker it
	// cannot reach: past it a task fails as unavailable (exit 75).
	unavailableAfter time.Duration
	// require are --require's labels (see require.go); routeWait bounds
	// the wait of a task no live worker meets.
	require   []string
	routeWait time.Duration
	// job names the cluster job the tasks belong to, which outlives this
	// command: run again, it collects what finished and sends the rest.
	job          string
	jobRetention time.Duration
	fs           *pflag.FlagSet // to tell a flag given from its default
}

// noListen is --nats-embedded without a value: an in-process node, no port.
const noListen = "none"

func (f *clusterFlags) add(fs *pflag.FlagSet) {
	f.fs = fs
	fs.StringVar(&f.nats, "nats", "", "run the tasks on the workers of the NATS cluster at this URL (see 'wasmpool worker')")
	fs.StringVar(&f.embedded, "nats-embedded", "", "run the tasks through a NATS node inside this process, with --workers local workers;\n"+
		"=ADDR (e.g. =:4222) makes it listen there, so that 'wasmpool worker --nats' on other hosts can join")
	fs.Lookup("nats-embedded").NoOptDefVal = noListen
	fs.IntVar(&f.inFlight, "in-flight", 0, "with --nats: the most tasks submitted and not yet finished (default 64, or 2 × --workers with --nats-embedded)")
	fs.BoolVar(&f.atMostOnce, "at-most-once", false, "with --nats: never run a task twice; if its worker dies after beginning it, the task fails instead of moving to another")
	fs.DurationVar(&f.unavailableAfter, "unavailable-after", 30*time.Second, "with --nats: how long to keep trying a broker that cannot be reached (restarting, say)\n"+
		"before its tasks fail as unavailable (exit 75)")
	fs.StringArrayVar(&f.require, "require", nil, "with --nats: run the tasks only on workers with this label, KEY=VALUE as their --label (repeat for more)")
	fs.DurationVar(&f.routeWait, "route-wait", time.Minute, "with --nats: how long a task waits for a live worker with what it requires (--require,\n"+
		"a capability it grants, mounts) before it fails as no_worker (exit 69)")
	fs.StringVar(&f.job, "job", "", "with --nats: the tasks are the named job NAME, which outlives this command: run the same command again\n"+
		"to collect what finished and run only the rest (see 'wasmpool job')")
	fs.DurationVar(&f.jobRetention, "job-retention", 0, "with --job: how long the cluster keeps the job's results (default: the cluster's result TTL, 24h)")
}

func (f *clusterFlags) clustered() bool { return f.nats != "" || f.embedded != "" }

func (f *clusterFlags) check() error {
	switch {
	case f.nats != "" && f.embedded != "":
		return usagef("give --nats URL or --nats-embedded, not both")
	case f.inFlight < 0:
		return usagef("--in-flight %d: want 1 or more", f.inFlight)
	case f.unavailableAfter <= 0:
		return usagef("--unavailable-after %v: want a positive duration", f.unavailableAfter)
	case f.routeWait <= 0:
		return usagef("--route-wait %v: want a positive duration", f.routeWait)
	case !f.clustered() && (f.inFlight != 0 || f.atMostOnce || f.fs.Changed("unavailable-after")):
		return usagef("--in-flight, --at-most-once and --unavailable-after need --nats URL or --nats-embedded")
	case !f.clustered() && (len(f.require) > 0 || f.fs.Changed("route-wait")):
		return usagef("--require and --route-wait need --nats URL or --nats-embedded: they choose among a cluster's workers")
	case f.job == "" && f.jobRetention != 0:
		return usagef("--job-retention needs --job NAME")
	case f.jobRetention < 0:
		return usagef("--job-retention %v: want a positive duration", f.jobRetention)
	case f.job != "" && f.nats == "":
		// An embedded node's job would end with this command.
		return usagef("--job needs --nats URL: a job outlives the command, and an embedded node does not")
	case f.job != "":
		if err := cluster.CheckJobName(f.job); err != nil {
			return usagef("--job %q: want 1 to 128 letters, digits, '-' and '_'", f.job)
		}
	}
	_, err := parseRequire(f.require)
	return err
}

// startCluster connects the session to a cluster, or starts an embedded
// node, and makes it the session's executor.
func (s *session) startCluster(ctx context.Context, f *poolFlags, cfg pool.Config, stderr io.Writer) error {
	labels, err := parseRequire(f.require)
	if err != nil {
		return err
	}
	xcfg := cluster.Config{TaskTimeout: cfg.TaskTimeout, TaskFuel: cfg.TaskFuel, Window: f.inFlight, PublishTimeout: f.unavailableAfter,
		Require: cluster.Requirements{Labels: labels}, RouteWait: f.routeWait, Job: f.job, JobRetention: f.jobRetention}
	if xcfg.Window == 0 {
		xcfg.Window = 64
		if f.embedded != "" && cfg.Workers > 0 {
			xcfg.Window = 2 * cfg.Workers
		}
	}
	var x *cluster.Executor
	if f.nats != "" {
		nc, err := connectNATS(f.nats, "wasmpool submitter")
		if err != nil {
			return err
		}
		s.after = append(s.after, nc.Close)
		if x, err = cluster.New(ctx, nc, xcfg); err != nil {
			return hostError{fmt.Errorf("NATS at %s: %w", redactURLs(f.nats), err)}
		}
		s.x = x
		s.warnNoWorker = stderr
	} else {
		listen := f.embedded
		if listen == noListen {
			listen = ""
		} else if err := checkListen("--nats-embedded", listen); err != nil {
			return err
		}
		cfg.TaskTimeout, cfg.TaskFuel = 0, 0 // travel with each task
		n, err := embedded.Start(ctx, s.e, embedded.Config{
			Server:   embedded.ServerConfig{Listen: listen},
			Executor: xcfg,
			// The mounts come from whoever runs this command, on this host.
			Worker: cluster.WorkerConfig{Pool: cfg, AllowMounts: true},
		})
		if err != nil {
			return err
		}
		if u := n.Server.ClientURL(); u != "" {
			report(stderr, "embedded NATS node at %s; workers on other hosts join with: wasmpool worker --nats %s", u, u)
		}
		x, s.x = n.Executor, n
	}
	s.window, s.cx = xcfg.Window, x
	if f.job != "" {
		s.job = x
	}
	if f.atMostOnce {
		s.x = atMostOnce{s.x, x}
		s.taskOpts = cluster.AtMostOnce
	}
	return nil
}

// atMostOnce submits every task with cluster.AtMostOnce.
type atMostOnce struct {
	pool.Executor
	x *cluster.Executor
}

func (a atMostOnce) Submit(ctx context.Context, t engine.Task) *future.Future[engine.Result] {
	return a.x.SubmitWith(ctx, t, cluster.AtMostOnce)
}

// reportJob says, once the run is over, how much of it came from the
// job's kept results, and that an interrupted job goes on.
func (s *session) reportJob(stderr io.Writer, sum summary) {
	if s.job == nil {
		return
	}
	st := s.job.Stats()
	name := s.job.Job()
	if st.Resumed > 0 || st.Attached > 0 {
		report(stderr, "job %s: %d task(s) resumed from the job's kept results, %d waited for as the job had them queued", name, st.Resumed, st.Attached)
	}
	if sum.interrupted {
		report(stderr, "job %s: its tasks go on in the cluster; run the same command again to collect them, or cancel it with: wasmpool job %s --cancel --nats URL", name, name)
	}
}
