package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/spf13/cobra"

	"github.com/wasmpool/wasmpool/cluster"
)

// The commands about named cluster jobs (map and batch --job): "wasmpool
// jobs" lists them, "wasmpool job NAME" shows, cancels or deletes one.

type jobsFlags struct {
	statusFlags
	cancel, delete, tasks bool
	key                   string
}

func (f *jobsFlags) add(fs interface {
	StringVar(*string, string, string, string)
	DurationVar(*time.Duration, string, time.Duration, string)
}) {
	fs.StringVar(&f.nats, "nats", "", "URL of the cluster's NATS server (required), e.g. nats://broker:4222")
	fs.StringVar(&f.namespace, "namespace", "", `the cluster's namespace, if it is not "wasmpool"`)
	fs.StringVar(&f.format, "format", "table", "table or json")
	fs.DurationVar(&f.timeout, "timeout", 5*time.Second, "how long to wait for the broker's answers")
}

func (a *app) jobsCmd() *cobra.Command {
	var f jobsFlags
	cmd := &cobra.Command{
		Use:   "jobs --nats URL",
		Short: "List the named jobs of a NATS cluster (map and batch --job) with their counts",
		Long: `List the named jobs a NATS cluster keeps (map and batch --job NAME): for
each, its tasks left (queued for a worker), running, done, failed and
cancelled, when a submitter last attached to it, and how long its results are
kept. --format json prints a JSON array of the same (field names in the
README). A broker that cannot be reached exits 75.`,
		Example: `  wasmpool jobs --nats nats://broker:4222`,
		Args:    exactArgs(0, ""),
		RunE:    func(cmd *cobra.Command, _ []string) error { return a.runJobs(&f) },
	}
	f.add(cmd.Flags())
	return cmd
}

func (a *app) jobCmd() *cobra.Command {
	var f jobsFlags
	cmd := &cobra.Command{
		Use:   "job NAME --nats URL [--cancel | --delete]",
		Short: "Show one named job of a NATS cluster, or cancel or delete it",
		Long: `Show a named job (map and batch --job NAME): its tasks left (queued for a
worker), running, done, failed and cancelled; --tasks lists each task by key,
with its state, its task ID and the worker that ran it; --key KEY shows the
one task of that key ("#N" for the input or line at position N, from 0).

--cancel cancels the tasks that have not finished (the queued ones are removed
from the queue, the running ones stopped); the finished ones keep their
results, and the same map or batch --job run again sends the cancelled ones
anew. --delete removes the job's records and results (cancel it first to stop
its running tasks at once: a task whose job is gone is dropped by the worker
that takes it).

A job the cluster does not have exits 2; a broker that cannot be reached, 75.`,
		Example: `  wasmpool job nightly --nats nats://broker:4222
  wasmpool job nightly --nats nats://broker:4222 --tasks --format json
  wasmpool job nightly --nats nats://broker:4222 --cancel`,
		Args: exactArgs(1, "NAME"),
		RunE: func(cmd *cobra.Command, args []string) error { return a.runJob(&f, args[0]) },
	}
	f.add(cmd.Flags())
	cmd.Flags().BoolVar(&f.cancel, "cancel", false, "cancel the job's unfinished tasks")
	cmd.Flags().BoolVar(&f.delete, "delete", false, "delete the job's records and kept results")
	cmd.Flags().BoolVar(&f.tasks, "tasks", false, "list every task of the job")
	cmd.Flags().StringVar(&f.key, "key", "", `show the one task of this key (a batch line's "key", or "#N" for the input or line at position N, from 0)`)
	return cmd
}

func (f *jobsFlags) check(cmd string) error {
	switch {
	case f.nats == "":
		return usagef("%s: --nats URL is required", cmd)
	case f.format != "table" && f.format != "json":
		return usagef("--format %q: want table or json", f.format)
	case f.timeout <= 0:
		return usagef("--timeout %v: want a positive duration", f.timeout)
	case f.cancel && f.delete:
		return usagef("give --cancel or --delete, not both")
	case f.key != "" && (f.cancel || f.delete || f.tasks):
		return usagef("--key shows one task: it goes with none of --cancel, --delete and --tasks")
	}
	return nil
}

// connect opens the broker for one of these commands, its answers bounded
// by --timeout.
func (a *app) jobsConn(f *jobsFlags, name string) (*nats.Conn, context.Context, context.CancelFunc, error) {
	nc, err := connectNATS(f.nats, name)
	if err != nil {
		// An outage, as map and batch meet it: exit 75, try again later.
		return nil, nil, nil, fmt.Errorf("%w: %w", cluster.ErrUnavailable, err)
	}
	ctx, cancel := context.WithTimeout(a.ctx, f.timeout)
	return nc, ctx, func() { cancel(); nc.Close() }, nil
}

func (a *app) runJobs(f *jobsFlags) error {
	if err := f.check("jobs"); err != nil {
		return err
	}
	a.started("")
	nc, ctx, done, err := a.jobsConn(f, "wasmpool jobs")
	if err != nil {
		return err
	}
	defer done()
	jobs, err := cluster.Jobs(ctx, nc, cluster.Settings{Namespace: f.namespace})
	if err != nil {
		return jobsError(f, err)
	}
	if f.format == "json" {
		if jobs == nil {
			jobs = []cluster.JobInfo{}
		}
		return printJSON(a.stdout, jobs)
	}
	if len(jobs) == 0 {
		fmt.Fprintln(a.stdout, "no jobs (map and batch --job NAME make one)")
		return nil
	}
	return printJobs(a.stdout, jobs)
}

func (a *app) runJob(f *jobsFlags, name string) error {
	if err := f.check("job"); err != nil {
		return err
	}
	if err := cluster.CheckJobName(name); err != nil {
		return usagef("job %q: want 1 to 128 letters, digits, '-' and '_'", name)
	}
	a.started("")
	nc, ctx, done, err := a.jobsConn(f, "wasmpool job")
	if err != nil {
		return err
	}
	defer done()
	s := cluster.Settings{Namespace: f.namespace}
	switch {
	case f.cancel:
		n, err := cluster.CancelJob(ctx, nc, s, name)
		if err != nil {
			return jobsError(f, err)
		}
		report(a.stderr, "job %s: %d unfinished task(s) cancelled", name, n)
	case f.delete:
		if err := cluster.DeleteJob(ctx, nc, s, name); err != nil {
			return jobsError(f, err)
		}
		report(a.stderr, "job %s: deleted", name)
		return nil
	}
	if f.key != "" {
		t, err := cluster.JobTaskStatus(ctx, nc, s, name, f.key)
		if err != nil {
			return jobsError(f, err)
		}
		if f.format == "json" {
			return printJSON(a.stdout, t)
		}
		printTasks(a.stdout, []cluster.JobTask{t})
		return nil
	}
	info, tasks, err := cluster.Job(ctx, nc, s, name)
	if err != nil {
		return jobsError(f, err)
	}
	if f.format == "json" {
		out := struct {
			cluster.JobInfo
			Tasks []cluster.JobTask `json:"tasks,omitempty"`
		}{JobInfo: info}
		if f.tasks {
			out.Tasks = tasks
		}
		return printJSON(a.stdout, out)
	}
	if err := printJobs(a.stdout, []cluster.JobInfo{info}); err != nil {
		return err
	}
	if !f.tasks {
		return nil
	}
	fmt.Fprintln(a.stdout)
	printTasks(a.stdout, tasks)
	return nil
}

func printTasks(w io.Writer, tasks []cluster.JobTask) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "KEY\tSTATE\tWORKER\tUPDATED\tID")
	now := time.Now()
	for _, t := range tasks {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s ago\t%s\n", t.Key, t.State, dashIfEmpty(t.Worker), ago(now, t.Updated), t.ID)
	}
	_ = tw.Flush()
}

// jobsError is a failure of these commands: a job the cluster does not
// have is the user's mistake (exit 2), anything else the broker's.
func jobsError(f *jobsFlags, err error) error {
	if errors.Is(err, cluster.ErrNoJob) {
		return &usageError{msg: err.Error()}
	}
	return hostError{fmt.Errorf("NATS at %s: %w", redactURLs(f.nats), err)}
}

func printJobs(w io.Writer, jobs []cluster.JobInfo) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "JOB\tLEFT\tRUNNING\tDONE\tFAILED\tCANCELLED\tTOTAL\tATTACHED\tKEPT")
	now := time.Now()
	for _, j := range jobs {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%d\t%s ago\t%s\n", j.Name, j.Left, j.Running, j.Done, j.Failed, j.Cancelled, j.Total,
			ago(now, j.Attached), j.Retention)
	}
	return tw.Flush()
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
