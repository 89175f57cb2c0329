package kafkaaddr

import (
	"slices"
	"testing"
)

func TestSplit(t *testing.T) {
	got := Split("a:1, b:2,,", " ", "c:3")
	if want := []string{"a:1", "b:2", "c:3"}; !slices.Equal(got, want) {
		t.Fatalf("Split = %q, want %q", got, want)
	}
	if got := Split(); got != nil {
		t.Fatalf("Split() = %q, want nil", got)
	}
}
