//go:build wasip1

// Command mixed is a wasmpool guest module whose "mixed" task is a CPU
// benchmark shaped like ordinary Go code rather than one kernel: each round
// hashes 64 KiB with SHA-256, sorts 4,096 integers and fills and reads a
// 512-entry map. Its input is the number of rounds; its output is a digest
// of everything computed, the same on every run.
package main

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/wasmpool/wasmpool/guest"
)

func main() {}

// xorshift is a fixed pseudo-random sequence: the work, and so the output,
// must not depend on the run.
type xorshift uint64

func (x *xorshift) next() uint64 {
	v := uint64(*x)
	v ^= v << 13
	v ^= v >> 7
	v ^= v << 17
	*x = xorshift(v)
	return v
}

func round(seed uint64, buf []byte, ints []int, acc *[32]byte) {
	rng := xorshift(seed | 1)
	for i := 0; i < len(buf); i += 8 {
		binary.LittleEndian.PutUint64(buf[i:], rng.next())
	}
	sum := sha256.Sum256(buf)
	for i := range ints {
		ints[i] = int(rng.next() >> 1)
	}
	slices.Sort(ints)
	m := make(map[uint64]int, 512)
	for i := range 512 {
		m[rng.next()%4096] += i
	}
	total := 0
	for k := range uint64(4096) {
		total += m[k]
	}
	for i := range acc {
		acc[i] ^= sum[i] ^ byte(ints[i*100]) ^ byte(total>>(i%8))
	}
}

//go:wasmexport mixed
func run() int32 {
	return guest.Serve(func(in []byte) ([]byte, error) {
		s := strings.TrimSpace(string(in))
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 || n > 1_000_000 {
			return nil, fmt.Errorf("mixed wants a number of rounds from 0 to 1000000, got %q", s)
		}
		buf := make([]byte, 64<<10)
		ints := make([]int, 4096)
		var acc [32]byte
		for r := range n {
			round(uint64(r)+1, buf, ints, &acc)
		}
		return []byte(hex.EncodeToString(acc[:])), nil
	})
}
