package wasmbin

import "fmt"

// The per-function half of the instrumentation (see instrument.go).

// fnInstr is one instruction of the function being instrumented, with what
// the first pass learned about it.
type fnInstr struct {
	op         byte
	idx        uint32
	start, end int
	idxEnd     int   // a call_indirect: where its table index begins
	region     int32 // a checked loop: the tick region of its body; else -1
	charge     int32 // the fuel slot of the block that starts after it; -1 if none
	loopParams bool  // a loop whose block type takes parameters
	final      bool  // the function's last end
}

// frame is a block, loop, if or the function itself, in the first pass.
type frame struct {
	op        byte // opBlock, opLoop, opIf; 0 for the function
	region    int32
	entryDead bool // the frame began in unreachable code
	dead      bool // the rest of its code so far is unreachable
	targeted  bool // a branch goes to its end (blocks and ifs)
}

// fuelCost is what an instruction costs. As in wasmtime, instructions that
// do no work (structure, nop, drop) and those that end a path cost nothing.
func fuelCost(op byte) uint32 {
	switch op {
	case opNop, opDrop, opBlock, opLoop, opUnreachable, opReturn, opElse, opEnd:
		return 0
	}
	return 1
}

// leafWeights finds the leaf functions (no loop, no call, not too large):
// they run a bounded number of instructions, so they get no tick check, and
// a direct call to one is charged its size.
func (in *instrumenter) leafWeights(code reader) error {
	n, err := code.count("the code section", 1)
	if err != nil {
		return err
	}
	if int(n) != len(in.m.definedFuncs) {
		return fmt.Errorf("the code section has %d bodies for %d functions", n, len(in.m.definedFuncs))
	}
	in.leafWeight = make([]uint32, n)
	for i := range n {
		size, err := code.u32()
		if err != nil {
			return err
		}
		body, err := code.sub(uint64(size))
		if err != nil {
			return err
		}
		if err := skipLocals(&body); err != nil {
			return err
		}
		d := decoder{r: body, base: body.off}
		var ins instr
		weight, leaf := uint32(0), true
		for !d.r.done() && leaf {
			if err := d.next(&ins); err != nil {
				return notInstrumentableOp(err, fmt.Sprintf("function %d", i))
			}
			switch ins.op {
			case opLoop, opCall, opCallIndirect, opReturnCall, opReturnCallIn:
				leaf = false
			}
			weight++
			if weight > maxLeafWeight {
				leaf = false
			}
		}
		if leaf {
			in.leafWeight[i] = max(weight, 1)
		}
	}
	return nil
}

func notInstrumentableOp(err error, where string) error {
	if err == errUnknownOpcode {
		return notInstrumentable("%s uses an instruction the engine does not know", where)
	}
	return err
}

func skipLocals(r *reader) error {
	groups, err := r.count("a function's locals", 2)
	if err != nil {
		return err
	}
	for range groups {
		if _, err := r.u32(); err != nil {
			return err
		}
		if err := skipValueType(r); err != nil {
			return err
		}
	}
	return nil
}

// code returns the instrumented code section (without the wrappers).
func (in *instrumenter) code(code reader) ([]byte, error) {
	if err := in.leafWeights(code); err != nil {
		return nil, err
	}
	start := code.off // offsets in the map are from the section's start, as in DWARF
	n, _ := code.u32()
	out := appendU32(make([]byte, 0, len(code.b)+len(code.b)/2), n)
	var body []byte
	for i := range n {
		size, _ := code.u32()
		fn, _ := code.sub(uint64(size))
		mapped := 0
		if in.srcMap != nil {
			mapped = len(in.srcMap.pairs)
		}
		var err error
		if body, err = in.function(body[:0], fn, i, uint64(fn.off-start)); err != nil {
			return nil, err
		}
		if in.srcMap != nil {
			// function recorded where each instruction went in its body;
			// the body begins after its size.
			at := uint64(len(out) + uvarintSize(uint64(len(body))))
			for j := mapped; j < len(in.srcMap.pairs); j++ {
				in.srcMap.pairs[j].out += at
			}
		}
		out = appendU32(out, uint32(len(body)))
		out = append(out, body...)
	}
	return out, nil
}

// function instruments one function body into out.
func (in *instrumenter) function(out []byte, fn reader, index uint32, at uint64) ([]byte, error) {
	m := in.m
	ft := m.types[m.definedFuncs[index]]
	fuel := in.opts.Fuel
	params := uint32(len(ft.params))
	nc := uint32(len(in.counters()))
	tLocal, fLocal := params, params+1

	// The locals: the parameters, then the declared groups. The counters
	// are parameters after the function's own, so declared locals move.
	raw := fn.b
	r := fn
	groups, err := r.count("a function's locals", 2)
	if err != nil {
		return nil, err
	}
	in.locals = append(in.locals[:0], ft.params...)
	for range groups {
		c, err := r.u32()
		if err != nil {
			return nil, err
		}
		t, err := r.byte()
		if err != nil {
			return nil, err
		}
		if !plainValueType(t) {
			return nil, notInstrumentable("function %d declares locals of value type 0x%x", index, t)
		}
		if len(in.locals)+int(c) > 1<<20 {
			return nil, notInstrumentable("function %d declares too many locals", index)
		}
		for range c {
			in.locals = append(in.locals, t)
		}
	}
	code := raw[len(raw)-len(r.b):]
	localIndex := func(l uint32) uint32 {
		if l >= params {
			return l + nc
		}
		return l
	}
	entryCheck, err := in.analyse(r, index)
	if err != nil {
		return nil, err
	}
	live := in.liveAt(len(in.locals))
	liveAt := func(region int32) bitset {
		if live == nil {
			return nil
		}
		return live[region]
	}

	// The local declarations as they were, and a scratch local for the
	// table index of an indirect call: the counters go under it.
	indexLocal := uint32(len(in.locals)) + nc
	if in.indirect {
		out = appendU32(out, groups+1)
		out = append(out, raw[uvarintSize(uint64(groups)):len(raw)-len(r.b)]...)
		out = append(out, 1, valueI32)
	} else {
		out = append(out, raw[:len(raw)-len(r.b)]...)
	}
	bodyStart := len(out)

	// Where the counters live while the function runs: locals (so,
	// registers) by default; their globals in a function whose loops
	// already keep more values live than there are registers, where one
	// more would be spilled and reloaded on every iteration. The locals
	// then only carry a value from one instruction to the next.
	mem := in.pressure(live) > maxRegisterPressure
	getT := func(out []byte) []byte {
		if mem {
			return appendGlobal(out, opGlobalGet, in.tickG)
		}
		return appendLocal(out, opLocalGet, tLocal)
	}
	setT := func(out []byte) []byte {
		if mem {
			return appendGlobal(out, opGlobalSet, in.tickG)
		}
		return appendLocal(out, opLocalSet, tLocal)
	}
	getF := func(out []byte) []byte {
		if mem {
			return appendGlobal(out, opGlobalGet, in.fuelG)
		}
		return appendLocal(out, opLocalGet, fLocal)
	}
	setF := func(out []byte) []byte {
		if mem {
			return appendGlobal(out, opGlobalSet, in.fuelG)
		}
		return appendLocal(out, opLocalSet, fLocal)
	}
	// fuelOut and fuelIn put the fuel in its global (for the host, or a
	// host function that calls back into the guest) and take it back.
	fuelOut := func(out []byte) []byte {
		if fuel && !mem {
			out = appendLocal(out, opLocalGet, fLocal)
			out = appendGlobal(out, opGlobalSet, in.fuelG)
		}
		return out
	}
	fuelIn := func(out []byte) []byte {
		if fuel && !mem {
			out = appendGlobal(out, opGlobalGet, in.fuelG)
			out = appendLocal(out, opLocalSet, fLocal)
		}
		return out
	}
	pushCounters := func(out []byte) []byte {
		out = getT(out)
		if fuel {
			out = getF(out)
		}
		return out
	}
	popCounters := func(out []byte) []byte {
		if fuel {
			out = setF(out)
		}
		return setT(out)
	}
	// chargeTick takes weight from the tick and leaves what is left on the
	// stack, for the check that follows to compare with zero.
	chargeTick := func(out []byte, weight uint32) []byte {
		out = getT(out)
		out = append(out, opI32Const)
		out = appendSLEB(out, int64(weight))
		out = append(out, opI32Sub)
		out = appendLocal(out, opLocalTee, tLocal)
		if mem {
			out = appendGlobal(out, opGlobalSet, in.tickG)
			out = appendLocal(out, opLocalGet, tLocal)
		}
		return out
	}
	// yield is a check's cold path: the live locals out of registers, the
	// call, the next tick set and the locals back. With rerun (a branch
	// back to the check follows, which charges the weight again) the weight
	// is paid in advance, or a tick smaller than the weight would yield for
	// ever.
	yield := func(out []byte, weight uint32, saved bitset, rerun bool) []byte {
		out = in.copyLocals(out, saved, localIndex, true)
		out = fuelOut(out)
		out = append(out, opCall)
		out = appendU32(out, in.yield)
		if rerun {
			out = append(out, opI32Const)
			out = appendSLEB(out, int64(weight))
			out = append(out, opI32Add)
		}
		out = setT(out)
		out = in.copyLocals(out, saved, localIndex, false)
		return fuelIn(out)
	}
	// tickCheck charges weight to the tick; when it runs out, the guest
	// yields to the host with its live locals out of registers, then
	// branches to the header of the loop resume names (a label depth
	// counted from inside the check), or, for resume < 0, goes on after the
	// check.
	tickCheck := func(out []byte, weight uint32, saved bitset, resume int) []byte {
		weight = min(max(weight, 1), maxWeight)
		out = chargeTick(out, weight)
		out = append(out, opI32Const, 0, opI32GeS, opIf, blockTypeEmpty, opElse)
		out = yield(out, weight, saved, resume >= 0)
		if resume >= 0 {
			out = append(out, opBr)
			out = appendU32(out, uint32(resume))
		}
		return append(out, opEnd)
	}
	// loopCheck is a checked loop's: it charges the weight at the header
	// and, when the tick runs out, leaves the loop for its yield, two
	// labels out (see the frames written around such a loop below). Its
	// hot path is a subtraction and a branch, and no call is inside the
	// loop: wazevo spills a loop's live registers when one is, even on a
	// path never taken.
	loopCheck := func(out []byte, weight uint32) []byte {
		weight = min(max(weight, 1), maxWeight)
		out = chargeTick(out, weight)
		return append(out, opI32Const, 0, opI32LtS, opBrIf, 1)
	}
	// loopYield is the code after such a loop's end: its exit (br to
	// $done), then, under the $yield block the check left, the yield with
	// the loop's live locals out of registers and the branch back into the
	// loop through $outer. The weight is paid in advance, as for tickCheck.
	loopYield := func(out []byte, weight uint32, saved bitset) []byte {
		weight = min(max(weight, 1), maxWeight)
		out = append(out, opBr, 2, opEnd) // to $done; the end of $yield
		out = yield(out, weight, saved, true)
		return append(out, opBr, 0, opEnd, opEnd) // to $outer; the ends of $outer and $done
	}
	// charge takes a block's cost from the fuel; when that would leave it
	// below zero, it branches out of every frame to $outOfFuel, around the
	// whole body, which calls out_of_fuel: no call inside the loops (see
	// loopCheck). frames is how many frames are open inside $outOfFuel.
	charge := func(out []byte, slot int32, frames uint32) []byte {
		if !fuel || slot < 0 || in.costs[slot] == 0 {
			return out
		}
		out = getF(out)
		out = append(out, opI64Const)
		out = appendSLEB(out, int64(in.costs[slot]))
		out = append(out, opI64Sub)
		out = appendLocal(out, opLocalTee, fLocal)
		if mem {
			out = appendGlobal(out, opGlobalSet, in.fuelG)
			out = appendLocal(out, opLocalGet, fLocal)
		}
		out = append(out, opI64Const, 0, opI64LtS, opBrIf)
		return appendU32(out, frames)
	}

	// The frame: a loop that the entry check's cold path branches back to
	// (only when there is one), then a block standing for the function's own
	// label, so that what branches to it (or falls off the end) lands where
	// the counters are pushed as the last results.
	if mem {
		out = appendLocal(out, opLocalGet, tLocal)
		out = appendGlobal(out, opGlobalSet, in.tickG)
		if fuel {
			out = appendLocal(out, opLocalGet, fLocal)
			out = appendGlobal(out, opGlobalSet, in.fuelG)
		}
	}
	if fuel {
		out = append(out, opBlock, blockTypeEmpty) // $outOfFuel
	}
	if entryCheck {
		out = append(out, opLoop)
		out = in.appendBlockType(out, ft.results)
		out = tickCheck(out, in.weights[0], liveAt(0), 1)
	}
	out = append(out, opBlock)
	out = in.appendBlockType(out, ft.results)
	// The frames inside $outOfFuel around the input's own: the function's
	// block, and the entry check's loop.
	bodyFrames := uint32(1)
	if entryCheck {
		bodyFrames++
	}
	out = charge(out, 0, bodyFrames)
	codeAt := at + uint64(len(raw)-len(code)) // the original body's first instruction
	if in.srcMap != nil {
		// What the function's own checks run maps to its first instruction.
		in.srcMap.pairs = append(in.srcMap.pairs, offsetPair{out: uint64(bodyStart), in: codeAt})
	}
	// The control frames of the input's code as the loop below meets
	// them: for each, whether it is a checked loop written inside three
	// frames of its own ($done, $outer, $yield), which a branch from inside
	// it to a label outside it must add to its depth.
	wrapped := in.wrapped[:0] // the loop's region, or -1
	// below[k]: how many of wrapped[:k+1] are wrapped loops, so that a
	// branch's new depth costs no walk over the frames it leaves (Go's
	// br_tables leave dozens, with hundreds of targets).
	below := in.below[:0]
	push := func(region int32) {
		n := int32(0)
		if len(below) > 0 {
			n = below[len(below)-1]
		}
		if region >= 0 {
			n++
		}
		wrapped, below = append(wrapped, region), append(below, n)
	}
	depth := func(d uint32) uint32 {
		if len(below) == 0 {
			return d
		}
		left := below[len(below)-1] // in the frames the branch leaves
		if int(d) < len(below) {
			left -= below[len(below)-1-int(d)]
		}
		return d + 3*uint32(left)
	}
	for i := range in.instrs {
		ins := &in.instrs[i]
		wrap := ins.op == opLoop && ins.region >= 0 && !ins.loopParams
		switch ins.op {
		case opBlock, opIf:
			push(-1)
		case opLoop:
			if !wrap {
				push(-1)
			} else {
				push(ins.region)
				bt := code[ins.start+1 : ins.end]
				out = append(out, opBlock)
				out = append(out, bt...)
				out = append(out, opLoop)
				out = append(out, bt...)
				out = append(out, opBlock, blockTypeEmpty)
			}
		}
		if in.srcMap != nil {
			in.srcMap.pairs = append(in.srcMap.pairs, offsetPair{out: uint64(len(out)), in: codeAt + uint64(ins.start)})
		}
		switch ins.op {
		case opLocalGet, opLocalSet, opLocalTee:
			out = appendLocal(out, ins.op, localIndex(ins.idx))
		case opCall:
			if ins.idx < in.funcImports() {
				// A host function: the fuel goes through its global, in
				// case the host calls back into the guest.
				out = fuelOut(out)
				out = appendLocal(out, opCall, ins.idx)
				out = fuelIn(out)
			} else {
				out = pushCounters(out)
				out = appendLocal(out, opCall, ins.idx+in.added)
				out = popCounters(out)
			}
		case opCallIndirect:
			out = appendLocal(out, opLocalSet, indexLocal)
			out = pushCounters(out)
			out = appendLocal(out, opLocalGet, indexLocal)
			out = appendLocal(out, opCallIndirect, in.threadedType(ins.idx))
			out = append(out, code[ins.idxEnd:ins.end]...) // the table
			out = popCounters(out)
		case opRefFunc:
			f := in.callee(ins.idx)
			in.refs[f] = true
			out = appendLocal(out, opRefFunc, f)
		case opReturn:
			out = pushCounters(out)
			out = append(out, opReturn)
		case opBr, opBrIf:
			out = appendLocal(out, ins.op, depth(ins.idx))
		case opBrTable:
			targets := in.tableTargets[i]
			out = append(out, opBrTable)
			out = appendU32(out, uint32(len(targets)-1))
			for _, t := range targets {
				out = appendU32(out, depth(t))
			}
		case opEnd:
			out = append(out, opEnd)
			if !ins.final && len(wrapped) > 0 {
				if region := wrapped[len(wrapped)-1]; region >= 0 {
					out = loopYield(out, in.weights[region], liveAt(region))
				}
				wrapped, below = wrapped[:len(wrapped)-1], below[:len(below)-1]
			}
		default:
			out = append(out, code[ins.start:ins.end]...)
		}
		if ins.final {
			// That end closed the block standing for the function.
			if entryCheck {
				out = append(out, opEnd)
			}
			out = pushCounters(out)
			if fuel {
				out = append(out, opReturn, opEnd) // the end of $outOfFuel
				out = append(out, opCall)
				out = appendU32(out, in.outFuel)
				out = append(out, opUnreachable)
			}
			out = append(out, opEnd)
			break
		}
		if wrap {
			out = loopCheck(out, in.weights[ins.region])
		} else if ins.region >= 0 {
			// A loop with parameters: they are not at hand outside it, so
			// its check yields in place and goes on.
			out = tickCheck(out, in.weights[ins.region], liveAt(ins.region), -1)
		}
		out = charge(out, ins.charge, depth(uint32(len(wrapped)))+bodyFrames)
	}
	in.wrapped, in.below = wrapped, below
	return out, nil
}

// maxWeight caps what one check charges, so that a tick plus a weight
// stays far from overflowing an i32 (ticks are at most 2^23).
const maxWeight = 1 << 24

// maxRegisterPressure is how many integer values a loop may keep live (in
// locals) before the counters go to memory in its function: of amd64's 14
// allocatable integer registers, wazero keeps two for its contexts, and a
// loop's temporaries need a few more.
const maxRegisterPressure = 8

// pressure is the most integer locals live at any checked loop header of
// the function just analysed.
func (in *instrumenter) pressure(live []bitset) int {
	most := 0
	for r, set := range live {
		if r == 0 || set == nil {
			continue
		}
		n := 0
		set.each(func(l uint32) {
			switch in.locals[l] {
			case valueI32, valueI64:
				n++
			}
		})
		most = max(most, n)
	}
	return most
}

// copyLocals stores the locals in live (every local if live is nil) in
// their scratch globals (save) or loads them back (!save). index maps a
// local's index in the input to the output's.
func (in *instrumenter) copyLocals(out []byte, live bitset, index func(uint32) uint32, save bool) []byte {
	var seen [256]int
	one := func(l uint32) {
		t := in.locals[l]
		k := scratchKey{t: t, n: seen[t]}
		seen[t]++
		g, ok := in.scratch[k]
		if !ok {
			g = in.nextGlobal
			in.nextGlobal++
			in.scratch[k] = g
			in.scratchOrder = append(in.scratchOrder, k)
		}
		if save {
			out = appendLocal(out, opLocalGet, index(l))
			out = appendGlobal(out, opGlobalSet, g)
		} else {
			out = appendGlobal(out, opGlobalGet, g)
			out = appendLocal(out, opLocalSet, index(l))
		}
	}
	if live == nil {
		for l := range in.locals {
			one(uint32(l))
		}
	} else {
		live.each(one)
	}
	return out
}

// analyse decodes the function's instructions into in.instrs and computes
// the tick weights of its regions (in.weights: the function's own, then
// each loop's) and the fuel cost of each block (in.costs). It reports
// whether the function needs a check at its entry.
func (in *instrumenter) analyse(r reader, index uint32) (entryCheck bool, err error) {
	in.instrs = in.instrs[:0]
	clear(in.tableTargets)
	in.indirect = false
	in.stack = append(in.stack[:0], frame{region: 0})
	in.weights = append(in.weights[:0], 0)
	in.costs = append(in.costs[:0], 0)
	leaf := in.leafWeight[index] > 0
	slot := int32(0)       // the block being charged
	straight := true       // no control transfer yet: the entry runs into what follows
	firstLoop := int32(-1) // the loop header reached straight from the entry
	// unguarded: a call outside every checked loop. Code inside a loop can
	// only be reached through its header (wasm's control flow is
	// structured), so a call inside one runs after a check; a function
	// whose every call does needs no check of its own on entry: before its
	// first check it runs straight-line code without calls, bounded by its
	// size, as a leaf does.
	unguarded := false
	d := decoder{r: r, base: r.off}
	var ins instr
	for !d.r.done() {
		if len(in.stack) == 0 {
			return false, fmt.Errorf("function %d has code after its end", index)
		}
		if err := d.next(&ins); err != nil {
			return false, notInstrumentableOp(err, fmt.Sprintf("function %d", index))
		}
		top := &in.stack[len(in.stack)-1]
		dead := top.dead
		fi := fnInstr{op: ins.op, idx: ins.idx, start: ins.start, end: ins.end, idxEnd: ins.idxEnd, region: -1, charge: -1}
		if ins.bt >= int64(len(in.m.types)) {
			return false, fmt.Errorf("function %d uses block type %d, which does not exist", index, ins.bt)
		}
		if ins.op == opCallIndirect && int(ins.idx) >= len(in.m.types) {
			return false, fmt.Errorf("function %d calls indirectly through type %d, which does not exist", index, ins.idx)
		}
		if ins.op == opCall && ins.idx >= in.funcImports()+uint32(len(in.m.definedFuncs)) {
			return false, fmt.Errorf("function %d calls function %d, which does not exist", index, ins.idx)
		}
		if !dead {
			in.costs[slot] += fuelCost(ins.op)
			w := uint32(1)
			if ins.op == opCall && ins.idx >= in.funcImports() {
				w += in.leafWeight[ins.idx-in.funcImports()]
			}
			in.weights[top.region] += w
		}
		funcDepth := uint32(len(in.stack) - 1)
		target := func(depth uint32) {
			if depth < funcDepth {
				in.stack[len(in.stack)-1-int(depth)].targeted = true
			}
		}
		newBlock := false
		switch ins.op {
		case opBlock, opIf:
			in.stack = append(in.stack, frame{op: ins.op, region: top.region, entryDead: dead, dead: dead})
			newBlock = ins.op == opIf
			straight = straight && ins.op == opBlock
		case opLoop:
			region := top.region
			if !dead && !leaf {
				region = int32(len(in.weights))
				in.weights = append(in.weights, 0)
				fi.region = region
				fi.loopParams = ins.bt >= 0 && len(in.m.types[ins.bt].params) > 0
				if straight && firstLoop < 0 {
					firstLoop = region
				}
			}
			in.stack = append(in.stack, frame{op: opLoop, region: region, entryDead: dead, dead: dead})
			newBlock = !dead
			straight = false
		case opElse:
			top.dead = top.entryDead
			dead = top.dead
			newBlock = true
			straight = false
		case opEnd:
			f := in.stack[len(in.stack)-1]
			in.stack = in.stack[:len(in.stack)-1]
			if len(in.stack) == 0 {
				fi.final = true
				break
			}
			parent := &in.stack[len(in.stack)-1]
			if f.op == opIf || (f.op == opBlock && f.targeted) {
				// A merge point: branches (or the if's other arm) arrive.
				newBlock = true
				dead = parent.dead
			} else {
				// Reached only from the end of its last block, which goes
				// on (a loop's branches go to its header, not its end).
				parent.dead = parent.dead || f.dead
			}
			straight = false
		case opBr:
			target(ins.idx)
			top.dead = true
		case opBrIf:
			target(ins.idx)
			newBlock = true
			straight = false
		case opBrTable:
			for _, t := range ins.targets {
				target(t)
			}
			in.tableTargets[len(in.instrs)] = append([]uint32(nil), ins.targets...)
			top.dead = true
		case opReturn, opUnreachable:
			top.dead = true
		case opReturnCall, opReturnCallIn:
			return false, notInstrumentable("function %d makes tail calls", index)
		case opCall:
			straight = false
			unguarded = unguarded || (!dead && top.region == 0)
		case opCallIndirect:
			straight = false
			in.indirect = true
			unguarded = unguarded || (!dead && top.region == 0)
		}
		if ins.op == opBr || ins.op == opBrTable || ins.op == opReturn || ins.op == opUnreachable {
			straight = false
		}
		if newBlock && !dead {
			slot = int32(len(in.costs))
			in.costs = append(in.costs, 0)
			fi.charge = slot
		}
		in.instrs = append(in.instrs, fi)
	}
	if len(in.stack) != 0 {
		return false, fmt.Errorf("function %d ends before its last block does", index)
	}
	if leaf {
		return false, nil
	}
	if firstLoop >= 0 {
		// The loop's check comes first on entry: it charges the function's
		// own code too.
		in.weights[firstLoop] += in.weights[0]
		return false, nil
	}
	return unguarded, nil
}
