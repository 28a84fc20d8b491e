package benchcmp

import (
	"context"
	"slices"
	"time"
)

// Latency is the round trip of one task at a time: submit, then wait for its
// result, then the next. Warm-up rounds are not counted.
type Latency struct {
	P50     time.Duration `json:"p50_ns"`
	P99     time.Duration `json:"p99_ns"`
	Samples int           `json:"samples"`
}

// Throughput is tasks completed per second with many in flight: batches of
// Batch tasks are submitted at once, then all awaited, for the time budget.
type Throughput struct {
	PerSec float64 `json:"tasks_per_s"`
	Tasks  int     `json:"tasks"`
	Batch  int     `json:"batch"`
}

// runner is one executor ready to run one workload's task.
type runner interface {
	// one runs a task and waits for it: the latency measure.
	one() error
	// batch submits n tasks, then waits for all of them: the throughput
	// measure. nil for an executor that is only a latency anchor.
	batch(n int) error
	close()
}

// budget says how long each measure runs.
type budget struct {
	time       time.Duration // per measure; warm-up is a tenth more
	minSamples int           // latency samples, even past the time
	maxSamples int           // latency samples at most
}

// measureLatency runs one task at a time: a tenth of the budget (at least
// two rounds) of warm-up, then samples for the budget.
func measureLatency(ctx context.Context, b budget, one func() error) (Latency, error) {
	warm := time.Now().Add(b.time / 10)
	for i := 0; i < 2 || time.Now().Before(warm); i++ {
		if err := one(); err != nil {
			return Latency{}, err
		}
	}
	samples := make([]time.Duration, 0, 1024)
	end := time.Now().Add(b.time)
	for len(samples) < b.minSamples || (time.Now().Before(end) && len(samples) < b.maxSamples) {
		if err := ctx.Err(); err != nil {
			return Latency{}, err
		}
		start := time.Now()
		if err := one(); err != nil {
			return Latency{}, err
		}
		samples = append(samples, time.Since(start))
	}
	slices.Sort(samples)
	return Latency{P50: percentile(samples, 50), P99: percentile(samples, 99), Samples: len(samples)}, nil
}

// percentile is the nearest-rank percentile of sorted samples (bench.py
// computes it the same way).
func percentile(sorted []time.Duration, p int) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := (len(sorted)*p + 99) / 100
	return sorted[min(max(i-1, 0), len(sorted)-1)]
}

// batchSize sizes throughput batches from the latency just measured: about
// a twentieth of the budget's worth of tasks per batch, so that the pipeline
// drains between batches rarely, but the budget still holds many batches.
// bench.py sizes them the same way.
func batchSize(b budget, p50 time.Duration, workers int) int {
	n := 1000
	if p50 > 0 {
		n = int(float64(b.time/20) / float64(p50) * float64(workers))
	}
	return min(max(n, 2*workers), 1000)
}

// measureThroughput runs one batch of warm-up, then batches for the budget
// (at least one).
func measureThroughput(ctx context.Context, b budget, size int, batch func(n int) error) (Throughput, error) {
	if err := batch(size); err != nil {
		return Throughput{}, err
	}
	tasks := 0
	start := time.Now()
	for tasks == 0 || time.Since(start) < b.time {
		if err := ctx.Err(); err != nil {
			return Throughput{}, err
		}
		if err := batch(size); err != nil {
			return Throughput{}, err
		}
		tasks += size
	}
	return Throughput{PerSec: float64(tasks) / time.Since(start).Seconds(), Tasks: tasks, Batch: size}, nil
}
