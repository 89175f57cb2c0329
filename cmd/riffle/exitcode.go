package main

import (
	"context"
	"errors"
	"net"
	"syscall"
)

// Exit statuses are decided by the kind of error, the same way in every
// command:
//
//	0    success (and --help)
//	1    runtime failure: the job failed (bad input data, I/O, a sink),
//	     brokers unreachable (also while planning), a checkpoint directory
//	     locked by another job, checkpoints that fail verification
//	2    usage or configuration error: flags, arguments, the job file (its
//	     YAML, its steps, what planning rejects: missing input files,
//	     unknown columns), a --checkpoint-dir that is a file, a checkpoint
//	     of another job
//	130  interrupted (second signal)
//
// A usage or configuration error is marked where it is found, by
// wrapping it in usageError (flag parsing, job parsing and planning,
// checkpointFlags.validate). A network failure stays a runtime failure even
// when it is found while planning (a Kafka source or sink looks up its
// topic before the job starts) and so arrives inside a usageError: the
// job file is fine, the brokers are not reachable now.
func exitCode(err error) int {
	var ue usageError
	if errors.As(err, &ue) && !isNetworkFailure(ue.err) {
		return exitUsage
	}
	return exitFailure
}

// isNetworkFailure reports whether err is (or wraps) a failure to reach or
// talk to a server: a failed network operation (dial, read, write), a
// refused, reset or timed-out connection, a failed name lookup, a deadline,
// or a server error marked temporary (Kafka's request timeouts, leader
// elections).
func isNetworkFailure(err error) bool {
	var op *net.OpError
	var dns *net.DNSError
	if errors.As(err, &op) || errors.As(err, &dns) || errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	for _, errno := range []syscall.Errno{syscall.ECONNREFUSED, syscall.ECONNRESET, syscall.ETIMEDOUT, syscall.EHOSTUNREACH, syscall.ENETUNREACH} {
		if errors.Is(err, errno) {
			return true
		}
	}
	var temp interface{ Temporary() bool }
	return errors.As(err, &temp) && temp.Temporary()
}
