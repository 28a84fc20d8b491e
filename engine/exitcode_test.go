package engine_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wasmpool/wasmpool/engine"
	"github.com/wasmpool/wasmpool/internal/testmod"
)

// TestGuestExitWinsOverTheMemoryLimit: a C program that handles malloc
// returning NULL (the memory limit refused to grow its memory) and exits 3
// is reported as what it did, exit code 3, not as a memory-limit failure;
// a guest that does not handle it still is one.
func TestGuestExitWinsOverTheMemoryLimit(t *testing.T) {
	e := newEngine(t, engine.Config{MemoryLimitBytes: 16 << 20})
	ctx := context.Background()
	ctool, err := e.CompileFile(ctx, testmod.C(t, "ctool"))
	require.NoError(t, err)

	res, err := e.Run(ctx, engine.Task{Module: ctool, Args: []string{"nomem"}, Timeout: time.Minute})
	var exit *engine.ExitError
	require.ErrorAs(t, err, &exit)
	assert.Equal(t, uint32(3), exit.Code)
	assert.Equal(t, uint32(3), res.ExitCode)
	assert.False(t, errors.Is(err, engine.ErrMemoryLimit), "%v", err)
	assert.Contains(t, err.Error(), "ctool: out of memory after")

	_, err = e.Run(ctx, engine.Task{Module: compileWAT(t, e, "membomb"), Func: "run", Timeout: time.Minute})
	require.ErrorIs(t, err, engine.ErrMemoryLimit, "grew, was refused, trapped: the limit is the story")
}

// TestExitErrorSaysWhy: an ExitError reads as the guest's own last words: a
// Go command's panic message, not the last frame of the trace after it.
func TestExitErrorSaysWhy(t *testing.T) {
	e := newEngine(t, engine.Config{})
	_, err := e.Run(context.Background(), engine.Task{Module: compileGo(t, e, "wasicmd"), Args: []string{"panic"}})
	var exit *engine.ExitError
	require.ErrorAs(t, err, &exit)
	assert.Equal(t, uint32(2), exit.Code)
	assert.Contains(t, exit.Error(), "exited with code 2: panic: boom")
}
