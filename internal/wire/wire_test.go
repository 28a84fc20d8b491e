package wire

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"math"
	"runtime"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestFramesRoundTrip(t *testing.T) {
	var stream bytes.Buffer
	w := NewWriter(&stream)
	big := bytes.Repeat([]byte("0123456789abcdef"), smallFrame/16+100) // over smallFrame: written in parts
	body := bytes.Repeat([]byte{7}, 3000)
	require.NoError(t, w.WriteFrame(1, []byte("hello")))
	require.NoError(t, w.WriteFrame(2))
	require.NoError(t, w.WriteFrame(3, []byte("a"), nil, []byte("bc")))
	require.NoError(t, w.WriteFrame(4, big[:10], big[10:]))
	require.NoError(t, w.WriteFrameTo(5, []byte("head"), len(body), bytes.NewReader(body)))

	r := NewReader(&stream, len(big))
	want := []struct {
		t Type
		p []byte
	}{{1, []byte("hello")}, {2, []byte{}}, {3, []byte("abc")}, {4, big}, {5, append([]byte("head"), body...)}}
	for _, f := range want {
		typ, payload, err := r.ReadFrame()
		require.NoError(t, err)
		assert.Equal(t, f.t, typ)
		assert.Equal(t, f.p, payload)
	}
	_, _, err := r.ReadFrame()
	assert.Equal(t, io.EOF, err, "a stream that ends between frames ends cleanly")
}

func TestWriteFrameToChecksTheBodyLength(t *testing.T) {
	w := NewWriter(io.Discard)
	err := w.WriteFrameTo(1, nil, 10, bytes.NewReader([]byte("short")))
	assert.ErrorContains(t, err, "wrote 5 bytes, 10 announced")
}

func TestReaderRefusesBadFrames(t *testing.T) {
	frame := func(length uint32, rest string) []byte {
		return append(binary.BigEndian.AppendUint32(nil, length), rest...)
	}
	cases := []struct {
		name   string
		stream []byte
		want   error
		text   string
	}{
		{"cut inside the header", []byte{0, 0}, io.ErrUnexpectedEOF, ""},
		{"cut inside the payload", frame(10, "\x01abc"), io.ErrUnexpectedEOF, ""},
		{"zero length", frame(0, "\x01"), ErrMalformed, "length 0"},
		{"over the limit", frame(1<<20, "\x01"), ErrTooLarge, "1048575 bytes announced, at most 100"},
		{"over the limit, cut after the length", frame(1<<30, ""), ErrTooLarge, "announced"},
		{"text instead of frames", []byte("Usage: wasmpool [command]\n"), ErrTooLarge, "announced"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, _, err := NewReader(bytes.NewReader(c.stream), 100).ReadFrame()
			require.ErrorIs(t, err, c.want)
			assert.ErrorContains(t, err, c.text)
		})
	}
}

func TestReaderDoesNotTrustTheAnnouncedLength(t *testing.T) {
	// A peer announces 1 GiB and sends 10 bytes: reading fails without
	// having allocated the gigabyte.
	stream := append(binary.BigEndian.AppendUint32(nil, 1<<30), 1)
	stream = append(stream, "0123456789"...)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, _, err := NewReader(bytes.NewReader(stream), MaxPayload).ReadFrame()
	runtime.ReadMemStats(&after)
	assert.ErrorIs(t, err, io.ErrUnexpectedEOF)
	assert.Less(t, after.TotalAlloc-before.TotalAlloc, uint64(8<<20), "bytes allocated")
}

func TestEncoderDecoderRoundTrip(t *testing.T) {
	var e Encoder
	e.Byte(9)
	e.Bool(true)
	e.Bool(false)
	e.Uvarint(math.MaxUint64)
	e.Varint(math.MinInt64)
	e.Varint(-1)
	e.Fixed64(0xdeadbeefcafef00d)
	e.String("héllo")
	e.ByteString(nil)
	e.ByteString([]byte{0, 1, 2})
	e.Uvarint(2)
	e.String("x")
	e.String("y")

	d := NewDecoder(e.Bytes())
	assert.Equal(t, byte(9), d.Byte())
	assert.True(t, d.Bool())
	assert.False(t, d.Bool())
	assert.Equal(t, uint64(math.MaxUint64), d.Uvarint())
	assert.Equal(t, int64(math.MinInt64), d.Varint())
	assert.Equal(t, int64(-1), d.Varint())
	assert.Equal(t, uint64(0xdeadbeefcafef00d), d.Fixed64())
	assert.Equal(t, "héllo", d.String())
	assert.Nil(t, d.ByteString(), "an empty byte string reads as nil")
	assert.Equal(t, []byte{0, 1, 2}, d.ByteString())
	assert.Equal(t, 2, d.Count(1))
	assert.Equal(t, "x", d.String())
	assert.Equal(t, "y", d.String())
	require.NoError(t, d.Finish())

	e.Reset()
	assert.Empty(t, e.Bytes())
}

func TestDecoderRefusesMalformedPayloads(t *testing.T) {
	cases := []struct {
		name    string
		payload []byte
		read    func(d *Decoder)
		text    string
	}{
		{"bool out of range", []byte{2}, func(d *Decoder) { d.Bool() }, "bool of value 2"},
		{"varint cut short", []byte{0x80}, func(d *Decoder) { d.Uvarint() }, "bad varint"},
		{"varint overflow", bytes.Repeat([]byte{0xff}, 11), func(d *Decoder) { d.Varint() }, "bad varint"},
		{"string longer than the payload", []byte{5, 'a'}, func(d *Decoder) { _ = d.String() }, "5 bytes with 1 left"},
		{"fixed64 cut short", []byte{1, 2, 3}, func(d *Decoder) { d.Fixed64() }, "64-bit"},
		{"byte past the end", nil, func(d *Decoder) { d.Byte() }, "past the end"},
		{"count over what is left", []byte{100, 0, 0}, func(d *Decoder) { d.Count(1) }, "100 items"},
		{"count of wide items", []byte{3, 0, 0, 0, 0, 0, 0, 0, 0}, func(d *Decoder) { d.Count(8) }, "3 items"},
		{"left over", []byte{1, 2}, func(d *Decoder) { d.Byte() }, "1 bytes left over"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := NewDecoder(c.payload)
			c.read(d)
			err := d.Finish()
			require.ErrorIs(t, err, ErrMalformed)
			assert.ErrorContains(t, err, c.text)
			// After the first error every read is a zero value.
			assert.Zero(t, d.Uvarint())
			assert.Empty(t, d.String())
			assert.Equal(t, err, d.Err(), "the first error sticks")
		})
	}
}

// FuzzReader feeds arbitrary streams to a Reader: it must never panic, and
// every frame it accepts must write back to exactly the bytes it came from.
func FuzzReader(f *testing.F) {
	var seed bytes.Buffer
	w := NewWriter(&seed)
	_ = w.WriteFrame(1, []byte("hello"))
	_ = w.WriteFrame(2)
	f.Add(seed.Bytes())
	f.Add([]byte{0, 0, 0, 0, 1})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 1, 2, 3})
	f.Add([]byte(strings.Repeat("garbage", 10)))
	f.Fuzz(func(t *testing.T, stream []byte) {
		r := NewReader(bytes.NewReader(stream), 1<<16)
		var again bytes.Buffer
		w := NewWriter(&again)
		for {
			typ, payload, err := r.ReadFrame()
			if err != nil {
				if !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) &&
					!errors.Is(err, ErrTooLarge) && !errors.Is(err, ErrMalformed) {
					t.Fatalf("unexpected error %v", err)
				}
				break
			}
			if len(payload) > 1<<16 {
				t.Fatalf("a payload of %d bytes got past the limit", len(payload))
			}
			require.NoError(t, w.WriteFrame(typ, payload))
		}
		if !bytes.HasPrefix(stream, again.Bytes()) {
			t.Fatalf("frames read did not write back to the stream they came from")
		}
	})
}

// FuzzDecoder reads arbitrary payloads as a typical message would: never a
// panic, never a huge allocation from a corrupt count, always a clean error.
func FuzzDecoder(f *testing.F) {
	var e Encoder
	e.Uvarint(3)
	e.String("a")
	e.String("b")
	e.String("c")
	e.Fixed64(1)
	e.Bool(true)
	f.Add(e.Bytes())
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Fuzz(func(t *testing.T, payload []byte) {
		d := NewDecoder(payload)
		n := d.Count(1)
		items := make([]string, 0, n)
		for range n {
			items = append(items, d.String())
		}
		d.Fixed64()
		d.Bool()
		d.Varint()
		d.ByteString()
		err := d.Finish()
		if err != nil && !errors.Is(err, ErrMalformed) {
			t.Fatalf("unexpected error %v", err)
		}
		if n > len(payload) {
			t.Fatalf("a count of %d from %d bytes", n, len(payload))
		}
	})
}
