package expr

import (
	"strings"
)

// AggCall is an aggregate call as the aggregate and window steps write it:
//
//	aggcall = name "(" ( "*" | [ expr { "," expr } ] ) ")"
//	          [ FILTER "(" WHERE expr ")" ] [ AS identifier ]
//
// The parser knows the syntax only; which names are aggregates, and their
// arities and types, is the aggregate library's (package agg).
type AggCall struct {
	// Name is the function name, lower case.
	Name string
	// Star marks name(*).
	Star bool
	// Args are the arguments (none for name(*) or name()).
	Args []Expr
	// Filter is the FILTER (WHERE …) condition, nil without one.
	Filter Expr
	// As is the alias, "" without one.
	As string
}

// ParseAggCall parses one aggregate call (see AggCall). Errors carry a
// line:column like Parse's.
func ParseAggCall(src string) (AggCall, error) {
	p := &parser{src: src}
	if err := p.lex(); err != nil {
		return AggCall{}, err
	}
	var c AggCall
	name := p.next()
	if name.kind != tIdent || isKeyword(name.text) {
		return c, p.expected(name, "an aggregate function name")
	}
	c.Name = strings.ToLower(name.text)
	if err := p.expectOp("("); err != nil {
		return c, err
	}
	switch {
	case isOp(p.peek(), "*") && isOp(p.peekAt(1), ")"):
		p.i++
		c.Star = true
	case isOp(p.peek(), ")"):
	default:
		for {
			a, err := p.parseOr()
			if err != nil {
				return c, err
			}
			c.Args = append(c.Args, a)
			if !isOp(p.peek(), ",") {
				break
			}
			p.i++
		}
	}
	if err := p.expectOp(")"); err != nil {
		return c, err
	}
	if isKw(p.peek(), "FILTER") {
		p.i++
		if err := p.expectOp("("); err != nil {
			return c, err
		}
		if !isKw(p.peek(), "WHERE") {
			return c, p.expected(p.peek(), "WHERE")
		}
		p.i++
		f, err := p.parseOr()
		if err != nil {
			return c, err
		}
		if err := p.expectOp(")"); err != nil {
			return c, err
		}
		c.Filter = f
	}
	as, err := p.parseAlias()
	if err != nil {
		return c, err
	}
	c.As = as
	return c, nil
}

// ParseNamed parses `expr [AS identifier]`, a group-by item or window key;
// the alias is "" without AS.
func ParseNamed(src string) (Expr, string, error) {
	p := &parser{src: src}
	if err := p.lex(); err != nil {
		return nil, "", err
	}
	e, err := p.parseOr()
	if err != nil {
		return nil, "", err
	}
	as, err := p.parseAlias()
	if err != nil {
		return nil, "", err
	}
	return e, as, nil
}

// parseAlias parses `[AS identifier]` and the end of input.
func (p *parser) parseAlias() (string, error) {
	as := ""
	if p.acceptKw("AS") {
		t := p.next()
		if t.kind != tQIdent && (t.kind != tIdent || isKeyword(t.text)) {
			return "", p.expected(t, "a name after AS")
		}
		as = t.text
	}
	if t := p.peek(); t.kind != tEOF {
		return "", p.unexpected(t)
	}
	return as, nil
}
