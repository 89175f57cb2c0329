package expr

// Text holds an expression in a configuration struct. It implements
// encoding.TextUnmarshaler, so YAML (gopkg.in/yaml.v3), JSON and flag
// packages parse `filter: "a > 10 AND b < 0.5"` into it, with the parse
// error (and its position) reported by the decoder; it marshals back to the
// canonical text. The zero value holds no expression.
type Text struct {
	Expr Expr
}

// UnmarshalText parses b.
func (t *Text) UnmarshalText(b []byte) error {
	e, err := Parse(string(b))
	if err != nil {
		return err
	}
	t.Expr = e
	return nil
}

// MarshalText returns the canonical text of the expression, or nothing for
// the zero value.
func (t Text) MarshalText() ([]byte, error) {
	if t.Expr == nil {
		return nil, nil
	}
	return []byte(t.Expr.String()), nil
}

// String returns the canonical text.
func (t Text) String() string {
	if t.Expr == nil {
		return ""
	}
	return t.Expr.String()
}
