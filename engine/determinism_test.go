package engine_test

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wasmpool/wasmpool/engine"
)

// guestSays runs wasicmd with args and returns its output, trimmed.
func guestSays(t *testing.T, e *engine.Engine, args ...string) string {
	t.Helper()
	res, err := runCmd(t, e, engine.Task{Args: args})
	require.NoError(t, err)
	return strings.TrimSpace(string(res.Output))
}

// With Config.Deterministic a task replays bit for bit: the wall clock is
// the one given and does not move, and the random source is seeded.
func TestDeterministicTasksReplay(t *testing.T) {
	const wall = 1_700_000_000_123_456_789
	e := newEngine(t, engine.Config{Deterministic: &engine.Determinism{WalltimeUnixNano: wall, Seed: 42}})
	for range 2 {
		assert.Equal(t, strconv.Itoa(wall), guestSays(t, e, "now"))
	}
	first := guestSays(t, e, "random", "32")
	assert.Len(t, first, 64)
	assert.Equal(t, first, guestSays(t, e, "random", "32"), "the same seed gives the same bytes")

	// The whole of a run replays, the Go runtime's own use of the clock and
	// random source included: the same sequence of outputs again.
	replay := func(e *engine.Engine) []string {
		return []string{guestSays(t, e, "random", "8"), guestSays(t, e, "now"), guestSays(t, e, "random", "8")}
	}
	assert.Equal(t, replay(e), replay(e))

	other := newEngine(t, engine.Config{Deterministic: &engine.Determinism{WalltimeUnixNano: wall, Seed: 43}})
	assert.NotEqual(t, first, guestSays(t, other, "random", "32"), "another seed, other bytes")
}

// By default a guest sees the real clock and a cryptographic random source:
// never the same bytes twice.
func TestDefaultClockAndRandomAreReal(t *testing.T) {
	e := newEngine(t, engine.Config{})
	before := time.Now().UnixNano()
	now, err := strconv.ParseInt(guestSays(t, e, "now"), 10, 64)
	after := time.Now().UnixNano()
	require.NoError(t, err)
	assert.True(t, before <= now && now <= after, "the guest's clock %d is not the host's [%d, %d]", now, before, after)

	a, b := guestSays(t, e, "random", "32"), guestSays(t, e, "random", "32")
	assert.Len(t, a, 64)
	assert.NotEqual(t, a, b)
	assert.NotEqual(t, strings.Repeat("0", 64), a)
}
