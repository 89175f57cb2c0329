package agg

import (
	"strings"
	"testing"
)

// TestParseCall checks the aggregate call syntax both steps share: names,
// *, expressions, FILTER, aliases, and the errors of bad calls.
func TestParseCall(t *testing.T) {
	for _, c := range []struct{ in, name, arg, filter string }{
		{"count(*)", "count(*)", "", ""},
		{"COUNT( * ) as n", "n", "", ""},
		{"sum(weight)", "sum(weight)", "weight", ""},
		{`max("my col") AS "Top"`, "Top", "my col", ""},
		{"sum(price * qty) AS revenue", "revenue", "price * qty", ""},
		{"sum(price * qty)", "sum(price * qty)", "price * qty", ""},
		{"count(*) FILTER (WHERE status = 'ok') AS ok", "ok", "", "status = 'ok'"},
		{"avg(x) filter (where x > 1)", "avg(x) FILTER (WHERE x > 1)", "x", "x > 1"},
		{"approx_distinct(user_id) AS users", "users", "user_id", ""},
	} {
		got, err := ParseCall(c.in)
		if err != nil {
			t.Fatalf("%s: %v", c.in, err)
		}
		if got.Name() != c.name {
			t.Errorf("%s: name %q, want %q", c.in, got.Name(), c.name)
		}
		arg := ""
		if got.Arg != nil {
			arg = got.Arg.String()
			if col, ok := got.Column(); ok {
				arg = col
			}
		}
		if arg != c.arg {
			t.Errorf("%s: arg %q, want %q", c.in, arg, c.arg)
		}
		filter := ""
		if got.Filter != nil {
			filter = got.Filter.String()
		}
		if filter != c.filter {
			t.Errorf("%s: filter %q, want %q", c.in, filter, c.filter)
		}
	}
	for _, c := range []struct{ in, want string }{
		{"median2(x)", `unknown aggregate function "median2"`},
		{"sum(*)", "takes a column or expression, not *"},
		{"sum()", "needs an argument"},
		{"sum(a, b)", "takes 1 argument, got 2"},
		{"sum(x) AS", "expected a name after AS"},
		{"sum(x) FILTER (x > 1)", "expected WHERE"},
		{"sum(x) extra", `unexpected token "extra"`},
		{"sum(x", `expected ")"`},
		{"(x)", "expected an aggregate function name"},
	} {
		_, err := ParseCall(c.in)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want %q", c.in, err, c.want)
		}
	}
	if _, err := ParseAgg("sum(a + b)"); err == nil {
		t.Error("ParseAgg took an expression")
	}
}
