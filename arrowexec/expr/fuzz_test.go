package expr

import (
	"os"
	"strings"
	"testing"
)

// FuzzParse checks that Parse never panics, that its errors carry the
// package prefix, and that what it accepts prints canonical text that
// parses back to itself and binds without panicking.
func FuzzParse(f *testing.F) {
	for _, file := range []string{"testdata/parse.txt", "testdata/errors.txt"} {
		data, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		for _, block := range strings.Split(string(data), "\n\n") {
			_, rest, _ := strings.Cut(block, "\n")
			input, _, _ := strings.Cut(rest, "\n----")
			f.Add(input)
		}
	}
	f.Fuzz(func(t *testing.T, src string) {
		e, err := Parse(src)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "expr: ") {
				t.Fatalf("error without prefix: %v", err)
			}
			return
		}
		s := e.String()
		e2, err := Parse(s)
		if err != nil {
			t.Fatalf("canonical text %q of %q does not parse: %v", s, src, err)
		}
		if e2.String() != s {
			t.Fatalf("canonical text %q reparses as %q", s, e2.String())
		}
		_, _ = Bind(e, goldenSchema)
	})
}
