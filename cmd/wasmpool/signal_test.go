package main

import (
	"bufio"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wasmpool/wasmpool/cluster/embedded"
)

// exitsWithin is how long a test waits for the CLI to exit after SIGTERM
// before calling it a hang: a failure, not a synchronisation (the CLI's own
// grace is a second).
const exitsWithin = 30 * time.Second

// signalled is a CLI process under test: its stdout, read as it comes,
// and its stderr.
type signalled struct {
	cmd    *exec.Cmd
	lines  chan string // stdout, line by line
	mu     sync.Mutex
	out    strings.Builder // stdout so far
	stderr syncBuffer
}

// startCLI starts the CLI (this test binary, as wasmpool) in a process of
// its own.
func startCLI(t *testing.T, stdin string, env []string, args ...string) *signalled {
	t.Helper()
	cmd := cliProcess(t, stdin, args...)
	// A -race binary sleeps a second at exit by default: not here.
	cmd.Env = append(cmd.Env, "GORACE="+strings.TrimSpace(os.Getenv("GORACE")+" atexit_sleep_ms=0"))
	cmd.Env = append(cmd.Env, env...)
	s := &signalled{cmd: cmd, lines: make(chan string, 100)}
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	cmd.Stderr = &s.stderr
	require.NoError(t, cmd.Start())
	go func() {
		defer close(s.lines)
		br := bufio.NewReader(stdout)
		for {
			line, err := br.ReadString('\n')
			s.mu.Lock()
			s.out.WriteString(line)
			s.mu.Unlock()
			if line != "" {
				s.lines <- line
			}
			if err != nil {
				return
			}
		}
	}()
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	return s
}

// waitFor reads stdout until a line containing want.
func (s *signalled) waitFor(t *testing.T, want string) {
	t.Helper()
	deadline := time.After(exitsWithin)
	for {
		select {
		case line, ok := <-s.lines:
			if !ok {
				t.Fatalf("the CLI ended before writing %q: stderr %s", want, s.stderr.String())
			}
			if strings.Contains(line, want) {
				return
			}
		case <-deadline:
			t.Fatalf("the CLI never wrote %q: stderr %s", want, s.stderr.String())
		}
	}
}

// terminate sends SIGTERM and returns the exit status and all of stdout.
func (s *signalled) terminate(t *testing.T) (int, string) {
	t.Helper()
	require.NoError(t, s.cmd.Process.Signal(syscall.SIGTERM))
	exited := make(chan struct{})
	go func() {
		for range s.lines { // drain, so the reader reaches EOF
		}
		_ = s.cmd.Wait()
		close(exited)
	}()
	select {
	case <-exited:
	case <-time.After(exitsWithin):
		_ = s.cmd.Process.Kill()
		<-exited
		t.Fatalf("still running %v after SIGTERM: stderr %s", exitsWithin, s.stderr.String())
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cmd.ProcessState.ExitCode(), s.out.String()
}

// SIGTERM stops run, map and batch as SIGINT does: what runs is cancelled,
// the command exits with 130 at once, and what was written before stays
// written. The guests are C and hand-written commands that print, then
// compute for good: one in a loop (stopped at its next check), one in
// recursion without a loop (which only a check at function entry stops: if
// the engine has none, wasmpool exits without waiting for it).
func TestSIGTERMStopsWhatRuns(t *testing.T) {
	t.Parallel()
	tool, fibcmd, upper := ctool(t), wat(t, "fibcmd"), gomod(t, "upper")
	for _, c := range []struct {
		name  string
		stdin string
		env   []string
		args  []string
		wait  string // a line on stdout saying the guest is running
		out   string // what stdout must hold after the signal
	}{
		{"run, a loop", "", nil, []string{"run", tool, "--", "spin", "started"}, "started", "started\n"},
		// A recursion without loops: only function entries can stop it,
		// and only the engine's own checks let a collection stop the
		// world while it runs.
		{"run, recursion", "", nil, []string{"run", fibcmd, "--", "forever"}, "started", "started\n"},
		{"map", "fail\nspin\n", nil, []string{"map", tool, "--lines", "-", "--workers", "2", "--", "{}", "started"},
			"fail\twasmpool: ", "fail\tstarted\nfail\twasmpool: "},
		{"map, worker processes", "fail\nspin\n", nil, []string{"map", tool, "--lines", "-", "--workers", "2", "--isolation", "process",
			"--", "{}", "started"}, "fail\twasmpool: ", "fail\tstarted\nfail\twasmpool: "},
		{"batch", `{"module": "` + upper + `", "func": "upper", "input": "first"}` + "\n" +
			`{"module": "` + tool + `", "args": ["spin", "x"]}` + "\n",
			nil, []string{"batch", "-", "--workers", "2"}, `"output":"FIRST"`, `"output":"FIRST"`},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			s := startCLI(t, c.stdin, c.env, c.args...)
			s.waitFor(t, c.wait)
			code, out := s.terminate(t)
			assert.Equal(t, exitCancelled, code, "stderr: %s", s.stderr.String())
			assert.Contains(t, out, c.out)
			assert.NotContains(t, s.stderr.String(), "goroutine ")
		})
	}
}

// SIGTERM stops a NATS worker as SIGINT does: it stops taking tasks, lets
// the running ones finish (--grace), and exits 0, as its help says.
func TestSIGTERMStopsAWorker(t *testing.T) {
	t.Parallel()
	srv, err := embedded.StartServer(embedded.ServerConfig{Listen: "127.0.0.1:-1"})
	require.NoError(t, err)
	defer srv.Shutdown()
	s := startCLI(t, "", nil, "worker", "--nats", srv.ClientURL(), "--workers", "1")
	deadline := time.After(exitsWithin)
	for !strings.Contains(s.stderr.String(), "worker started") {
		select {
		case <-s.stderr.written():
		case <-deadline:
			t.Fatalf("the worker never started: %s", s.stderr.String())
		}
	}
	code, _ := s.terminate(t)
	assert.Equal(t, exitOK, code, s.stderr.String())
	assert.Contains(t, s.stderr.String(), "worker stopped")
}
