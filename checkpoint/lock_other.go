//go:build !unix

package checkpoint

import (
	"errors"
	"os"
)

var errWouldBlock = errors.New("checkpoint: lock held")

// flockExclusive is a no-op where flock does not exist: LockDir then only
// writes the holder into the LOCK file and does not exclude other
// processes.
func flockExclusive(*os.File) error { return nil }
