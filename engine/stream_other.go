//go:build !unix

package engine

import "os"

// readable reports whether a read of f would return at once; off Unix it
// cannot be told, so every read of a pipe or a terminal takes the reading
// goroutine.
func readable(*os.File) bool { return false }
