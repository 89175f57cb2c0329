//go:build !unix

package agg

// cpuTime is unavailable here; the cpu-ns/row metric reads 0.
func cpuTime() int64 { return 0 }
