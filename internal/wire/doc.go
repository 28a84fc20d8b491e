// Package wire is how wasmpool's values cross a process boundary: the one
// framing and the one set of codecs of every wire, the pipes to a pool's
// worker processes and the messages of a cluster alike.
//
// A frame is a 4-byte big-endian length n, then n bytes: one byte of frame
// type and n-1 bytes of payload. On a stream (a pipe) a Writer writes frames
// and a Reader reads them, given the largest payload it accepts, so a peer
// that goes wrong (or writes garbage on the stream) costs an error, never an
// allocation the size of whatever four bytes it sent; a transport of whole
// messages (NATS) carries one frame per message, made with AppendFrame and
// read with ParseFrame. Payloads are built with an Encoder (uvarints,
// strings, byte strings) and read with a Decoder, whose first error sticks,
// so a decoding function reads every field and checks once at the end.
//
// On top of that, the engine's values have one encoding each, which every
// wire uses: a task (EncodeTask: every field but its module, which each
// wire names its own way, and its streams, which no wire can carry:
// StreamsError), its result (ResultParts), an engine's configuration
// (EncodeConfig), and a task's error (EncodeError), which comes back
// reading the same and matching the same sentinels (Sentinels) and typed
// errors, with their fields.
//
//	w := wire.NewWriter(conn)
//	var enc wire.Encoder
//	wire.EncodeTask(&enc, &task)
//	err := w.WriteFrame(1, enc.Bytes())
//
//	r := wire.NewReader(conn, 1<<20)
//	typ, payload, err := r.ReadFrame()
//	d := wire.NewDecoder(payload)
//	wire.DecodeTask(d, &task)
//	if err := d.Finish(); err != nil { ... } // malformed, or bytes left over
package wire
