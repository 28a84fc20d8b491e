package wasmbin

// StateOnlyInMemoryAndGlobals reports whether no instruction of the module
// can change a table or a segment's state (table.set, table.grow,
// table.fill, table.copy, table.init, elem.drop, memory.init, data.drop).
// Such a module's whole mutable state after instantiation is its linear
// memory and its globals, which is what a pre-initialisation template can
// capture. It decodes every function body, each time it is called; a body
// it cannot decode (an instruction the decoder does not know) proves
// nothing, and the answer is then false.
func (f *Facts) StateOnlyInMemoryAndGlobals() bool {
	s, ok := f.section(secCode)
	if !ok {
		return true // no code, no instruction
	}
	return scanCode(s.body.b)
}

// scanCode is StateOnlyInMemoryAndGlobals for a code section's content. It
// never panics on hostile input.
func scanCode(body []byte) bool {
	r := reader{b: body}
	n, err := r.u32()
	if err != nil {
		return false
	}
	var d decoder // one, so that its buffer serves every function
	for range n {
		size, err := r.u32()
		if err != nil {
			return false
		}
		fn, err := r.sub(uint64(size))
		if err != nil {
			return false
		}
		if mutates, err := mutatesTablesOrSegments(&d, fn); err != nil || mutates {
			return false
		}
	}
	return r.done()
}

// mutatesTablesOrSegments decodes one function body (locals, then
// instructions) up to the first instruction that mutates a table or a
// segment.
func mutatesTablesOrSegments(d *decoder, fn reader) (bool, error) {
	if err := skipLocals(&fn); err != nil {
		return false, err
	}
	d.r, d.base = fn, fn.off
	var in instr
	for !d.r.done() {
		if err := d.next(&in); err != nil {
			return false, err
		}
		switch {
		case in.op == opTableSet:
			return true, nil
		case in.op == opPrefixMisc:
			switch in.sub {
			case 8, 9, 12, 13, 14, 15, 17: // memory.init, data.drop, table.init, elem.drop, table.copy, table.grow, table.fill
				return true, nil
			}
		}
	}
	return false, nil
}
