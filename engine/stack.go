package engine

import (
	"strconv"
	"strings"
	"sync"

	"github.com/wasmpool/wasmpool/internal/wasmbin"
)

// A trap's stack trace, as wazero prints it for instrumented code, would
// show the pass's work: wrapper frames, the counters in every signature,
// and no source lines (or lines of the synthetic DWARF). traceMap turns it
// into the trace wazero prints for the module as given (see
// internal/wasmbin/sourcemap.go), which is what users compare with
// `wazero run` and what their tools' DWARF describes.
type traceMap struct {
	base     []byte // the module before instrumentation
	opts     wasmbin.InstrumentOptions
	counters int // parameters and results the pass adds to each function

	// Built on the first trace: most modules never trap, and a trace is
	// not a hot path (one more pass over the code, once).
	once  sync.Once
	src   *wasmbin.SourceMap
	lines *wasmbin.LineTable
}

func newTraceMap(base []byte, opts wasmbin.InstrumentOptions) *traceMap {
	n := 1
	if opts.Fuel {
		n = 2
	}
	return &traceMap{base: base, opts: opts, counters: n}
}

func (t *traceMap) load() {
	t.once.Do(func() {
		// A failure leaves frames without lines: the trace still names
		// the functions, which is most of its worth.
		t.src, _ = wasmbin.InstrumentSourceMap(t.base, t.opts)
		t.lines, _ = wasmbin.ReadLineTable(t.base)
	})
}

// rewrite takes wazero's trace (the text after "wasm stack trace:\n",
// frames indented by one tab, their source lines by two) of instrumented
// code back to the module as given.
func (t *traceMap) rewrite(stack string) string {
	if t == nil || !strings.Contains(stack, wasmbin.FrameMarker) {
		return stack
	}
	var out []string
	keep := true // whether the current frame's source lines are kept
	mapLines := false
	for _, line := range strings.Split(stack, "\n") {
		if src, ok := strings.CutPrefix(line, "\t\t"); ok {
			if !keep {
				continue
			}
			if !mapLines {
				out = append(out, line)
				continue
			}
			for _, l := range t.sourceLines(src) {
				out = append(out, "\t\t"+l)
			}
			continue
		}
		keep, mapLines = true, false
		switch {
		case strings.Contains(line, wasmbin.WrapperName):
			keep = false
		case strings.Contains(line, wasmbin.FrameMarker):
			out = append(out, t.frame(line))
			mapLines = true
		default:
			out = append(out, line)
		}
	}
	return strings.Join(out, "\n")
}

// frame strips the marker and the counters from one frame's line:
// "\tmod.name<marker>(i32,i32) (i32,i32)" → "\tmod.name(i32) i32".
func (t *traceMap) frame(line string) string {
	i := strings.Index(line, wasmbin.FrameMarker)
	name, sig := line[:i], line[i+len(wasmbin.FrameMarker):]
	params, results, ok := strings.Cut(sig, ")")
	if !ok || !strings.HasPrefix(params, "(") {
		return name + sig
	}
	ps := splitTypes(params[1:])
	rs := splitTypes(strings.Trim(strings.TrimSpace(results), "()"))
	ps = ps[:max(0, len(ps)-t.counters)]
	rs = rs[:max(0, len(rs)-t.counters)]
	var b strings.Builder
	b.WriteString(name)
	b.WriteByte('(')
	b.WriteString(strings.Join(ps, ","))
	b.WriteByte(')')
	switch len(rs) {
	case 0:
	case 1:
		b.WriteString(" " + rs[0])
	default:
		b.WriteString(" (" + strings.Join(rs, ",") + ")")
	}
	return b.String()
}

func splitTypes(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, ",")
}

// sourceLines maps one source line of the synthetic DWARF, "0xOFF: ...",
// to the lines of the original instruction in the module's own DWARF:
// none when it has none for that offset, as wazero would print none.
func (t *traceMap) sourceLines(src string) []string {
	hex, _, ok := strings.Cut(src, ":")
	if !ok {
		return nil
	}
	off, err := strconv.ParseUint(strings.TrimPrefix(hex, "0x"), 16, 64)
	if err != nil {
		return nil
	}
	t.load()
	if t.src == nil {
		return nil
	}
	orig, ok := t.src.Original(off)
	if !ok {
		return nil
	}
	return t.lines.Lines(orig)
}
