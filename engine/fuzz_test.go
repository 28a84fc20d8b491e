package engine_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wasmpool/wasmpool/engine"
	"github.com/wasmpool/wasmpool/internal/testmod"
)

// The fuzz targets of the engine. Their seeds (below, and the regression
// inputs under testdata/fuzz) run in every `go test`; `make fuzz` runs each
// target for FUZZTIME.

// watSeeds adds every committed hand-written module as a seed: small, and
// between them they cover every section kind wazero accepts.
func watSeeds(f *testing.F) {
	root, err := testmod.Root()
	if err != nil {
		f.Fatal(err)
	}
	paths, err := filepath.Glob(filepath.Join(root, "testdata", "wat", "*.wasm"))
	if err != nil || len(paths) == 0 {
		f.Fatalf("no seed modules in testdata/wat: %v", err)
	}
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
}

// FuzzCompile compiles arbitrary bytes and runs whatever compiles. Compile
// never panics and fails only with ErrBadModule (or ErrMemoryLimit for a
// declared memory or table minimum over the limit); a module that compiles
// runs each of its exports, and every failure is one of the engine's error
// classes. Nothing may crash, hang or exhaust the host.
func FuzzCompile(f *testing.F) {
	watSeeds(f)
	f.Add(oneFunc(cat([]byte{1}, uleb(50_000), []byte{0x7e}), []byte{0x41, 7}))
	f.Add(wasmModule(section(4, []byte{1, 0x70, 0}, uleb(100))))
	f.Add(wasmModule(section(0, wasmName("name"), []byte{1, 4, 1, 0, 1, 'f'})))
	ctx := context.Background()
	f.Fuzz(func(t *testing.T, wasm []byte) {
		// A fresh engine per input: an engine keeps what it compiled.
		e, err := engine.New(ctx, engine.Config{MemoryLimitBytes: 16 << 20, OutputLimitBytes: 64 << 10})
		if err != nil {
			t.Fatal(err)
		}
		defer e.Close(ctx)
		m, err := e.Compile(ctx, wasm)
		if err != nil {
			if !errors.Is(err, engine.ErrBadModule) && !errors.Is(err, engine.ErrMemoryLimit) {
				t.Fatalf("Compile failed with neither ErrBadModule nor ErrMemoryLimit: %v", err)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("the error is more than one line: %q", err)
			}
			return
		}
		var tasks []engine.Task
		if m.IsCommand() {
			tasks = append(tasks, engine.Task{Module: m})
		}
		for _, x := range m.Exports() {
			if x.Name == "_start" || x.Name == "_initialize" {
				continue
			}
			task := engine.Task{Module: m, Func: x.Name, Params: make([]uint64, len(x.Params))}
			tasks = append(tasks, task)
			if x.IsTask() {
				task.Params = nil
				task.Input = wasm
				tasks = append(tasks, task)
			}
		}
		for _, task := range tasks {
			task.Timeout = 100 * time.Millisecond
			_, err := e.Run(ctx, task)
			c := runClass(err)
			if c == "" {
				t.Fatalf("running %q: an error of no known class: %v", task.Func, err)
			}
			// A guest's own failure message is its own; every other error
			// reads as one line.
			if c != "task" && err != nil && strings.Contains(err.Error(), "\n") {
				t.Fatalf("running %q: the error is more than one line: %q", task.Func, err)
			}
		}
	})
}

// runClass is the class of a task's error, or "" if it has none.
func runClass(err error) string {
	var (
		trap *engine.TrapError
		exit *engine.ExitError
		te   *engine.TaskError
	)
	switch {
	case err == nil:
		return "ok"
	case errors.Is(err, engine.ErrTimeout):
		return "timeout"
	case errors.Is(err, engine.ErrMemoryLimit):
		return "memory limit"
	case errors.Is(err, engine.ErrOutputLimit):
		return "output limit"
	case errors.Is(err, engine.ErrBadModule):
		return "bad module"
	case errors.Is(err, engine.ErrNoFunction):
		return "no function"
	case errors.As(err, &trap):
		return "trap " + trap.Kind.String()
	case errors.As(err, &exit):
		return "exit"
	case errors.As(err, &te):
		return "task"
	}
	return ""
}

// abiProgram encodes (op, ptr, len) records for the abuse_fuzz guest.
func abiProgram(records ...[3]uint32) []byte {
	var b []byte
	for _, r := range records {
		for _, v := range r {
			b = binary.LittleEndian.AppendUint32(b, v)
		}
	}
	return b
}

const (
	fuzzOutLimit = 4 << 10
	fuzzMemSize  = 2 << 16 // abuse_fuzz's two pages
	failureLimit = 64 << 10
)

// abiOutcome is what the host must do with an abuse_fuzz program, worked
// out independently of the engine from the ABI's contract in DESIGN.md.
type abiOutcome struct {
	class   string // runClass of the error
	output  []byte
	failure []byte // the TaskError's message, for class "task"
	trapMsg string // the start of the trap's message, for an out-of-bounds call
}

func predictABI(input []byte) abiOutcome {
	mem := make([]byte, fuzzMemSize)
	var out abiOutcome
	inBounds := func(call string, ptr, n uint32) bool {
		if uint64(ptr)+uint64(n) <= fuzzMemSize {
			return true
		}
		out.class = "trap out of bounds"
		out.trapMsg = fmt.Sprintf("%s(ptr=%d, len=%d) reaches past", call, int32(ptr), int32(n))
		return false
	}
	records := copy(mem[1<<16:], input) / 12
	errs := 0
	overflow := false
	for i := range records {
		at := 1<<16 + i*12
		op := binary.LittleEndian.Uint32(mem[at:]) % 4
		ptr := binary.LittleEndian.Uint32(mem[at+4:])
		n := binary.LittleEndian.Uint32(mem[at+8:])
		switch op {
		case 0:
			if !inBounds("input_read", ptr, n) {
				return out
			}
			copy(mem[ptr:ptr+n], input)
		case 1:
			if !inBounds("output_write", ptr, n) {
				return out
			}
			if overflow || int(n) > fuzzOutLimit-len(out.output) {
				// The host refuses the write, and stops the guest.
				out.class = "output limit"
				return out
			}
			out.output = append(out.output, mem[ptr:ptr+n]...)
		case 2:
			if !inBounds("error_write", ptr, n) {
				return out
			}
			errs++
			room := failureLimit - len(out.failure)
			out.failure = append(out.failure, mem[ptr:ptr+min(n, uint32(max(room, 0)))]...)
		}
	}
	out.class = "ok"
	if errs > 0 {
		out.class = "task"
	}
	return out
}

// FuzzABI drives the four ABI imports with arbitrary sequences of pointers
// and lengths (negative, overflowing, out of range, overlapping the program
// itself) through the abuse_fuzz guest, and checks the host did exactly what
// the ABI says: the right bytes out, an out-of-bounds trap naming the first
// bad call, the output limit, the guest's failure message.
func FuzzABI(f *testing.F) {
	f.Add([]byte{})
	f.Add(abiProgram([3]uint32{1, 65536, 12}))                                            // output the program itself
	f.Add(abiProgram([3]uint32{0, 100, 50}, [3]uint32{1, 100, 50}))                       // read the input, write it back
	f.Add(abiProgram([3]uint32{1, 0xffffffff, 4}))                                        // a negative pointer
	f.Add(abiProgram([3]uint32{1, 0xfffffff0, 0x20}))                                     // a pointer + length that wraps
	f.Add(abiProgram([3]uint32{0, 0, 0xffffffff}))                                        // a negative length
	f.Add(abiProgram([3]uint32{1, fuzzMemSize - 4, 4}, [3]uint32{1, fuzzMemSize - 3, 4})) // the last byte, then one past
	f.Add(abiProgram([3]uint32{2, 65536, 8}, [3]uint32{2, 0, 0}))                         // a failure message
	f.Add(abiProgram([3]uint32{1, 0, 3000}, [3]uint32{1, 0, 3000}))                       // over the output limit
	f.Add(abiProgram([3]uint32{0, 65536 + 12, 24}, [3]uint32{3, 0, 0}))                   // rewrite the program as it runs
	f.Add(abiProgram([3]uint32{2, 0, 65536}, [3]uint32{2, 0, 65536}))                     // past the failure message cap
	e := newEngine(f, engine.Config{OutputLimitBytes: fuzzOutLimit})
	m := compileWAT(f, e, "abuse_fuzz")
	ctx := context.Background()
	f.Fuzz(func(t *testing.T, input []byte) {
		want := predictABI(input)
		res, err := e.Run(ctx, engine.Task{Module: m, Func: "run", Input: input, Timeout: time.Minute})
		if got := runClass(err); got != want.class {
			t.Fatalf("outcome %q (%v), want %q", got, err, want.class)
		}
		switch want.class {
		case "trap out of bounds":
			var trap *engine.TrapError
			errors.As(err, &trap)
			if !strings.HasPrefix(trap.Message, want.trapMsg) {
				t.Fatalf("trap message %q, want it to start %q", trap.Message, want.trapMsg)
			}
			if trap.Func != "run" {
				t.Fatalf("the trap names function %q", trap.Func)
			}
			return
		case "output limit":
			if len(res.Output) > fuzzOutLimit {
				t.Fatalf("the host holds %d bytes of output, over the %d limit", len(res.Output), fuzzOutLimit)
			}
			return
		case "task":
			var te *engine.TaskError
			errors.As(err, &te)
			wantMsg := string(want.failure)
			if wantMsg == "" {
				wantMsg = `function "run" returned status 1`
			}
			if te.Message != wantMsg {
				t.Fatalf("failure message of %d bytes, want %d: %q", len(te.Message), len(wantMsg), limitStr(te.Message))
			}
		}
		if !bytes.Equal(res.Output, want.output) {
			t.Fatalf("output of %d bytes, want %d", len(res.Output), len(want.output))
		}
	})
}

func limitStr(s string) string {
	if len(s) > 80 {
		return s[:80] + "…"
	}
	return s
}
