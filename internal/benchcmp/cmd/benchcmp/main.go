// Command benchcmp runs wasmpool's benchmark harness (see package benchcmp)
// and prints its table; `make bench` runs it:
//
//	go run ./internal/benchcmp/cmd/benchcmp [-quick] [-benchtime 1s] [-json build/bench.json]
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/wasmpool/wasmpool/internal/benchcmp"
	"github.com/wasmpool/wasmpool/pool"
)

func main() {
	// The harness's worker-process pools start this program again as their
	// worker processes: the one line every program embedding them needs.
	pool.ServeChild()
	benchcmp.RunChildIfAsked()
	quick := flag.Bool("quick", false, "small budgets: the whole run in about a minute")
	benchtime := flag.Duration("benchtime", 0, "time per measure (default 1s, 150ms with -quick)")
	workers := flag.String("workers", "1,2", "worker counts to measure, comma-separated")
	fibN := flag.Int("fib", 0, "n of the CPU-bound fib(n) task (default 27: about 1ms in plain Go)")
	jsonPath := flag.String("json", "build/bench.json", `where to write the report as JSON ("" for nowhere)`)
	python := flag.String("python", "", `python3 to compare with (default: the one on PATH; "none" to skip)`)
	cli := flag.String("wasmpool", "", "wasmpool binary for the cold-start measure (default: build one)")
	coldRuns := flag.Int("cold-runs", -1, "timed runs per command in the cold-start measure (0 skips it)")
	rss := flag.String("rss", "", "isolated task counts of the two RSS readings, e.g. 1000,100000 (0,0 skips it)")
	only := flag.String("only", "", `"interruption" measures only what stopping a guest costs (issue 12); `+
		`"fetch" only the I/O-bound flagship (issue 15); "cluster" only the cluster's throughput against raw JetStream (issue 16)`)
	flag.Parse()

	c := benchcmp.Default()
	if *quick {
		c = benchcmp.Quick()
	}
	if *benchtime > 0 {
		c.Budget = *benchtime
	}
	if *fibN > 0 {
		c.FibN = *fibN
	}
	if *coldRuns >= 0 {
		c.ColdRuns = *coldRuns
	}
	c.Python, c.WasmpoolBin = *python, *cli
	switch *only {
	case "":
	case "interruption":
		c.OnlyInterruption = true
	case "fetch":
		c.OnlyFetch = true
	case "cluster":
		c.OnlyCluster = true
	default:
		usage("-only %q: the parts that can be measured alone are interruption, fetch and cluster", *only)
	}
	var err error
	if c.Workers, err = ints(*workers); err != nil || len(c.Workers) == 0 {
		usage("-workers %q: want positive numbers separated by commas", *workers)
	}
	if *rss != "" {
		n, err := ints(*rss)
		if err != nil && *rss != "0,0" || len(n) != 2 && *rss != "0,0" || len(n) == 2 && n[0] > n[1] {
			usage("-rss %q: want two task counts, the first the smaller (or 0,0)", *rss)
		}
		c.RSSTasks = [2]int{}
		if len(n) == 2 {
			c.RSSTasks = [2]int{n[0], n[1]}
		}
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	start := time.Now()
	rep, err := benchcmp.Run(ctx, c)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
	if *jsonPath != "" {
		if err := rep.WriteJSON(*jsonPath); err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(1)
		}
		fmt.Fprintf(os.Stderr, "bench: report saved to %s (%s)\n", *jsonPath, time.Since(start).Round(time.Second))
	}
}

func ints(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("bad number %q", f)
		}
		out = append(out, n)
	}
	return out, nil
}

func usage(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "bench: "+format+"\n", args...)
	flag.Usage()
	os.Exit(2)
}
