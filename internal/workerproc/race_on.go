//go:build race

package workerproc

// raceShadowFactor scales a worker process's address-space allowance in a
// build with the race detector, whose shadow memory (mapped as the heap
// grows) takes several times what the heap does: the race-enabled test
// binary serves as the worker process in this package's tests.
const raceShadowFactor = 5
