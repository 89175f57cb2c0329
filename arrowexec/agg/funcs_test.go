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

// TestLower checks that plain keys and calls need no projection, and that
// expressions, aliases and FILTER do.
func TestLower(t *testing.T) {
	parse := func(keys []string, calls ...string) ([]Key, []Call) {
		var ks []Key
		var cs []Call
		for _, s := range keys {
			k, err := ParseKey(s)
			if err != nil {
				t.Fatal(err)
			}
			ks = append(ks, k)
		}
		for _, s := range calls {
			c, err := ParseCall(s)
			if err != nil {
				t.Fatal(err)
			}
			cs = append(cs, c)
		}
		return ks, cs
	}
	ks, cs := parse([]string{"a", "b AS b"}, "count(*) AS n", "sum(x)")
	l, err := Lower(ks, cs, []string{"t"})
	if err != nil || l.Pre != nil || strings.Join(l.Keys, ",") != "a,b" || l.Aggs[1] != (Agg{Func: Sum, Column: "x"}) {
		t.Fatalf("plain: %+v %v", l, err)
	}
	ks, cs = parse([]string{"a", "a % 3", "b AS c"}, "count(*) FILTER (WHERE x > 0) AS n", "sum(x * 2)", "max(x)")
	l, err = Lower(ks, cs, []string{"t"})
	if err != nil {
		t.Fatal(err)
	}
	var pre []string
	for _, c := range l.Pre {
		pre = append(pre, c.Name+"="+c.Expr.String())
	}
	if got, want := strings.Join(pre, "; "), "a=a; a % 3=a % 3; c=b; t=t; __agg_arg_1=CASE WHEN x > 0 THEN 1 END; __agg_arg_2=x * 2; x=x"; got != want {
		t.Fatalf("pre %s, want %s", got, want)
	}
	if got := l.Aggs[1]; got != (Agg{Func: Sum, Column: "__agg_arg_2", As: "sum(x * 2)"}) {
		t.Fatalf("agg %+v", got)
	}
	ks, cs = parse([]string{"x * 2 AS x"}, "max(x)")
	if _, err := Lower(ks, cs, nil); err == nil || !strings.Contains(err.Error(), `duplicate column "x"`) {
		t.Fatalf("alias clash: %v", err)
	}
}
