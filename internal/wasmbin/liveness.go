package wasmbin

import "math/bits"

// Liveness of locals, for the tick checks' cold paths: a check saves and
// restores the locals live at its point, and only those. Saving one that is
// dead there would read it, and so keep its value alive (and, across the
// function's own calls, spilled to the stack on every iteration) where the
// guest had let it die.

// maxLivenessBits bounds the analysis: locals × basic blocks. Past it, a
// check saves every local, which is correct, only slower.
const maxLivenessBits = 1 << 25

type bitset []uint64

func (b bitset) has(i uint32) bool { return b[i/64]&(1<<(i%64)) != 0 }
func (b bitset) set(i uint32)      { b[i/64] |= 1 << (i % 64) }

// each calls fn on every member, in order.
func (b bitset) each(fn func(uint32)) {
	for w, word := range b {
		for word != 0 {
			i := bits.TrailingZeros64(word)
			fn(uint32(w*64 + i))
			word &= word - 1
		}
	}
}

type liveBlock struct {
	use, def, in bitset
	succ         []int32
}

type liveFrame struct {
	op      byte
	header  int32   // a loop: the block its branches go to
	ifBlock int32   // an if: the block that ends with the if
	toEnd   []int32 // blocks that branch (or fall) to its end
	hasElse bool
}

// liveAt returns, for the function just analysed (in.instrs), the locals
// live at the entry (first) and at the header of each checked loop, by tick
// region; nil when the function is too large to analyse.
func (in *instrumenter) liveAt(nLocals int) []bitset {
	words := (nLocals + 63) / 64
	var blocks []liveBlock
	newBlock := func() int32 {
		blocks = append(blocks, liveBlock{use: make(bitset, words), def: make(bitset, words)})
		return int32(len(blocks) - 1)
	}
	edge := func(from, to int32) { blocks[from].succ = append(blocks[from].succ, to) }
	cur := newBlock()
	headers := make([]int32, len(in.weights))
	for i := range headers {
		headers[i] = -1
	}
	headers[0] = 0
	stack := []liveFrame{{}}
	branch := func(depth uint32) {
		f := &stack[len(stack)-1-int(depth)]
		switch {
		case f.op == opLoop:
			edge(cur, f.header)
		case len(stack)-1-int(depth) > 0: // not the function: its end is an exit
			f.toEnd = append(f.toEnd, cur)
		}
	}
	for i := range in.instrs {
		if len(blocks)*words*64 > maxLivenessBits {
			return nil
		}
		ins := &in.instrs[i]
		b := &blocks[cur]
		switch ins.op {
		case opLocalGet:
			if ins.idx < uint32(nLocals) && !b.def.has(ins.idx) {
				b.use.set(ins.idx)
			}
		case opLocalSet, opLocalTee:
			if ins.idx < uint32(nLocals) {
				b.def.set(ins.idx)
			}
		case opBlock:
			stack = append(stack, liveFrame{op: opBlock})
		case opLoop:
			nb := newBlock()
			edge(cur, nb)
			cur = nb
			stack = append(stack, liveFrame{op: opLoop, header: nb})
			if ins.region >= 0 {
				headers[ins.region] = nb
			}
		case opIf:
			stack = append(stack, liveFrame{op: opIf, ifBlock: cur})
			nb := newBlock()
			edge(cur, nb)
			cur = nb
		case opElse:
			f := &stack[len(stack)-1]
			f.toEnd = append(f.toEnd, cur)
			f.hasElse = true
			nb := newBlock()
			edge(f.ifBlock, nb)
			cur = nb
		case opEnd:
			f := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			if len(stack) == 0 {
				break
			}
			nb := newBlock()
			edge(cur, nb)
			for _, p := range f.toEnd {
				edge(p, nb)
			}
			if f.op == opIf && !f.hasElse {
				edge(f.ifBlock, nb)
			}
			cur = nb
		case opBr:
			branch(ins.idx)
			cur = newBlock() // unreachable until the next end or else
		case opBrIf:
			branch(ins.idx)
			nb := newBlock()
			edge(cur, nb)
			cur = nb
		case opBrTable:
			for _, t := range in.tableTargets[i] {
				branch(t)
			}
			cur = newBlock()
		case opReturn, opUnreachable:
			cur = newBlock()
		}
	}
	// Backwards, to a fixed point: live in = use ∪ (live out − def).
	for i := range blocks {
		blocks[i].in = make(bitset, words)
	}
	out := make(bitset, words)
	for changed := true; changed; {
		changed = false
		for i := len(blocks) - 1; i >= 0; i-- {
			b := &blocks[i]
			clear(out)
			for _, s := range b.succ {
				for w := range out {
					out[w] |= blocks[s].in[w]
				}
			}
			for w := range out {
				v := b.use[w] | (out[w] &^ b.def[w])
				if v != b.in[w] {
					b.in[w] = v
					changed = true
				}
			}
		}
	}
	live := make([]bitset, len(headers))
	for r, h := range headers {
		if h >= 0 {
			live[r] = blocks[h].in
		}
	}
	return live
}
