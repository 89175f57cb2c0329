package expr

import (
	"flag"
	"os"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
)

var rewrite = flag.Bool("rewrite", false, "rewrite testdata golden files with the current output")

// goldenSchema is the schema bind cases in testdata are checked against.
var goldenSchema = arrow.NewSchema([]arrow.Field{
	{Name: "a", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
	{Name: "b", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
	{Name: "name", Type: arrow.BinaryTypes.String, Nullable: true},
	{Name: "flag", Type: arrow.FixedWidthTypes.Boolean, Nullable: true},
	{Name: "ts", Type: arrow.FixedWidthTypes.Timestamp_ms, Nullable: true},
	{Name: "d", Type: arrow.FixedWidthTypes.Date32, Nullable: true},
	{Name: "u", Type: arrow.PrimitiveTypes.Uint64, Nullable: true},
	{Name: "i8", Type: arrow.PrimitiveTypes.Int8, Nullable: true},
	{Name: "my col", Type: arrow.PrimitiveTypes.Int32, Nullable: true},
	{Name: "ls", Type: arrow.BinaryTypes.LargeString, Nullable: true},
}, nil)

// TestGolden runs testdata/*.txt. Each case is
//
//	parse|bind
//	<expression, one or more lines>
//	----
//	<expected output>
//
// separated by blank lines. parse prints the canonical text of the parsed
// expression or the error; bind also binds to goldenSchema and prints the
// result type. Run with -rewrite to regenerate, then review the diff.
func TestGolden(t *testing.T) {
	for _, file := range []string{"testdata/errors.txt", "testdata/parse.txt"} {
		t.Run(file, func(t *testing.T) {
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			var out strings.Builder
			for i, block := range strings.Split(strings.TrimSpace(string(data)), "\n\n") {
				cmd, rest, _ := strings.Cut(block, "\n")
				input, want, ok := strings.Cut(rest, "\n----\n")
				if !ok {
					input, want, _ = strings.Cut(rest, "\n----")
				}
				got := runGolden(t, cmd, input)
				if !*rewrite && got != want {
					t.Errorf("case %d: %s %s\ngot:  %s\nwant: %s", i+1, cmd, input, got, want)
				}
				if i > 0 {
					out.WriteString("\n\n")
				}
				out.WriteString(cmd + "\n" + input + "\n----\n" + got)
			}
			if *rewrite {
				if err := os.WriteFile(file, []byte(out.String()+"\n"), 0o644); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}

func runGolden(t *testing.T, cmd, input string) string {
	e, err := Parse(input)
	if err != nil {
		return err.Error()
	}
	s := e.String()
	// The canonical text must parse back to itself.
	if e2, err := Parse(s); err != nil || e2.String() != s {
		t.Errorf("%q does not round trip: %v %v", s, e2, err)
	}
	switch cmd {
	case "parse":
		return s
	case "bind":
		b, err := Bind(e, goldenSchema)
		if err != nil {
			return err.Error()
		}
		return s + " :: " + typeName(b.Type())
	}
	t.Fatalf("unknown command %q", cmd)
	return ""
}
