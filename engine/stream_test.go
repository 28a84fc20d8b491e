package engine_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
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

// TestStreamedOutputIsStillCapped: streaming changes where output goes, not
// how much of it the guest may write; and a streamed stderr still says why a
// command failed.
func TestStreamedOutputIsStillCapped(t *testing.T) {
	const limit = 64 << 10
	e := newEngine(t, engine.Config{OutputLimitBytes: limit})
	m := compileWasicat(t, e)

	var out bytes.Buffer
	big := strings.Repeat("x", 1<<20)
	res, err := e.Run(context.Background(), engine.Task{Module: m, Stdin: strings.NewReader(big), Stdout: &out})
	require.ErrorIs(t, err, engine.ErrOutputLimit)
	assert.LessOrEqual(t, out.Len(), limit)
	assert.Positive(t, out.Len(), "what fit was streamed")
	assert.Empty(t, res.Output)

	var stderr bytes.Buffer
	res, err = e.Run(context.Background(), engine.Task{Module: m, Args: []string{"-f", "/nope"}, Stderr: &stderr})
	var exit *engine.ExitError
	require.ErrorAs(t, err, &exit)
	assert.Equal(t, uint32(1), exit.Code)
	assert.Contains(t, stderr.String(), "/nope")
	assert.Equal(t, stderr.String(), string(exit.Stderr), "the error keeps the tail of what was streamed")
	assert.Contains(t, err.Error(), "/nope")
	assert.Empty(t, res.Stderr)
}
