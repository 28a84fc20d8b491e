package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/wasmpool/wasmpool/cluster"
)

// clusterCmd is "wasmpool cluster": commands about a NATS cluster as a
// whole, rather than one of its workers.
func (a *app) clusterCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "cluster",
		Short: "Look at a NATS cluster of wasmpool workers",
		Args:  exactArgs(0, ""),
		RunE:  func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	cmd.AddCommand(a.clusterStatusCmd())
	return cmd
}

type statusFlags struct {
	nats      string
	namespace string
	format    string
	timeout   time.Duration
}

func (a *app) clusterStatusCmd() *cobra.Command {
	var f statusFlags
	cmd := &cobra.Command{
		Use:   "status --nats URL",
		Short: "Show a cluster's workers, queue and rates, as its broker has them",
		Long: `Show what a NATS cluster of wasmpool workers is doing, read from its broker:
each live worker (its name, host, slots, mode, --label labels, the host
capabilities it provides, whether it allows mounts, its memory limit, tasks
running, succeeded and failed since it started, and tasks finished per second
over the last few seconds), and the task queue (tasks queued, in flight at a
worker, redelivered after a worker was lost, free worker slots waiting, and
results waiting for their submitter). Tasks that require something of their
worker (--require, a batch line's "require", a capability they grant, mounts)
wait in a queue per requirement set: each set in use gets a line with its
tasks queued and in flight, and how many live workers meet it.

Workers advertise themselves every second (or every fifth of the cluster's
ack wait, if shorter); one that stops leaves the list at once, one that dies
within the ack wait (serve-nats --ack-wait, 5s by default).

--format json prints the same as one JSON object (field names in the README).
A broker that cannot be reached exits 75, as map and batch do.`,
		Example: `  wasmpool cluster status --nats nats://broker:4222
  wasmpool cluster status --nats nats://broker:4222 --format json | jq '.workers[].name'`,
		Args: exactArgs(0, ""),
		RunE: func(cmd *cobra.Command, _ []string) error { return a.runClusterStatus(&f) },
	}
	fs := cmd.Flags()
	fs.StringVar(&f.nats, "nats", "", "URL of the cluster's NATS server (required), e.g. nats://broker:4222")
	fs.StringVar(&f.namespace, "namespace", "", `the cluster's namespace, if it is not "wasmpool"`)
	fs.StringVar(&f.format, "format", "table", "table or json")
	fs.DurationVar(&f.timeout, "timeout", 5*time.Second, "how long to wait for the broker's answers")
	return cmd
}

func (a *app) runClusterStatus(f *statusFlags) error {
	switch {
	case f.nats == "":
		return usagef("cluster status: --nats URL is required")
	case f.format != "table" && f.format != "json":
		return usagef("--format %q: want table or json", f.format)
	case f.timeout <= 0:
		return usagef("--timeout %v: want a positive duration", f.timeout)
	}
	a.started("")
	nc, err := connectNATS(f.nats, "wasmpool cluster status")
	if err != nil {
		// An outage, as map and batch meet it: exit 75, try again later.
		return fmt.Errorf("%w: %w", cluster.ErrUnavailable, err)
	}
	defer nc.Close()
	ctx, cancel := context.WithTimeout(a.ctx, f.timeout)
	defer cancel()
	st, err := cluster.Status(ctx, nc, cluster.Settings{Namespace: f.namespace})
	if err != nil {
		return hostError{fmt.Errorf("NATS at %s: %w", redactURLs(f.nats), err)}
	}
	if f.format == "json" {
		enc := json.NewEncoder(a.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(st)
	}
	return printStatus(a.stdout, st)
}

// printStatus is the table: a summary line for the queue, then a line per
// worker.
func printStatus(w io.Writer, st cluster.ClusterStatus) error {
	fmt.Fprintf(w, "cluster %q: %d worker(s), %d slot(s), %d running, %.1f tasks/s\n",
		st.Namespace, len(st.Workers), st.Slots, st.Running, st.Rate)
	fmt.Fprintf(w, "queue: %d queued, %d in flight (%d redelivered), %d free slot(s) waiting, %d result(s) waiting\n",
		st.Queued, st.InFlight, st.Redelivered, st.FreeSlots, st.Results)
	if len(st.Workers) == 0 {
		fmt.Fprintln(w, "no worker is advertising (start one with: wasmpool worker --nats URL)")
		return printRoutes(w, st.Routes)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "\nWORKER\tHOST\tPID\tMODE\tSLOTS\tRUNNING\tSUCCEEDED\tFAILED\tTASKS/S\tUP\tSEEN\tMEMORY\tMOUNTS\tLABELS\tCAPABILITIES")
	for _, x := range st.Workers {
		name := x.Name
		if x.Draining {
			name += " (draining)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%d\t%d\t%d\t%d\t%.1f\t%s\t%s ago\t%s\t%s\t%s\t%s\n",
			name, x.Host, x.PID, x.Mode, x.Slots, x.Running, x.Succeeded, x.Failed, x.Rate,
			ago(st.At, x.StartedAt), ago(st.At, x.SeenAt), shortBytes(x.MemoryLimit), yesNo(x.AllowMounts),
			labelList(x.Labels), dashIfEmpty(strings.Join(x.Capabilities, ",")))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	return printRoutes(w, st.Routes)
}

// ago is a duration for a table cell: whole seconds, or tenths under ten
// (a worker's record is at most a second old).
func ago(now, t time.Time) string {
	d := max(now.Sub(t), 0)
	if d < 10*time.Second {
		return d.Round(100 * time.Millisecond).String()
	}
	return d.Round(time.Second).String()
}

func shortBytes(n uint64) string {
	switch {
	case n == 0:
		return "-"
	case n >= 1<<30 && n%(1<<30) == 0:
		return fmt.Sprintf("%dGiB", n>>30)
	case n >= 1<<20:
		return fmt.Sprintf("%dMiB", n>>20)
	}
	return fmt.Sprintf("%dKiB", n>>10)
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func labelList(m map[string]string) string {
	var kv []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		kv = append(kv, k+"="+m[k])
	}
	return dashIfEmpty(strings.Join(kv, ","))
}

func dashIfEmpty(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
