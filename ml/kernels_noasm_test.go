//go:build !amd64 || purego

package ml

func withoutAVX512(fn func()) { fn() }
