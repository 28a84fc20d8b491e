package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/wasmpool/wasmpool/internal/testmod"
)

func TestMain(m *testing.M) {
	// --isolation subprocess starts this test binary as "worker --child", the
	// way wasmpool starts itself: be wasmpool then, signals and all.
	if len(os.Args) > 1 && os.Args[1] == "worker" {
		main()
	}
	// The test binary doubles as the CLI, for tests that need separate
	// processes (see cache_test.go).
	if os.Getenv(asCLIEnv) == "1" {
		main()
		return
	}
	// Tests never write to the user's cache: compiled code goes to the cache
	// all tests share (each module compiled once per machine), unless a test
	// asks for a directory of its own.
	os.Setenv("WASMPOOL_CACHE_DIR", testmod.CompileCache())
	// A nats.go goroutine that can miss its connection's CLOSED event:
	// see cluster's TestMain.
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction("github.com/nats-io/nats.go/jetstream.(*jetStream).resetPendingAcksOnReconnect"))
}

// cliResult is the outcome of one in-process CLI run.
type cliResult struct {
	code           int
	stdout, stderr string
}

// cli runs wasmpool in-process with args and stdin.
func cli(t testing.TB, stdin string, args ...string) cliResult {
	t.Helper()
	return cliContext(t, context.Background(), stdin, args...)
}

func cliContext(t testing.TB, ctx context.Context, stdin string, args ...string) cliResult {
	t.Helper()
	var out, errb bytes.Buffer
	code := runContext(ctx, args, strings.NewReader(stdin), &out, &errb)
	r := cliResult{code: code, stdout: out.String(), stderr: errb.String()}
	if strings.Contains(r.stderr, "goroutine ") || strings.Contains(r.stderr, "panic:") && !strings.Contains(r.stderr, "wasmpool:") {
		t.Fatalf("wasmpool %q printed a Go stack trace:\n%s", args, r.stderr)
	}
	return r
}

func wat(t testing.TB, name string) string   { t.Helper(); return testmod.WAT(t, name) }
func gomod(t testing.TB, name string) string { t.Helper(); return testmod.Path(t, name) }

// writeFiles creates files with the given contents in a temp dir and returns
// their paths, in order.
func writeFiles(t testing.TB, contents ...string) []string {
	t.Helper()
	dir := t.TempDir()
	var paths []string
	for i, c := range contents {
		p := filepath.Join(dir, string(rune('a'+i))+".txt")
		if err := os.WriteFile(p, []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, p)
	}
	return paths
}

// singleLine asserts s is exactly one line (ending in a newline) and returns it.
func singleLine(t testing.TB, s string) string {
	t.Helper()
	if strings.Count(s, "\n") != 1 || !strings.HasSuffix(s, "\n") {
		t.Fatalf("want exactly one line, got %q", s)
	}
	return s
}
