//go:build !unix

package fsx

import (
	"errors"
	"os"
)

// ErrLockHeld is returned by Flock when another holder has the lock.
var ErrLockHeld = errors.New("fsx: lock held")

// Flock is a no-op where flock does not exist: callers then do not
// exclude other processes.
func Flock(*os.File) error { return nil }
