package checkpoint_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/riffle-dev/riffle/arrowexec"
	"github.com/riffle-dev/riffle/checkpoint"
)

// lockHelperEnv makes the test binary a process that locks the directory
// it names, says "locked" and waits for its stdin to close (or a kill).
const lockHelperEnv = "RIFFLE_TEST_LOCK_HELPER"

func TestMain(m *testing.M) {
	if dir := os.Getenv(lockHelperEnv); dir != "" {
		l, err := checkpoint.LockDir(dir)
		if err != nil {
			fmt.Println("error:", err)
			os.Exit(3)
		}
		fmt.Println("locked")
		bufio.NewReader(os.Stdin).ReadString('\n')
		l.Unlock()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func skipWithoutFlock(t *testing.T) {
	if runtime.GOOS == "windows" || runtime.GOOS == "plan9" || runtime.GOOS == "js" || runtime.GOOS == "wasip1" {
		t.Skip("no flock on " + runtime.GOOS)
	}
}

// TestLockDirExcludes: a second lock of one directory fails at once with
// ErrLocked naming the holder (pid, host); after Unlock it is taken again.
// flock locks belong to an open file description, so two LockDir calls in
// one process exclude each other like two processes.
func TestLockDirExcludes(t *testing.T) {
	skipWithoutFlock(t)
	dir := filepath.Join(t.TempDir(), "ck")
	l, err := checkpoint.LockDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	_, err = checkpoint.LockDir(dir)
	host, _ := os.Hostname()
	if !errors.Is(err, checkpoint.ErrLocked) || !strings.Contains(err.Error(), fmt.Sprintf("pid %d on %s", os.Getpid(), host)) {
		t.Fatalf("second lock: %v, want ErrLocked naming pid %d on %s", err, os.Getpid(), host)
	}
	if err := l.Unlock(); err != nil {
		t.Fatal(err)
	}
	l2, err := checkpoint.LockDir(dir)
	if err != nil {
		t.Fatalf("lock after unlock: %v", err)
	}
	l2.Unlock()
}

// TestLockReleasedByKill: another process holds the lock; LockDir names
// it; once it is killed with SIGKILL (no chance to unlock), the lock is
// free: a restart after kill -9 takes it.
func TestLockReleasedByKill(t *testing.T) {
	skipWithoutFlock(t)
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), lockHelperEnv+"="+dir)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	defer stdin.Close()
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || line != "locked\n" {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("helper said %q, %v", line, err)
	}
	_, err = checkpoint.LockDir(dir)
	if !errors.Is(err, checkpoint.ErrLocked) || !strings.Contains(err.Error(), fmt.Sprintf("pid %d ", cmd.Process.Pid)) {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("lock held by pid %d: got %v, want ErrLocked naming it", cmd.Process.Pid, err)
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	l, err := checkpoint.LockDir(dir)
	if err != nil {
		t.Fatalf("lock after the holder was killed: %v", err)
	}
	l.Unlock()
}

// TestRunRefusesLockedDir: a second Run on a checkpoint directory in use
// fails at once with ErrLocked, before restoring anything and without
// touching the directory (the first job's staging directory stays).
func TestRunRefusesLockedDir(t *testing.T) {
	skipWithoutFlock(t)
	dir := t.TempDir()
	l, err := checkpoint.LockDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Unlock()
	staging := filepath.Join(dir, "chk-4.inprogress")
	if err := os.MkdirAll(staging, 0o755); err != nil {
		t.Fatal(err)
	}
	log, _ := newLog()
	cfg := checkpoint.RunConfig{Options: checkpoint.Options{Dir: dir, JobFingerprint: fingerprint, Log: log}}
	built := false
	err = checkpoint.Run(context.Background(), cfg, func(*checkpoint.Checkpoint) (*arrowexec.Graph, error) {
		built = true
		return nil, errors.New("the job must not be built")
	})
	if !errors.Is(err, checkpoint.ErrLocked) || !strings.Contains(err.Error(), fmt.Sprintf("pid %d ", os.Getpid())) {
		t.Fatalf("Run on a locked directory: %v, want ErrLocked naming this process", err)
	}
	if built {
		t.Fatal("Run built the job on a locked directory")
	}
	if _, err := os.Stat(staging); err != nil {
		t.Fatalf("the running job's staging directory was touched: %v", err)
	}
}

// TestRunRefusesFreshStartOverUnusableCheckpoints: when every checkpoint in
// the directory is unusable, Run does not silently start fresh: it fails
// with ErrUnusableCheckpoints naming each checkpoint and why, before the
// job is built. With AllowFreshStart it starts fresh, with a warning.
func TestRunRefusesFreshStartOverUnusableCheckpoints(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	dir := makeCheckpoints(t, mem, 2)
	infos := completeInfos(t, dir)
	for _, inf := range infos {
		name := filepath.Join(inf.Path, checkpoint.ManifestName)
		fi, err := os.Stat(name)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.Truncate(name, fi.Size()/2); err != nil {
			t.Fatal(err)
		}
	}
	log, lb := newLog()
	cfg := checkpoint.RunConfig{
		Options:    checkpoint.Options{Dir: dir, Interval: 5 * time.Millisecond, JobFingerprint: fingerprint, Log: log},
		RunOptions: arrowexec.RunOptions{Mem: mem},
	}
	built := false
	err := checkpoint.Run(context.Background(), cfg, func(*checkpoint.Checkpoint) (*arrowexec.Graph, error) {
		built = true
		return nil, errors.New("the job must not be built")
	})
	if !errors.Is(err, checkpoint.ErrUnusableCheckpoints) || !checkpoint.IsCorruption(err) {
		t.Fatalf("Run over unusable checkpoints: %v, want ErrUnusableCheckpoints wrapping the corruption", err)
	}
	for _, inf := range infos {
		if !strings.Contains(err.Error(), inf.Path) {
			t.Errorf("error does not name %s: %v", inf.Path, err)
		}
	}
	if built {
		t.Fatal("Run built the job")
	}
	if strings.Contains(lb.String(), "starting fresh") {
		t.Fatalf("log says it starts fresh:\n%s", lb.String())
	}

	cfg.AllowFreshStart = true
	res := newResults()
	src := &seqSource{Batches: 20, Rows: 64, Keys: 50}
	err = checkpoint.Run(context.Background(), cfg, func(from *checkpoint.Checkpoint) (*arrowexec.Graph, error) {
		if from != nil {
			return nil, fmt.Errorf("restored %s", from.Path)
		}
		return keyedGraph(t, src, 2, res), nil
	})
	if err != nil {
		t.Fatalf("Run with AllowFreshStart: %v", err)
	}
	res.check(t, "mem", src.expected(t, 2))
	if !strings.Contains(lb.String(), "level=WARN msg=\"checkpoint: every checkpoint is unusable; starting fresh") {
		t.Fatalf("no warning about the fresh start:\n%s", lb.String())
	}
}
