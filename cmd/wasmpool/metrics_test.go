package main

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// serving is a CLI process that serves until it is interrupted (worker,
// serve-nats): its stderr is read line by line, so that the test can wait
// for what it announces.
type serving struct {
	cmd   *exec.Cmd
	lines chan string
	log   strings.Builder // every line, once the process is done
	done  chan struct{}
}

func startServing(t *testing.T, args ...string) *serving {
	t.Helper()
	p := &serving{cmd: cliProcess(t, "", args...), lines: make(chan string, 1024), done: make(chan struct{})}
	// A -race binary sleeps a second at exit by default: not here.
	p.cmd.Env = append(p.cmd.Env, "GORACE="+strings.TrimSpace(os.Getenv("GORACE")+" atexit_sleep_ms=0"))
	stderr, err := p.cmd.StderrPipe()
	require.NoError(t, err)
	require.NoError(t, p.cmd.Start())
	go func() {
		defer close(p.done)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			p.log.WriteString(sc.Text() + "\n")
			select {
			case p.lines <- sc.Text():
			default: // nobody waits for more: keep draining
			}
		}
		_, _ = io.Copy(io.Discard, stderr)
	}()
	t.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		<-p.done
		_ = p.cmd.Wait()
	})
	return p
}

// await returns the first submatch of re in the next lines of stderr that
// match it; a process that exits or says nothing for a minute fails the
// test.
func (p *serving) await(t *testing.T, re *regexp.Regexp) string {
	t.Helper()
	timeout := time.After(time.Minute)
	for {
		select {
		case line := <-p.lines:
			if m := re.FindStringSubmatch(line); m != nil {
				return m[1]
			}
		case <-p.done:
			t.Fatalf("%q ended before printing %v", p.cmd.Args, re)
		case <-timeout:
			t.Fatalf("%q did not print %v within a minute", p.cmd.Args, re)
		}
	}
}

// stop interrupts the process as a user's Ctrl-C does and returns its exit
// status and everything it wrote on stderr.
func (p *serving) stop(t *testing.T) (int, string) {
	t.Helper()
	require.NoError(t, p.cmd.Process.Signal(os.Interrupt))
	<-p.done
	err := p.cmd.Wait()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else {
		require.NoError(t, err)
	}
	return code, p.log.String()
}

var metricsAt = regexp.MustCompile(`^wasmpool: metrics at (http://\S+/metrics)$`)

// scrapeMetrics reads a /metrics endpoint as Prometheus does (text format)
// and returns each series' value by its name and labels as the text format
// writes them: `wasmpool_tasks_total{error_kind="trap",outcome="failed"}`.
func scrapeMetrics(t *testing.T, url string) map[string]float64 {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	require.NoError(t, err)
	out := map[string]float64{}
	for name, fam := range fams {
		for _, m := range fam.Metric {
			var labels []string
			for _, l := range m.Label {
				labels = append(labels, l.GetName()+`="`+l.GetValue()+`"`)
			}
			key := name
			if len(labels) > 0 {
				key += "{" + strings.Join(labels, ",") + "}"
			}
			switch {
			case m.Counter != nil:
				out[key] = m.Counter.GetValue()
			case m.Gauge != nil:
				out[key] = m.Gauge.GetValue()
			case m.Histogram != nil:
				out[key+"_count"] = float64(m.Histogram.GetSampleCount())
			}
		}
	}
	return out
}

// TestWorkerAndServeNATSServeMetrics: serve-nats and a worker, each a
// process of the built CLI with --metrics on a free port, and a batch run
// through them: the worker's /metrics counts its tasks by outcome and kind,
// serve-nats's sees the worker and an empty queue.
func TestWorkerAndServeNATSServeMetrics(t *testing.T) {
	broker := startServing(t, "serve-nats", "--listen", "127.0.0.1:-1", "--store", "", "--metrics", "127.0.0.1:0")
	natsURL := broker.await(t, regexp.MustCompile(`^wasmpool: NATS broker serving at (\S+) `))
	brokerMetrics := broker.await(t, metricsAt)
	worker := startServing(t, "worker", "--nats", natsURL, "--workers", "1", "--name", "w1", "--metrics", "127.0.0.1:0")
	workerMetrics := worker.await(t, metricsAt)

	before := scrapeMetrics(t, workerMetrics)
	assert.Zero(t, before[`wasmpool_tasks_total{error_kind="",outcome="succeeded"}`])
	assert.Equal(t, 1.0, before["wasmpool_workers"])
	assert.Contains(t, before, "go_goroutines", "the Go runtime's metrics too")

	batch := `{"module": "` + gomod(t, "upper") + `", "func": "upper", "input": "a"}
{"module": "` + gomod(t, "upper") + `", "func": "upper", "input": "b"}
{"module": "` + gomod(t, "upper") + `", "func": "upper", "input": "c"}
{"module": "` + wat(t, "unreachable") + `", "func": "run"}
{"module": "` + wat(t, "spin") + `", "func": "spin", "timeout": "50ms"}
{"module": "` + gomod(t, "upper") + `", "func": "upper", "input": "d", "fuel": 10}
`
	r := cli(t, batch, "batch", "-", "--nats", natsURL)
	require.Equal(t, exitTrap, r.code, r.stderr)
	require.Equal(t, 6, strings.Count(r.stdout, "\n"), r.stdout)

	after := scrapeMetrics(t, workerMetrics)
	assert.Equal(t, 3.0, after[`wasmpool_tasks_total{error_kind="",outcome="succeeded"}`])
	assert.Equal(t, 1.0, after[`wasmpool_tasks_total{error_kind="trap",outcome="failed"}`])
	assert.Equal(t, 1.0, after[`wasmpool_tasks_total{error_kind="timeout",outcome="timed_out"}`])
	assert.Equal(t, 1.0, after[`wasmpool_tasks_total{error_kind="fuel",outcome="failed"}`])
	assert.Equal(t, 6.0, after["wasmpool_task_run_seconds_count"])
	assert.Equal(t, 6.0, after["wasmpool_task_queue_wait_seconds_count"])
	assert.Equal(t, 1.0, after["wasmpool_task_fuel_used_count"])
	assert.Equal(t, 6.0, after["wasmpool_tasks_submitted_total"])
	assert.Zero(t, after["wasmpool_tasks_running"])
	assert.Equal(t, 3.0, after["wasmpool_cluster_modules_fetched_total"])
	assert.Equal(t, 3.0, after["wasmpool_modules_compiled_total"]+after[`wasmpool_module_cache_hits_total{cache="disk"}`])
	assert.Positive(t, after["wasmpool_instances_built_total"])

	b := scrapeMetrics(t, brokerMetrics)
	assert.Equal(t, 1.0, b["wasmpool_broker_up"])
	assert.Equal(t, 1.0, b["wasmpool_broker_workers"])
	assert.Zero(t, b["wasmpool_broker_tasks_queued"])
	assert.Contains(t, b, "wasmpool_broker_tasks_in_flight")

	code, log := worker.stop(t)
	assert.Equal(t, exitOK, code, log)
	code, log = broker.stop(t)
	assert.Equal(t, exitOK, code, log)
}

// TestMetricsFlagErrors: an address in use is said at once, on one line; a
// malformed one is a usage error.
func TestMetricsFlagErrors(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer taken.Close()
	for _, args := range [][]string{
		{"worker", "--nats", "nats://127.0.0.1:1", "--metrics", taken.Addr().String()},
		{"serve-nats", "--listen", "127.0.0.1:-1", "--store", "", "--metrics", taken.Addr().String()},
	} {
		r := cli(t, "", args...)
		assert.Equal(t, exitFailed, r.code, "%q", args)
		line := singleLine(t, r.stderr)
		assert.Contains(t, line, "--metrics "+taken.Addr().String()+": cannot listen there: ", "%q", args)
		assert.Contains(t, line, "address already in use", "%q", args)
	}
	for _, addr := range []string{"9464", "127.0.0.1:99999", "127.0.0.1:http"} {
		r := cli(t, "", "worker", "--nats", "nats://127.0.0.1:1", "--metrics", addr)
		assert.Equal(t, exitUsage, r.code, "%s: %s", addr, r.stderr)
		assert.Contains(t, r.stderr, "--metrics", addr)
	}
}
