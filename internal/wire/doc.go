// Package wire is the framing of wasmpool's process protocols: a stream of
// length-prefixed, typed frames, and a compact binary encoding for what goes
// inside them. It knows nothing of tasks or modules: the pool's worker
// processes use it over pipes, and any other transport (a message bus, a
// socket) can reuse it.
//
// A frame is a 4-byte big-endian length n, then n bytes: one byte of frame
// type and n-1 bytes of payload. A reader is given the largest payload it
// accepts, so a peer that goes wrong (or writes garbage on the stream) costs
// an error, never an allocation the size of whatever four bytes it sent.
// Payloads are built with an Encoder (uvarints, strings, byte strings) and
// read with a Decoder, whose first error sticks, so a decoding function reads
// every field and checks once at the end.
//
//	w := wire.NewWriter(conn)
//	var enc wire.Encoder
//	enc.String("hello")
//	enc.Uvarint(42)
//	err := w.WriteFrame(1, enc.Bytes())
//
//	r := wire.NewReader(conn, 1<<20)
//	typ, payload, err := r.ReadFrame()
//	d := wire.NewDecoder(payload)
//	s, n := d.String(), d.Uvarint()
//	if err := d.Finish(); err != nil { ... } // malformed, or bytes left over
package wire
