package engine

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/tetratelabs/wazero/api"
)

// Pre-initialisation (Config.Preinitialize), the technique of Wizer: a
// reactor's _initialize runs once, in the first instance of the module, and
// its linear memory and mutable globals right after it (before any task ran)
// become a template. Every later instance is a fresh wazero instance started
// without _initialize and given a copy of the template. For a Go guest that
// skips the Go runtime's start-up: most of a fresh instance's cost.
//
// Why it is exact, and isolates as well as a fresh instance: the module is
// proven (wasmbin.Facts.StateOnlyInMemoryAndGlobals) to have no state
// outside memory and globals that an instruction can change, so memory and
// globals are the instance's whole state; each instance is still a new wazero instance (its own WASI context,
// its own table); and the template is captured before the first task runs,
// so no task can leave anything in it.
//
// What it changes, and why it is opt-in: whatever _initialize read from its
// sandbox is frozen in the template. The sandbox (arguments, environment,
// mounts) is part of the template's key, so that stays right; but the clock
// reading and the random bytes of that one initialisation are shared by
// every instance made from it (a Go guest seeds map hashing and math/rand's
// global source from them).

// template is an instance's state right after its _initialize.
type template struct {
	memory  []byte   // the whole linear memory
	globals []uint64 // in the order of preinit.globals
}

// preinit is a module's pre-initialisation: the export names under which its
// mutable globals can be read and set, and its templates by sandbox.
type preinit struct {
	globals []string
	onAdd   func(bytes int64) // counts a template against Config.MaxModuleBytes

	mu        sync.Mutex
	templates map[string]*template
	dropped   bool // the module's code was released: keep no more
}

// maxTemplatesPerModule bounds the memory templates take: each is a copy of
// a memory. Tasks of further sandboxes instantiate the ordinary way.
const maxTemplatesPerModule = 16

func (p *preinit) get(key string) *template {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.templates[key]
}

func (p *preinit) put(key string, t *template) {
	p.mu.Lock()
	if p.templates == nil {
		p.templates = map[string]*template{}
	}
	_, ok := p.templates[key]
	added := !ok && !p.dropped && len(p.templates) < maxTemplatesPerModule
	if added {
		p.templates[key] = t
	}
	p.mu.Unlock()
	if added && p.onAdd != nil {
		p.onAdd(int64(len(t.memory) + 8*len(t.globals)))
	}
}

// drop lets go of the templates, the module's code being released.
func (p *preinit) drop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.templates, p.dropped = nil, true
}

// sandboxKey identifies what an initialisation may have read from its
// sandbox: the arguments, the environment and the mounts.
func sandboxKey(t *Task) string {
	var b strings.Builder
	field := func(s string) {
		b.WriteString(strconv.Itoa(len(s)))
		b.WriteByte(':')
		b.WriteString(s)
	}
	field(strconv.Itoa(len(t.Args)))
	for _, a := range t.Args {
		field(a)
	}
	field(strconv.Itoa(len(t.Env)))
	for _, k := range slices.Sorted(maps.Keys(t.Env)) {
		field(k)
		field(t.Env[k])
	}
	field(strconv.Itoa(len(t.Mounts)))
	for _, m := range t.Mounts {
		field(m.HostPath)
		field(m.GuestPath)
		field(strconv.FormatBool(m.ReadOnly))
	}
	return b.String()
}

// capture takes the instance's template. It must run before any task.
func (inst *Instance) capture(p *preinit) (*template, error) {
	if inst.mem == nil {
		return nil, errors.New("the module has no memory to capture")
	}
	t := &template{memory: bytes.Clone(inst.mem.buf), globals: make([]uint64, len(p.globals))}
	for i, name := range p.globals {
		g := inst.mod.ExportedGlobal(name)
		if g == nil {
			return nil, fmt.Errorf("global %q is not exported", name)
		}
		t.globals[i] = g.Get()
	}
	return t, nil
}

// restore gives a new instance, started without _initialize, the state of
// the template.
func (inst *Instance) restore(p *preinit, t *template) error {
	mem := inst.mod.Memory()
	if inst.mem == nil || mem == nil {
		return errors.New("the instance has no memory to restore")
	}
	if have, want := uint64(mem.Size()), uint64(len(t.memory)); have < want {
		if _, ok := mem.Grow(uint32((want - have) / wasmPageSize)); !ok {
			return errors.New("the memory cannot grow to the template's size")
		}
	}
	// A new instance's memory holds the data segments, within the minimum
	// size, and zeros past them; the template covers all of it.
	copy(inst.mem.buf, t.memory)
	for i, name := range p.globals {
		g, ok := inst.mod.ExportedGlobal(name).(api.MutableGlobal)
		if !ok {
			return fmt.Errorf("global %q is not exported as mutable", name)
		}
		g.Set(t.globals[i])
	}
	return nil
}
