//go:build unix

package checkpoint

import (
	"os"
	"syscall"
)

var errWouldBlock error = syscall.EWOULDBLOCK

// flockExclusive takes an exclusive, non-blocking flock on f. flock locks
// belong to the open file description: a second open of the same file, in
// this process or another, does not get it.
func flockExclusive(f *os.File) error {
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err != syscall.EINTR {
			return err
		}
	}
}
