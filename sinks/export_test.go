package sinks

// SetMaxCarry sets the carry bound for a test (0: barriers always cut the
// open Parquet row group) and returns the function that restores it.
func SetMaxCarry(n int64) (restore func()) {
	old := maxCarry
	maxCarry = n
	return func() { maxCarry = old }
}
