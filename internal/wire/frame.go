package wire

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
)

// Type is a frame's type: what its payload holds. The protocol using this
// package gives the values their meaning.
type Type uint8

// HeaderSize is the bytes a frame takes before its payload: the 4-byte
// length and the type byte.
const HeaderSize = 5

// MaxPayload is the largest payload this package writes or reads: 2 GiB,
// so that a length fits an int on every platform. (The length field is 32
// bits and counts the type byte too.)
const MaxPayload = 1<<31 - 2

var (
	// ErrTooLarge is a frame whose payload is over the reader's limit (or a
	// payload too large for any frame, when writing).
	ErrTooLarge = errors.New("wire: frame too large")
	// ErrMalformed is a frame or payload that does not follow the format.
	ErrMalformed = errors.New("wire: malformed frame")
)

// smallFrame is what WriteFrame copies into one buffer so the frame goes out
// in a single write; a larger payload is written from where it lies.
const smallFrame = 64 << 10

// Writer writes frames to a stream. It is not safe for concurrent use. After
// a write error the stream may hold part of a frame: the peer can no longer
// be talked to, and the writer should be dropped.
type Writer struct {
	w   io.Writer
	buf []byte
}

// NewWriter returns a Writer on w. It does no buffering of its own beyond one
// frame: each WriteFrame is on the stream when it returns.
func NewWriter(w io.Writer) *Writer { return &Writer{w: w} }

// WriteFrame writes one frame of type t whose payload is the concatenation
// of parts.
func (w *Writer) WriteFrame(t Type, parts ...[]byte) error {
	n := 0
	for _, p := range parts {
		n += len(p)
	}
	if n > MaxPayload {
		return fmt.Errorf("%w: a payload of %d bytes", ErrTooLarge, n)
	}
	if n <= smallFrame {
		b := appendHeader(w.buf[:0], t, n)
		for _, p := range parts {
			b = append(b, p...)
		}
		w.buf = b
		_, err := w.w.Write(b)
		return err
	}
	w.buf = appendHeader(w.buf[:0], t, n)
	if _, err := w.w.Write(w.buf); err != nil {
		return err
	}
	for _, p := range parts {
		if _, err := w.w.Write(p); err != nil {
			return err
		}
	}
	return nil
}

// WriteFrameTo writes one frame of type t whose payload is head followed by
// the bodyLen bytes that body writes: a large body (a module's bytes, say)
// goes out without being copied into a buffer first.
func (w *Writer) WriteFrameTo(t Type, head []byte, bodyLen int, body io.WriterTo) error {
	n := len(head) + bodyLen
	if bodyLen < 0 || n > MaxPayload {
		return fmt.Errorf("%w: a payload of %d bytes", ErrTooLarge, n)
	}
	b := appendHeader(w.buf[:0], t, n)
	w.buf = append(b, head...)
	if _, err := w.w.Write(w.buf); err != nil {
		return err
	}
	written, err := body.WriteTo(w.w)
	if err == nil && written != int64(bodyLen) {
		err = fmt.Errorf("wire: the body wrote %d bytes, %d announced", written, bodyLen)
	}
	return err
}

func appendHeader(b []byte, t Type, payloadLen int) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(payloadLen+1))
	return append(b, byte(t))
}

// Reader reads frames from a stream, refusing any payload over its limit
// before reading (or allocating for) it.
type Reader struct {
	r   *bufio.Reader
	max int
	hdr [HeaderSize]byte
}

// NewReader returns a Reader on r that accepts payloads of at most
// maxPayload bytes.
func NewReader(r io.Reader, maxPayload int) *Reader {
	return &Reader{r: bufio.NewReaderSize(r, 64<<10), max: min(maxPayload, MaxPayload)}
}

// ReadFrame reads the next frame. The payload is newly allocated and belongs
// to the caller. It returns io.EOF when the stream ends cleanly between two
// frames, io.ErrUnexpectedEOF when it ends inside one, and an error matching
// ErrTooLarge or ErrMalformed for a frame it refuses; after any error the
// stream is out of step and should be dropped.
func (r *Reader) ReadFrame() (Type, []byte, error) {
	if got, err := io.ReadFull(r.r, r.hdr[:]); err != nil {
		if errors.Is(err, io.EOF) {
			return 0, nil, io.EOF
		}
		// A stream cut right after a length is more telling as "too large"
		// when that length is: garbage usually is.
		if got >= 4 {
			if n := int64(binary.BigEndian.Uint32(r.hdr[:4])) - 1; n > int64(r.max) {
				return 0, nil, fmt.Errorf("%w: %d bytes announced, at most %d accepted", ErrTooLarge, n, r.max)
			}
		}
		return 0, nil, err
	}
	length := binary.BigEndian.Uint32(r.hdr[:4])
	if length == 0 {
		return 0, nil, fmt.Errorf("%w: a frame of length 0 (every frame has a type byte)", ErrMalformed)
	}
	n := int(length - 1)
	if n > r.max {
		return 0, nil, fmt.Errorf("%w: %d bytes announced, at most %d accepted", ErrTooLarge, n, r.max)
	}
	payload, err := readPayload(r.r, n)
	if err != nil {
		return 0, nil, err
	}
	return Type(r.hdr[4]), payload, nil
}

// readPayload reads n bytes, growing the buffer as they arrive rather than
// trusting the announced length with one allocation: a peer that announces
// a large frame and dies costs what it sent, not what it announced.
func readPayload(r io.Reader, n int) ([]byte, error) {
	const chunk = 1 << 20
	buf := make([]byte, 0, min(n, chunk))
	for len(buf) < n {
		if len(buf) == cap(buf) {
			grown := make([]byte, len(buf), min(n, 2*cap(buf)))
			copy(grown, buf)
			buf = grown
		}
		m, err := io.ReadFull(r, buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+m]
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
	}
	return buf, nil
}

// AppendFrame appends to dst one frame of type t whose payload is the
// concatenation of parts, byte for byte as WriteFrame writes it: the frame
// of a transport that carries whole messages (a message bus).
func AppendFrame(dst []byte, t Type, parts ...[]byte) ([]byte, error) {
	n := 0
	for _, p := range parts {
		n += len(p)
	}
	if n > MaxPayload {
		return dst, fmt.Errorf("%w: a payload of %d bytes", ErrTooLarge, n)
	}
	dst = slices.Grow(dst, HeaderSize+n)
	dst = appendHeader(dst, t, n)
	for _, p := range parts {
		dst = append(dst, p...)
	}
	return dst, nil
}

// ParseFrame reads the one frame that msg holds, as AppendFrame made it:
// anything else (a short message, a length that disagrees with the
// message's) matches ErrMalformed. The payload aliases msg.
func ParseFrame(msg []byte) (Type, []byte, error) {
	if len(msg) < HeaderSize {
		return 0, nil, fmt.Errorf("%w: a message of %d bytes, shorter than a frame's header", ErrMalformed, len(msg))
	}
	length := binary.BigEndian.Uint32(msg[:4])
	if uint64(length) != uint64(len(msg)-4) {
		return 0, nil, fmt.Errorf("%w: a frame of %d bytes announced in a message of %d", ErrMalformed, length, len(msg)-4)
	}
	return Type(msg[4]), msg[HeaderSize:], nil
}
