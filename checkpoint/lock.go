package checkpoint

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/riffle-dev/riffle/internal/fsx"
)

// LockName is the lock file of a checkpoint directory (see LockDir).
const LockName = "LOCK"

// lockInfoMax bounds how much of a lock file is read for its holder.
const lockInfoMax = 4 << 10

// LockHolder describes the process holding a checkpoint directory's lock,
// as written into its LOCK file.
type LockHolder struct {
	PID     int       `json:"pid"`
	Host    string    `json:"host"`
	Started time.Time `json:"started"`
}

func (h LockHolder) String() string {
	if h.PID == 0 {
		return "another process (its LOCK file names none yet)"
	}
	return fmt.Sprintf("pid %d on %s, running since %s", h.PID, h.Host, h.Started.Format(time.RFC3339))
}

// DirLock is the lock of a checkpoint directory held by this process; see
// LockDir.
type DirLock struct {
	f    *os.File
	path string
}

// LockDir takes the lock of the checkpoint directory dir (created if
// missing): an exclusive OS file lock (flock) on dir/LOCK, held until
// Unlock or until the process ends, however it ends (the operating system
// releases the lock of a killed process, so a restart after kill -9 takes
// it again). The lock file names the holder (pid, host, start time). When
// another process (or another LockDir in this one) holds the lock, LockDir
// fails at once with an error wrapping ErrLocked that names the holder.
//
// Run holds the lock of Options.Dir while the job runs: two jobs on one
// checkpoint directory would restore from each other's checkpoints and
// remove each other's staging directories.
func LockDir(dir string) (*DirLock, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("checkpoint: create %s: %w", dir, err)
	}
	name := filepath.Join(dir, LockName)
	f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("checkpoint: open lock file %s: %w", name, err)
	}
	if err := fsx.Flock(f); err != nil {
		holder := readLockHolder(f)
		f.Close()
		if errors.Is(err, fsx.ErrLockHeld) {
			return nil, fmt.Errorf("%w: %s is locked by %s; one checkpoint directory serves one job at a time",
				ErrLocked, dir, holder)
		}
		return nil, fmt.Errorf("checkpoint: lock %s: %w", name, err)
	}
	host, _ := os.Hostname()
	info, _ := json.Marshal(LockHolder{PID: os.Getpid(), Host: host, Started: time.Now().UTC()})
	info = append(info, '\n')
	if err := f.Truncate(0); err == nil {
		_, err = f.WriteAt(info, 0)
	}
	if err != nil {
		f.Close() // releases the lock
		return nil, fmt.Errorf("checkpoint: write lock file %s: %w", name, err)
	}
	return &DirLock{f: f, path: name}, nil
}

// readLockHolder reads the holder written into a lock file; the zero
// LockHolder when there is none (yet) or it cannot be parsed.
func readLockHolder(f *os.File) LockHolder {
	var h LockHolder
	data, err := io.ReadAll(io.LimitReader(io.NewSectionReader(f, 0, lockInfoMax), lockInfoMax))
	if err != nil {
		return h
	}
	if json.Unmarshal(bytes.TrimSpace(data), &h) != nil {
		return LockHolder{}
	}
	return h
}

// Path returns the lock file's path.
func (l *DirLock) Path() string { return l.path }

// Unlock releases the lock. The LOCK file stays (it names the last
// holder); it is never a reason to refuse a directory, the OS lock is.
// Unlock of a nil or released lock is a no-op.
func (l *DirLock) Unlock() error {
	if l == nil || l.f == nil {
		return nil
	}
	err := l.f.Close()
	l.f = nil
	if err != nil {
		return fmt.Errorf("checkpoint: unlock %s: %w", l.path, err)
	}
	return nil
}
