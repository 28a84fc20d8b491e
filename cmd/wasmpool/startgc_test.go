package main

import (
	"runtime/debug"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestStartupGC(t *testing.T) {
	before := debug.SetGCPercent(123)
	defer debug.SetGCPercent(before)

	restore := startupGC()
	assert.Equal(t, startupGCPercent, debug.SetGCPercent(startupGCPercent), "raised while starting")
	restore()
	restore() // safe twice
	assert.Equal(t, 123, debug.SetGCPercent(123), "restored")

	t.Setenv("GOGC", "50")
	restore = startupGC()
	assert.Equal(t, 123, debug.SetGCPercent(123), "a user's GOGC is left alone")
	restore()
}
