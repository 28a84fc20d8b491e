package engine_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/wasmpool/wasmpool/engine"
	"github.com/wasmpool/wasmpool/internal/testmod"
)

func compileWasicat(t *testing.T, e *engine.Engine) *engine.Module {
	t.Helper()
	m, err := e.CompileFile(context.Background(), testmod.C(t, "wasicat"))
	require.NoError(t, err)
	return m
}

// stuck is how long a test waits for something that should come at once
// before calling it a hang: a failure, not a synchronisation.
const stuck = time.Minute

// TestStreamedCommandIsInteractive: with Task.Stdin and Task.Stdout, a
// command answers each line as it comes (wasicat copies as it reads, like
// cat), instead of after its whole input.
func TestStreamedCommandIsInteractive(t *testing.T) {
	e := newEngine(t, engine.Config{})
	m := compileWasicat(t, e)
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	type outcome struct {
		res engine.Result
		err error
	}
	done := make(chan outcome, 1)
	go func() {
		res, err := e.Run(context.Background(), engine.Task{Module: m, Stdin: inR, Stdout: outW})
		outW.Close()
		done <- outcome{res, err}
	}()
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
	for _, line := range []string{"one\n", "two\n"} {
		_, err := io.WriteString(inW, line)
		require.NoError(t, err)
		select {
		case got := <-lines:
			assert.Equal(t, line, got)
		case <-time.After(stuck):
			inW.Close()
			t.Fatalf("no answer to %q while stdin is still open: stdout is not streamed", line)
		}
	}
	inW.Close()
	o := <-done
	require.NoError(t, o.err)
	assert.Empty(t, o.res.Output, "streamed: nothing is collected")
	_, open := <-lines
	assert.False(t, open, "nothing more on stdout")
}

// blockingReader blocks every Read until released, and says when the first
// one started.
type blockingReader struct {
	once    sync.Once
	started chan struct{}
	release chan struct{}
}

func newBlockingReader() *blockingReader {
	return &blockingReader{started: make(chan struct{}), release: make(chan struct{})}
}

func (r *blockingReader) Read([]byte) (int, error) {
	r.once.Do(func() { close(r.started) })
	<-r.release
	return 0, io.EOF
}

// TestStreamedStdinDoesNotHoldUpATimeout: a guest blocked reading a stdin
// that never answers is still stopped by its timeout and by a cancel.
func TestStreamedStdinDoesNotHoldUpATimeout(t *testing.T) {
	e := newEngine(t, engine.Config{})
	m := compileWasicat(t, e)

	run := func(ctx context.Context, task engine.Task) <-chan error {
		errc := make(chan error, 1)
		go func() {
			_, err := e.Run(ctx, task)
			errc <- err
		}()
		return errc
	}
	wait := func(errc <-chan error) error {
		select {
		case err := <-errc:
			return err
		case <-time.After(stuck):
			t.Fatal("the guest is still blocked on its stdin")
			return nil
		}
	}

	r := newBlockingReader()
	defer close(r.release)
	err := wait(run(context.Background(), engine.Task{Module: m, Stdin: r, Timeout: 50 * time.Millisecond}))
	require.ErrorIs(t, err, engine.ErrTimeout)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	var exit *engine.ExitError
	assert.False(t, errors.As(err, &exit), "the guest's exit after its read failed is not the story: %v", err)

	r2 := newBlockingReader()
	defer close(r2.release)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	errc := run(ctx, engine.Task{Module: m, Stdin: r2})
	<-r2.started
	cancel()
	require.ErrorIs(t, wait(errc), engine.ErrCancelled)
}

// TestStreamedOutputIsNotCapped: the output limit bounds what the host
// holds, and streamed output is not held: a command may pass through more
// than the limit, as under wazero run, while the same output collected into
// the Result still fails at the limit. A streamed stderr still says why a
// command failed.
func TestStreamedOutputIsNotCapped(t *testing.T) {
	const limit = 64 << 10
	e := newEngine(t, engine.Config{OutputLimitBytes: limit})
	m := compileWasicat(t, e)

	big := strings.Repeat("x", 1<<20)
	var out, stderr bytes.Buffer
	res, err := e.Run(context.Background(), engine.Task{Module: m, Stdin: strings.NewReader(big), Stdout: &out, Stderr: &stderr})
	require.NoError(t, err)
	assert.Equal(t, len(big), out.Len(), "all of it passed through")
	assert.Empty(t, res.Output)

	_, err = e.Run(context.Background(), engine.Task{Module: m, Input: []byte(big)})
	require.ErrorIs(t, err, engine.ErrOutputLimit, "collected, it is capped")

	stderr.Reset()
	res, err = e.Run(context.Background(), engine.Task{Module: m, Args: []string{"-f", "/nope"}, Stderr: &stderr})
	var exit *engine.ExitError
	require.ErrorAs(t, err, &exit)
	assert.Equal(t, uint32(1), exit.Code)
	assert.Contains(t, stderr.String(), "/nope")
	assert.Equal(t, stderr.String(), string(exit.Stderr), "the error keeps the tail of what was streamed")
	assert.Contains(t, err.Error(), "/nope")
	assert.Empty(t, res.Stderr)
}

// TestStreamedStdinFromEveryKindOfReader: a streamed stdin reads the same
// whether each read is made directly (bytes in memory, a regular file, a
// pipe with data waiting) or in a goroutine (a pipe still empty, a reader
// of unknown kind), and however the guest asks for it: wasicat reads 64 KiB
// at a time, ctool through getchar.
func TestStreamedStdinFromEveryKindOfReader(t *testing.T) {
	e := newEngine(t, engine.Config{})
	ctx := context.Background()
	wasicat := compileWasicat(t, e)
	ctool, err := e.CompileFile(ctx, testmod.C(t, "ctool"))
	require.NoError(t, err)
	want := strings.Repeat("the quick brown fox jumps over the lazy dog\n", 20_000) // ~900 KB

	file := filepath.Join(t.TempDir(), "in.txt")
	require.NoError(t, os.WriteFile(file, []byte(want), 0o644))
	readers := map[string]func(t *testing.T) io.Reader{
		"strings.Reader": func(*testing.T) io.Reader { return strings.NewReader(want) },
		"regular file": func(t *testing.T) io.Reader {
			f, err := os.Open(file)
			require.NoError(t, err)
			t.Cleanup(func() { f.Close() })
			return f
		},
		"os.Pipe": func(t *testing.T) io.Reader {
			r, w, err := os.Pipe()
			require.NoError(t, err)
			t.Cleanup(func() { r.Close() })
			go func() {
				// In pieces, so that the guest finds it both empty and full.
				for i := 0; i < len(want); i += 1000 {
					_, _ = io.WriteString(w, want[i:min(i+1000, len(want))])
				}
				w.Close()
			}()
			return r
		},
		"io.Pipe": func(t *testing.T) io.Reader {
			r, w := io.Pipe()
			go func() {
				_, _ = io.WriteString(w, want)
				w.Close()
			}()
			return r
		},
	}
	for name, mk := range readers {
		for _, c := range []struct {
			m    *engine.Module
			args []string
		}{{wasicat, nil}, {ctool, []string{"cat"}}} {
			t.Run(name+"/"+c.m.Name(), func(t *testing.T) {
				var out bytes.Buffer
				_, err := e.Run(ctx, engine.Task{Module: c.m, Args: c.args, Stdin: mk(t), Stdout: &out})
				require.NoError(t, err)
				assert.True(t, out.String() == want, "stdout differs from stdin (%d bytes, want %d)", out.Len(), len(want))
			})
		}
	}
}
