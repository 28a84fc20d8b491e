package benchcmp

import (
	"bufio"
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// fetchPy is Python's side of the fetch measure; see its docstring.
//
//go:embed fetch.py
var fetchPy []byte

// pythonFetcher drives fetch.py, a Python process that keeps its
// ThreadPoolExecutor between rounds and runs one when asked. The round is
// timed here, as the others are: the pipe's round trip in it is tens of
// microseconds of a round of 80 ms or more.
type pythonFetcher struct {
	cmd    *exec.Cmd
	dir    string
	stdin  io.WriteCloser
	out    *bufio.Scanner
	stderr *bytes.Buffer
	python string // its version
}

func newPythonFetcher(ctx context.Context, py string, urls []string) (*pythonFetcher, error) {
	dir, err := os.MkdirTemp("", "wasmpool-bench-fetch-")
	if err != nil {
		return nil, err
	}
	f := &pythonFetcher{dir: dir, stderr: &bytes.Buffer{}}
	script := filepath.Join(dir, "fetch.py")
	if err := os.WriteFile(script, fetchPy, 0o644); err != nil {
		f.close()
		return nil, err
	}
	f.cmd = exec.CommandContext(ctx, py, script)
	f.cmd.Stderr = f.stderr
	if f.stdin, err = f.cmd.StdinPipe(); err != nil {
		f.close()
		return nil, err
	}
	stdout, err := f.cmd.StdoutPipe()
	if err != nil {
		f.close()
		return nil, err
	}
	f.out = bufio.NewScanner(stdout)
	if err := f.cmd.Start(); err != nil {
		f.close()
		return nil, err
	}
	cfg, _ := json.Marshal(map[string]any{"urls": urls, "workers": fetchWorkers})
	var hello struct {
		Python string `json:"python"`
	}
	if err := f.ask(append(cfg, '\n'), &hello); err != nil {
		f.close()
		return nil, err
	}
	f.python = hello.Python
	return f, nil
}

// ask writes line and reads fetch.py's one-line JSON answer into v.
func (f *pythonFetcher) ask(line []byte, v any) error {
	if _, err := f.stdin.Write(line); err != nil {
		return f.failed(err)
	}
	if !f.out.Scan() {
		return f.failed(f.out.Err())
	}
	if err := json.Unmarshal(f.out.Bytes(), v); err != nil {
		return fmt.Errorf("fetch.py answered %q: %w", f.out.Bytes(), err)
	}
	return nil
}

// failed is the error of a fetch.py that stopped answering: its last words.
func (f *pythonFetcher) failed(err error) error {
	if err == nil {
		err = io.ErrUnexpectedEOF
	}
	_ = f.stdin.Close()
	_ = f.cmd.Wait() // stderr is complete once it has exited
	return fmt.Errorf("fetch.py stopped (%v): %s", err, lastLines(splitLines(f.stderr.String()), 3))
}

func (f *pythonFetcher) round(context.Context) error {
	var r struct {
		Error string `json:"error"`
	}
	if err := f.ask([]byte("round\n"), &r); err != nil {
		return err
	}
	if r.Error != "" {
		return errors.New(r.Error)
	}
	return nil
}

func (f *pythonFetcher) close() {
	if f.stdin != nil {
		_ = f.stdin.Close() // fetch.py's loop ends, and so does it
	}
	if f.cmd != nil && f.cmd.Process != nil {
		_ = f.cmd.Wait()
	}
	_ = os.RemoveAll(f.dir)
}

func splitLines(s string) []string { return strings.Split(strings.TrimSpace(s), "\n") }
