package main

// Differential tests: WASI preview-1 commands built by other toolchains
// (C/wasi-libc, Rust, AssemblyScript) must run under `wasmpool run` exactly
// as under `wazero run` — same stdout, stderr and exit status for the same
// arguments, environment, stdin and mounted directory.
//
// The fixtures (testdata/{c,rust,assemblyscript}/wasicat.wasm) speak one
// command line (see modules/c/wasicat.c), so one table of cases drives all
// three. wazero's CLI is built from the module cache once per machine
// (testmod.WazeroCLI); wasmpool runs in-process, as in the other CLI tests.
//
// The flags are spelled differently, on purpose: wazero run takes its flags
// before the module (-env K=V, -mount=HOST:GUEST[:ro]) and everything after
// the module goes to the guest; wasmpool run takes --env K=V and
// --mount HOST:GUEST[:ro] anywhere and the guest's arguments after "--".
// Neither passes the host's environment to the guest by default (wazero
// only with -env-inherit; wasmpool never).
//
// TestToolchainsRunAsUnderWazero compares them case by case;
// TestToolchainsInteractive checks that both stream stdin and stdout as they
// happen. Where wasmpool differs on purpose, TestToolchainsDifferOnPurpose
// and TestToolchainsTimeoutWhileReadingStdin pin the difference down;
// README's "WASI commands from other toolchains" section lists them all.
// TestTrapStackAsUnderWazero compares a trap's stack, names and source lines
// from DWARF included, with wazero's.

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wasmpool/wasmpool/internal/testmod"
)

// toolchainFixtures are the committed other-toolchain builds of wasicat.
func toolchainFixtures(t *testing.T) map[string]string {
	return map[string]string{
		"c":              testmod.C(t, "wasicat"),
		"rust":           testmod.Rust(t, "wasicat"),
		"assemblyscript": testmod.AssemblyScript(t, "wasicat"),
	}
}

// mountFiles is what the mounted directory holds before every run.
var mountFiles = map[string]string{"in.txt": "a mounted file\nsecond line\n"}

// mountMode says whether and how the case mounts a fresh copy of mountFiles
// at /data.
type mountMode int

const (
	noMount mountMode = iota
	mountRO
	mountRW
)

// diffCase is one invocation, run under both CLIs.
type diffCase struct {
	name  string
	args  []string    // the guest's arguments
	env   [][2]string // in flag order
	stdin string
	mount mountMode

	// What both must agree on is checked against these too, so that two
	// identical failures do not pass for agreement.
	wantCode   int
	wantStdout string
	wantStderr string            // a substring of stderr ("" = stderr must be empty)
	wantFiles  map[string]string // the mounted directory afterwards (nil = unchanged)
}

func diffCases() []diffCase {
	return []diffCase{
		{name: "stdin to stdout", stdin: "line one\nline two\n", wantStdout: "line one\nline two\n"},
		{name: "binary stdin", stdin: "\x00\xff\x01nul and high bytes\x00", wantStdout: "\x00\xff\x01nul and high bytes\x00"},
		{name: "empty stdin"},
		{name: "large stdin", stdin: strings.Repeat("0123456789abcdef", 1<<14), wantStdout: strings.Repeat("0123456789abcdef", 1<<14)},
		{name: "args", args: []string{"-a", "one", "two words", "", "ünïcødé"},
			wantStdout: "wasicat.wasm\none\ntwo words\n\nünïcødé\n"},
		{name: "args that look like flags", args: []string{"-a", "--env", "X=1", "--", "-h"},
			wantStdout: "wasicat.wasm\n--env\nX=1\n--\n-h\n"},
		{name: "env var", args: []string{"-e", "GREETING"}, env: [][2]string{{"GREETING", "hello=world"}, {"OTHER", "x"}},
			wantStdout: "hello=world\n"},
		{name: "empty env var", args: []string{"-e", "EMPTY"}, env: [][2]string{{"EMPTY", ""}}, wantStdout: "\n"},
		{name: "unset env var", args: []string{"-e", "HOME"}, wantCode: 1, wantStderr: "HOME is not set"},
		// The host's own environment (PATH, HOME, ...) never reaches the
		// guest: only what was given, in the order given (sorted here: see
		// TestToolchainsDifferOnPurpose for another order).
		{name: "whole env", args: []string{"-E"}, env: [][2]string{{"A", "1"}, {"B", "two words"}},
			wantStdout: "A=1\nB=two words\n"},
		{name: "no env", args: []string{"-E"}},
		{name: "env var given twice", args: []string{"-E"}, env: [][2]string{{"K", "1"}, {"K", "2"}}, wantStdout: "K=2\n"},
		{name: "read a mounted file", args: []string{"-f", "/data/in.txt"}, mount: mountRO,
			wantStdout: mountFiles["in.txt"]},
		{name: "read through a writable mount", args: []string{"-f", "/data/in.txt"}, mount: mountRW,
			wantStdout: mountFiles["in.txt"]},
		{name: "missing file", args: []string{"-f", "/data/nope.txt"}, mount: mountRO,
			wantCode: 1, wantStderr: "/data/nope.txt"},
		{name: "file without a mount", args: []string{"-f", "/etc/passwd"}, wantCode: 1, wantStderr: "/etc/passwd"},
		{name: "escape a mount", args: []string{"-f", "/data/../../../etc/passwd"}, mount: mountRO,
			wantCode: 1, wantStderr: "/etc/passwd"},
		{name: "write to a writable mount", args: []string{"-w", "/data/out.txt", "written"}, mount: mountRW,
			wantFiles: map[string]string{"in.txt": mountFiles["in.txt"], "out.txt": "written"}},
		{name: "overwrite a file", args: []string{"-w", "/data/in.txt", "new"}, mount: mountRW,
			wantFiles: map[string]string{"in.txt": "new"}},
		{name: "stderr", args: []string{"-s", "to stderr\n"}, wantStderr: "to stderr\n"},
		{name: "exit 0", args: []string{"-x", "0"}},
		{name: "exit 3", args: []string{"-x", "3"}, wantCode: 3},
		{name: "exit 255", args: []string{"-x", "255"}, wantCode: 255},
		{name: "usage error", args: []string{"-q"}, wantCode: 2, wantStderr: "usage: wasicat"},
	}
}

// cliRun is one CLI's outcome, and the mounted directory after it.
type cliRun struct {
	code           int
	stdout, stderr string
	files          map[string]string
}

func TestToolchainsRunAsUnderWazero(t *testing.T) {
	for toolchain, wasm := range toolchainFixtures(t) {
		t.Run(toolchain, func(t *testing.T) {
			t.Parallel()
			for _, tc := range diffCases() {
				t.Run(tc.name, func(t *testing.T) {
					ref := runWazero(t, wasm, tc)
					got := runWasmpool(t, wasm, tc)
					assertSameRun(t, ref, got)

					// And both did what the case is about.
					assert.Equal(t, tc.wantCode, ref.code, "exit status; stderr: %q", ref.stderr)
					assert.Equal(t, tc.wantStdout, ref.stdout, "stdout")
					if tc.wantStderr == "" {
						assert.Empty(t, ref.stderr, "stderr")
					} else {
						assert.Contains(t, ref.stderr, tc.wantStderr, "stderr")
					}
					if tc.mount != noMount {
						want := tc.wantFiles
						if want == nil {
							want = mountFiles
						}
						assert.Equal(t, want, ref.files, "the mounted directory afterwards")
					}
				})
			}
		})
	}
}

// assertSameRun asserts wasmpool did exactly what wazero did.
func assertSameRun(t *testing.T, ref, got cliRun) {
	t.Helper()
	assert.Equal(t, ref.code, got.code, "exit status: wazero %d, wasmpool %d (wasmpool stderr: %q)", ref.code, got.code, got.stderr)
	assert.Equal(t, ref.stdout, got.stdout, "stdout")
	assert.Equal(t, ref.stderr, got.stderr, "stderr")
	assert.Equal(t, ref.files, got.files, "the mounted directory afterwards")
}

// runWazero runs the case under `wazero run`, with the host environment of
// the test: wazero does not pass it on unless told to (-env-inherit).
func runWazero(t *testing.T, wasm string, tc diffCase) cliRun {
	t.Helper()
	args := []string{"run", "-cachedir", testmod.WazeroCompileCache()}
	for _, kv := range tc.env {
		args = append(args, "-env", kv[0]+"="+kv[1])
	}
	dir := newMountDir(t, tc.mount)
	if dir != "" {
		args = append(args, "-mount="+mountSpec(dir, tc.mount))
	}
	args = append(args, wasm)
	args = append(args, tc.args...)

	cmd := testmod.WazeroCommand(t, args...)
	cmd.Stdin = strings.NewReader(tc.stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		t.Fatalf("running wazero %q: %v", args, err)
	}
	return cliRun{code: cmd.ProcessState.ExitCode(), stdout: stdout.String(), stderr: stderr.String(), files: readMountDir(t, dir)}
}

// runWasmpool runs the case under `wasmpool run`, in-process.
func runWasmpool(t *testing.T, wasm string, tc diffCase) cliRun {
	t.Helper()
	args := []string{"run", wasm}
	for _, kv := range tc.env {
		args = append(args, "--env", kv[0]+"="+kv[1])
	}
	dir := newMountDir(t, tc.mount)
	if dir != "" {
		args = append(args, "--mount", mountSpec(dir, tc.mount))
	}
	args = append(args, "--")
	args = append(args, tc.args...)
	r := cli(t, tc.stdin, args...)
	return cliRun{code: r.code, stdout: r.stdout, stderr: r.stderr, files: readMountDir(t, dir)}
}

func mountSpec(dir string, mode mountMode) string {
	if mode == mountRO {
		return dir + ":/data:ro"
	}
	return dir + ":/data"
}

// newMountDir makes a fresh directory holding mountFiles, or returns "" for
// a case without a mount. Each CLI gets its own, so that writes can be
// compared.
func newMountDir(t *testing.T, mode mountMode) string {
	t.Helper()
	if mode == noMount {
		return ""
	}
	dir := t.TempDir()
	for name, body := range mountFiles {
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644))
	}
	return dir
}

// readMountDir returns every file under dir by relative path, or nil for "".
func readMountDir(t *testing.T, dir string) map[string]string {
	t.Helper()
	if dir == "" {
		return nil
	}
	files := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		files[filepath.ToSlash(rel)] = string(b)
		return err
	})
	require.NoError(t, err)
	return files
}

// stuck is how long a test waits for an answer that should come at once
// before calling it a hang: a failure, not a synchronisation.
const stuck = time.Minute

// TestToolchainsInteractive: like wazero run, wasmpool run passes a command's
// stdin and stdout through as they happen, so a command answers each line
// while its stdin is still open (wasicat copies as it reads, like cat).
func TestToolchainsInteractive(t *testing.T) {
	for toolchain, wasm := range toolchainFixtures(t) {
		t.Run(toolchain, func(t *testing.T) {
			t.Parallel()
			t.Run("wazero", func(t *testing.T) {
				converse(t, func(stdin io.Reader, stdout io.Writer, stderr *bytes.Buffer) func() int {
					cmd := testmod.WazeroCommand(t, "run", "-cachedir", testmod.WazeroCompileCache(), wasm)
					cmd.Stdin, cmd.Stdout, cmd.Stderr = stdin, stdout, stderr
					require.NoError(t, cmd.Start())
					return func() int {
						_ = cmd.Wait()
						return cmd.ProcessState.ExitCode()
					}
				})
			})
			t.Run("wasmpool", func(t *testing.T) {
				converse(t, func(stdin io.Reader, stdout io.Writer, stderr *bytes.Buffer) func() int {
					code := make(chan int, 1)
					go func() { code <- run([]string{"run", wasm}, stdin, stdout, stderr) }()
					return func() int { return <-code }
				})
			})
		})
	}
}

// converse starts a CLI running cat with start, then writes lines to its
// stdin one at a time, each only after the previous one came back on its
// stdout, and asserts it then ends cleanly when stdin closes.
func converse(t *testing.T, start func(stdin io.Reader, stdout io.Writer, stderr *bytes.Buffer) (wait func() int)) {
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	var stderr bytes.Buffer
	wait := start(inR, outW, &stderr)
	lines := make(chan string)
	go func() {
		defer close(lines)
		br := bufio.NewReader(outR)
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				return
			}
			lines <- line
		}
	}()
	for _, line := range []string{"first line\n", "second line\n"} {
		_, err := io.WriteString(inW, line)
		require.NoError(t, err)
		select {
		case got := <-lines:
			assert.Equal(t, line, got)
		case <-time.After(stuck):
			inW.Close()
			outW.Close()
			t.Fatalf("no answer to %q while stdin is still open: stdin or stdout is not streamed", line)
		}
	}
	inW.Close()
	code := wait()
	outW.Close()
	assert.Equal(t, 0, code, stderr.String())
	assert.Empty(t, stderr.String())
	_, more := <-lines
	assert.False(t, more, "nothing more on stdout")
}

// TestToolchainsTimeoutWhileReadingStdin: a command blocked reading a stdin
// that never answers is still stopped by --timeout. (wazero run's -timeout
// waits for the read to return: there wasmpool differs on purpose.)
func TestToolchainsTimeoutWhileReadingStdin(t *testing.T) {
	for toolchain, wasm := range toolchainFixtures(t) {
		t.Run(toolchain, func(t *testing.T) {
			inR, inW := io.Pipe()
			defer inW.Close() // releases the abandoned read
			var stdout, stderr bytes.Buffer
			code := make(chan int, 1)
			go func() { code <- run([]string{"run", "--timeout", "100ms", wasm}, inR, &stdout, &stderr) }()
			select {
			case c := <-code:
				assert.Equal(t, exitTimeout, c)
			case <-time.After(stuck):
				t.Fatal("--timeout did not stop a command blocked on its stdin")
			}
			assert.Empty(t, stdout.String())
			assert.Contains(t, singleLine(t, stderr.String()), "timed out after 100ms", "only wasmpool's line: the guest never saw its read fail")
		})
	}
}

// TestToolchainsDifferOnPurpose pins down where wasmpool run deliberately
// does not do what wazero run does, so that a change to either is noticed.
func TestToolchainsDifferOnPurpose(t *testing.T) {
	for toolchain, wasm := range toolchainFixtures(t) {
		t.Run(toolchain, func(t *testing.T) {
			t.Parallel()

			// An exit code over 255: wazero hands it to os.Exit, which keeps
			// the low 8 bits (256 would read as success); wasmpool exits 1,
			// as its --help says, and says what the code was.
			tc := diffCase{args: []string{"-x", "300"}}
			ref, got := runWazero(t, wasm, tc), runWasmpool(t, wasm, tc)
			assert.Equal(t, 300&0xff, ref.code)
			assert.Equal(t, exitFailed, got.code)
			assert.Equal(t, ref.stdout, got.stdout)
			assert.Empty(t, ref.stderr)
			assert.Contains(t, singleLine(t, got.stderr), "exited with code 300")

			// The environment's order: wazero passes the -env flags in
			// their order; wasmpool's Task.Env is a map, and the guest sees
			// it sorted by name, the same on every run (enough names here
			// that a map's random order would show).
			var env [][2]string
			var sorted strings.Builder
			for _, k := range []string{"K7", "K3", "K0", "K5", "K1", "K6", "K2", "K4", "K8"} {
				env = append(env, [2]string{k, "v" + k})
			}
			for i := range 9 {
				fmt.Fprintf(&sorted, "K%d=vK%d\n", i, i)
			}
			tc = diffCase{args: []string{"-E"}, env: env}
			ref, got = runWazero(t, wasm, tc), runWasmpool(t, wasm, tc)
			assert.Equal(t, "K7=vK7\nK3=vK3\nK0=vK0\nK5=vK5\nK1=vK1\nK6=vK6\nK2=vK2\nK4=vK4\nK8=vK8\n", ref.stdout)
			assert.Equal(t, sorted.String(), got.stdout)
			assert.Equal(t, ref.code, got.code)

			// A write to a read-only mount fails in both, changing nothing;
			// wazero says "Function not implemented" (ENOSYS), wasmpool
			// "Read-only file system" (EROFS), in each toolchain's words.
			tc = diffCase{args: []string{"-w", "/data/out.txt", "nope"}, mount: mountRO}
			ref, got = runWazero(t, wasm, tc), runWasmpool(t, wasm, tc)
			assert.Equal(t, 1, ref.code)
			assert.Equal(t, 1, got.code)
			assert.Equal(t, mountFiles, ref.files)
			assert.Equal(t, mountFiles, got.files)
			enosys, erofs := "Function not implemented", "Read-only file system"
			if toolchain == "assemblyscript" {
				enosys, erofs = "NOSYS", "ROFS"
			}
			assert.Contains(t, ref.stderr, "wasicat: /data/out.txt: "+enosys, "wazero's stderr")
			assert.Contains(t, got.stderr, "wasicat: /data/out.txt: "+erofs, "wasmpool's stderr")

			// A trap: wazero exits 1, wasmpool 70; each prints one line of
			// its own, then the same wasm stack trace. What the guest itself
			// wrote before trapping (a Rust panic message) is the same.
			tc = diffCase{args: []string{"-t"}}
			ref, got = runWazero(t, wasm, tc), runWasmpool(t, wasm, tc)
			assert.Equal(t, 1, ref.code)
			assert.Equal(t, exitTrap, got.code)
			assert.Equal(t, ref.stdout, got.stdout)
			refGuest, refErr, ok := strings.Cut(ref.stderr, "error instantiating wasm binary: ")
			require.True(t, ok, "wazero's stderr: %q", ref.stderr)
			gotGuest, gotErr, ok := strings.Cut(got.stderr, "wasmpool: ")
			require.True(t, ok, "wasmpool's stderr: %q", got.stderr)
			assert.Equal(t, refGuest, gotGuest, "what the guest wrote to stderr")
			assert.Contains(t, refErr, "unreachable")
			gotLine, gotStack, _ := strings.Cut(gotErr, "\n")
			assert.Contains(t, gotLine, "trapped")
			assert.Contains(t, gotLine, "unreachable")
			_, refStack, ok := strings.Cut(refErr, "\n")
			require.True(t, ok, "wazero printed no stack: %q", refErr)
			assert.True(t, strings.HasPrefix(refStack, "wasm stack trace:\n"), refStack)
			assert.Equal(t, refStack, gotStack, "the same wasm stack trace")
			if toolchain == "rust" {
				// The panic's own line says why, also in wasmpool's one line.
				assert.Contains(t, gotGuest, "panicked at 'wasicat: trap requested'")
				assert.Contains(t, gotErr, "panicked at 'wasicat: trap requested'")
			}
		})
	}
}

// TestTrapStackAsUnderWazero: a command that traps prints, after wasmpool's
// one line, the wasm stack wazero prints, with function names from the name
// section and source lines from DWARF; an export's with --verbose, and
// map --verbose the same, each line tagged with its input.
func TestTrapStackAsUnderWazero(t *testing.T) {
	tool := ctool(t)
	ref := runWazero(t, tool, diffCase{args: []string{"trap"}})
	_, refStack, ok := strings.Cut(ref.stderr, "\nwasm stack trace:\n")
	require.True(t, ok, "wazero's stderr: %q", ref.stderr)
	assert.Contains(t, refStack, ".crash(i32)\n\t\t0x")
	assert.Contains(t, refStack, "modules/c/ctool.c:")

	got := cli(t, "", "run", tool, "--", "trap")
	assert.Equal(t, exitTrap, got.code)
	line, stack, ok := strings.Cut(got.stderr, "\nwasm stack trace:\n")
	require.True(t, ok, "wasmpool's stderr: %q", got.stderr)
	assert.Equal(t, `wasmpool: module "ctool.wasm": function "_start" trapped: unreachable`, line)
	assert.Equal(t, refStack, stack)

	r := cli(t, "", "run", wat(t, "divzero"), "--func", "run")
	singleLine(t, r.stderr)
	r = cli(t, "", "run", wat(t, "divzero"), "--func", "run", "--verbose")
	assert.Equal(t, exitTrap, r.code)
	assert.Contains(t, r.stderr, "divide by zero\nwasm stack trace:\n\t.")

	r = cli(t, "trap\n", "map", tool, "--lines", "-", "--verbose", "--", "{}")
	assert.Equal(t, exitTrap, r.code)
	assert.Contains(t, r.stdout, "trap\twasm stack trace:\n")
	for _, l := range strings.Split(strings.TrimRight(stack, "\n"), "\n") {
		assert.Contains(t, r.stdout, "trap\t"+l+"\n")
	}
}
