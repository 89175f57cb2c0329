//go:build unix

package fsx

import (
	"os"
	"syscall"
)

// ErrLockHeld is returned by Flock when another open file description (in
// this process or another) holds the lock.
var ErrLockHeld error = syscall.EWOULDBLOCK

// Flock takes an exclusive, non-blocking flock on f, held until f is
// closed or the process ends however it ends (the kernel releases a
// killed process's locks). flock locks belong to the open file
// description: a second open of the same file, in this process or
// another, does not get it.
func Flock(f *os.File) error {
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err != syscall.EINTR {
			return err
		}
	}
}
