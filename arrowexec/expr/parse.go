package expr

import (
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/apache/arrow-go/v18/arrow"
)

type tokKind uint8

const (
	tEOF tokKind = iota
	tIdent
	tQIdent // "quoted identifier"
	tInt
	tFloat
	tString
	tOp // punctuation and operators
)

type token struct {
	kind tokKind
	text string // identifier (unquoted), literal text, or operator
	pos  int    // byte offset in the source
}

var keywords = map[string]bool{
	"AND": true, "OR": true, "NOT": true, "IS": true, "NULL": true, "IN": true,
	"LIKE": true, "TRUE": true, "FALSE": true, "CAST": true, "AS": true,
	"TIMESTAMP": true, "DATE": true, "CASE": true, "WHEN": true, "THEN": true,
	"ELSE": true, "END": true, "ILIKE": true, "INTERVAL": true,
}

func isKeyword(s string) bool { return keywords[strings.ToUpper(s)] }

type parser struct {
	src  string
	toks []token
	i    int
}

// Parse parses the expression language described in the package
// documentation. Errors carry a 1-based line:column position, e.g.
// `expr: 1:14: unexpected token ")"`.
func Parse(src string) (Expr, error) {
	p := &parser{src: src}
	if err := p.lex(); err != nil {
		return nil, err
	}
	e, err := p.parseOr()
	if err != nil {
		return nil, err
	}
	if t := p.peek(); t.kind != tEOF {
		return nil, p.unexpected(t)
	}
	return e, nil
}

// errAt formats an error at byte offset pos.
func (p *parser) errAt(pos int, format string, args ...any) error {
	line, col := 1, 1
	for _, r := range p.src[:min(pos, len(p.src))] {
		if r == '\n' {
			line++
			col = 1
		} else {
			col++
		}
	}
	return fmt.Errorf("expr: %d:%d: %s", line, col, fmt.Sprintf(format, args...))
}

func (p *parser) unexpected(t token) error {
	switch t.kind {
	case tEOF:
		return p.errAt(t.pos, "unexpected end of input")
	case tString:
		return p.errAt(t.pos, "unexpected string %s", quoteString(t.text))
	case tQIdent:
		return p.errAt(t.pos, "unexpected identifier %s", quoteIdent(t.text))
	}
	return p.errAt(t.pos, "unexpected token %q", t.text)
}

func (p *parser) lex() error {
	s := p.src
	i := 0
	for i < len(s) {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z':
			j := i + 1
			for j < len(s) && (s[j] == '_' || s[j] >= 'a' && s[j] <= 'z' || s[j] >= 'A' && s[j] <= 'Z' || s[j] >= '0' && s[j] <= '9') {
				j++
			}
			p.toks = append(p.toks, token{tIdent, s[i:j], i})
			i = j
		case c >= '0' && c <= '9' || c == '.' && i+1 < len(s) && s[i+1] >= '0' && s[i+1] <= '9':
			j := i
			kind := tInt
			for j < len(s) && s[j] >= '0' && s[j] <= '9' {
				j++
			}
			if j < len(s) && s[j] == '.' {
				kind = tFloat
				j++
				for j < len(s) && s[j] >= '0' && s[j] <= '9' {
					j++
				}
			}
			if j < len(s) && (s[j] == 'e' || s[j] == 'E') {
				k := j + 1
				if k < len(s) && (s[k] == '+' || s[k] == '-') {
					k++
				}
				if k < len(s) && s[k] >= '0' && s[k] <= '9' {
					kind = tFloat
					j = k
					for j < len(s) && s[j] >= '0' && s[j] <= '9' {
						j++
					}
				}
			}
			if j < len(s) && (s[j] == '_' || s[j] >= 'a' && s[j] <= 'z' || s[j] >= 'A' && s[j] <= 'Z') {
				k := j
				for k < len(s) && (s[k] == '_' || s[k] == '.' || s[k] >= 'a' && s[k] <= 'z' || s[k] >= 'A' && s[k] <= 'Z' || s[k] >= '0' && s[k] <= '9') {
					k++
				}
				return p.errAt(i, "malformed number %q", s[i:k])
			}
			p.toks = append(p.toks, token{kind, s[i:j], i})
			i = j
		case c == '\'' || c == '"':
			var sb strings.Builder
			j := i + 1
			for {
				if j >= len(s) {
					if c == '"' {
						return p.errAt(i, "unterminated quoted identifier")
					}
					return p.errAt(i, "unterminated string literal")
				}
				if s[j] == c {
					if j+1 < len(s) && s[j+1] == c {
						sb.WriteByte(c)
						j += 2
						continue
					}
					break
				}
				sb.WriteByte(s[j])
				j++
			}
			kind := tString
			if c == '"' {
				kind = tQIdent
				if sb.Len() == 0 {
					return p.errAt(i, "empty quoted identifier")
				}
			}
			p.toks = append(p.toks, token{kind, sb.String(), i})
			i = j + 1
		default:
			op := ""
			if i+1 < len(s) {
				switch two := s[i : i+2]; two {
				case "<=", ">=", "!=", "<>", "::", "||":
					op = two
				}
			}
			if op == "" {
				switch c {
				case '+', '-', '*', '/', '%', '=', '<', '>', '(', ')', ',':
					op = string(c)
				}
			}
			if op == "" {
				r, _ := utf8.DecodeRuneInString(s[i:])
				return p.errAt(i, "unexpected character %q", r)
			}
			p.toks = append(p.toks, token{tOp, op, i})
			i += len(op)
		}
	}
	p.toks = append(p.toks, token{tEOF, "", len(s)})
	return nil
}

func (p *parser) peek() token { return p.toks[p.i] }
func (p *parser) peekAt(k int) token {
	if p.i+k < len(p.toks) {
		return p.toks[p.i+k]
	}
	return p.toks[len(p.toks)-1]
}
func (p *parser) next() token {
	t := p.toks[p.i]
	if t.kind != tEOF {
		p.i++
	}
	return t
}

// isKw reports whether t is the (case-insensitive) keyword kw.
func isKw(t token, kw string) bool { return t.kind == tIdent && strings.EqualFold(t.text, kw) }

func isOp(t token, op string) bool { return t.kind == tOp && t.text == op }

func (p *parser) acceptKw(kw string) bool {
	if isKw(p.peek(), kw) {
		p.i++
		return true
	}
	return false
}

func (p *parser) expectOp(op string) error {
	if t := p.peek(); !isOp(t, op) {
		return p.expected(t, strconv.Quote(op))
	}
	p.i++
	return nil
}

func (p *parser) parseOr() (Expr, error) {
	l, err := p.parseAnd()
	if err != nil {
		return nil, err
	}
	for p.acceptKw("OR") {
		r, err := p.parseAnd()
		if err != nil {
			return nil, err
		}
		l = bin(OpOr, l, r)
	}
	return l, nil
}

func (p *parser) parseAnd() (Expr, error) {
	l, err := p.parseNot()
	if err != nil {
		return nil, err
	}
	for p.acceptKw("AND") {
		r, err := p.parseNot()
		if err != nil {
			return nil, err
		}
		l = bin(OpAnd, l, r)
	}
	return l, nil
}

func (p *parser) parseNot() (Expr, error) {
	if p.acceptKw("NOT") {
		x, err := p.parseNot()
		if err != nil {
			return nil, err
		}
		return Not(x), nil
	}
	return p.parseCmp()
}

var cmpOps = map[string]BinaryOp{"=": OpEq, "!=": OpNe, "<>": OpNe, "<": OpLt, "<=": OpLe, ">": OpGt, ">=": OpGe}

func (p *parser) parseCmp() (Expr, error) {
	l, err := p.parseConcat()
	if err != nil {
		return nil, err
	}
	t := p.peek()
	if t.kind == tOp {
		if op, ok := cmpOps[t.text]; ok {
			p.i++
			r, err := p.parseConcat()
			if err != nil {
				return nil, err
			}
			return bin(op, l, r), nil
		}
		return l, nil
	}
	if isKw(t, "IS") {
		p.i++
		not := p.acceptKw("NOT")
		if !p.acceptKw("NULL") {
			return nil, p.expected(p.peek(), "NULL")
		}
		return &IsNullExpr{X: l, Not: not}, nil
	}
	not := false
	if isKw(t, "NOT") && (isKw(p.peekAt(1), "IN") || isKw(p.peekAt(1), "LIKE") || isKw(p.peekAt(1), "ILIKE")) {
		p.i++
		not = true
		t = p.peek()
	}
	var e Expr
	switch {
	case isKw(t, "IN"):
		p.i++
		if e, err = p.parseInList(l); err != nil {
			return nil, err
		}
	case isKw(t, "LIKE"), isKw(t, "ILIKE"):
		p.i++
		if e, err = p.parseLike(l, isKw(t, "ILIKE")); err != nil {
			return nil, err
		}
	default:
		return l, nil
	}
	if not {
		e = Not(e)
	}
	return e, nil
}

func (p *parser) expected(t token, what string) error {
	if t.kind == tEOF {
		return p.errAt(t.pos, "unexpected end of input, expected %s", what)
	}
	u := p.unexpected(t).Error()
	return fmt.Errorf("%s, expected %s", u, what)
}

func (p *parser) parseInList(x Expr) (Expr, error) {
	if err := p.expectOp("("); err != nil {
		return nil, err
	}
	in := &InExpr{X: x}
	if t := p.peek(); isOp(t, ")") {
		return nil, p.errAt(t.pos, "empty IN list")
	}
	for {
		t := p.peek()
		e, err := p.parseUnary()
		if err != nil {
			return nil, err
		}
		l, ok := e.(*Literal)
		if !ok {
			return nil, p.errAt(t.pos, "IN list elements must be literals, got %s", e)
		}
		in.List = append(in.List, l)
		if isOp(p.peek(), ",") {
			p.i++
			continue
		}
		if err := p.expectOp(")"); err != nil {
			return nil, err
		}
		return in, nil
	}
}

// parseLike reads the pattern of LIKE or ILIKE (fold). A LIKE prefix
// pattern 'abc%' becomes starts_with and one without wildcards equality;
// other patterns become the calls like(x, pattern) and ilike(x, pattern).
// A backslash escapes the next character.
func (p *parser) parseLike(x Expr, fold bool) (Expr, error) {
	t := p.next()
	if t.kind != tString {
		return nil, p.expected(t, "a string pattern after LIKE")
	}
	pat := t.text
	if fold {
		return &CallExpr{Name: "ilike", Args: []Expr{x, Lit(pat)}}, nil
	}
	var sb strings.Builder
	for i := 0; i < len(pat); i++ {
		c := pat[i]
		switch {
		case c == '\\' && i+1 < len(pat):
			i++
			sb.WriteByte(pat[i])
		case c == '%' && i == len(pat)-1:
			return StartsWith(x, sb.String()), nil
		case c == '%' || c == '_':
			return &CallExpr{Name: "like", Args: []Expr{x, Lit(pat)}}, nil
		default:
			sb.WriteByte(c)
		}
	}
	return Eq(x, Lit(sb.String())), nil
}

// parseConcat is sum { "||" sum }.
func (p *parser) parseConcat() (Expr, error) {
	l, err := p.parseAdd()
	if err != nil {
		return nil, err
	}
	for isOp(p.peek(), "||") {
		p.i++
		r, err := p.parseAdd()
		if err != nil {
			return nil, err
		}
		l = &CallExpr{Name: "||", Args: []Expr{l, r}}
	}
	return l, nil
}

func (p *parser) parseAdd() (Expr, error) {
	l, err := p.parseMul()
	if err != nil {
		return nil, err
	}
	for {
		t := p.peek()
		var op BinaryOp
		switch {
		case isOp(t, "+"):
			op = OpAdd
		case isOp(t, "-"):
			op = OpSub
		default:
			return l, nil
		}
		p.i++
		r, err := p.parseMul()
		if err != nil {
			return nil, err
		}
		l = bin(op, l, r)
	}
}

func (p *parser) parseMul() (Expr, error) {
	l, err := p.parseUnary()
	if err != nil {
		return nil, err
	}
	for {
		t := p.peek()
		var op BinaryOp
		switch {
		case isOp(t, "*"):
			op = OpMul
		case isOp(t, "/"):
			op = OpDiv
		case isOp(t, "%"):
			op = OpMod
		default:
			return l, nil
		}
		p.i++
		r, err := p.parseUnary()
		if err != nil {
			return nil, err
		}
		l = bin(op, l, r)
	}
}

func (p *parser) parseUnary() (Expr, error) {
	t := p.peek()
	if isOp(t, "-") || isOp(t, "+") {
		n := p.peekAt(1)
		// A signed number literal folds into the literal, unless a cast
		// follows (-3::int8 is -(3::int8), as in PostgreSQL).
		if (n.kind == tInt || n.kind == tFloat) && !isOp(p.peekAt(2), "::") {
			p.i += 2
			sign := ""
			if t.text == "-" {
				sign = "-"
			}
			return p.number(token{n.kind, sign + n.text, t.pos})
		}
		p.i++
		x, err := p.parseUnary()
		if err != nil {
			return nil, err
		}
		if t.text == "+" {
			return x, nil
		}
		return Neg(x), nil
	}
	return p.parsePostfix()
}

func (p *parser) parsePostfix() (Expr, error) {
	x, err := p.parsePrimary()
	if err != nil {
		return nil, err
	}
	for isOp(p.peek(), "::") {
		p.i++
		name, err := p.typeName()
		if err != nil {
			return nil, err
		}
		x = &CastExpr{X: x, To: name}
	}
	return x, nil
}

func (p *parser) typeName() (string, error) {
	t := p.next()
	if t.kind != tIdent {
		return "", p.expected(t, "a type name")
	}
	name := strings.ToLower(t.text)
	if name == "decimal" || name == "numeric" {
		return p.decimalType(t)
	}
	if _, ok := castTypes[name]; !ok {
		return "", p.errAt(t.pos, "unknown type %q (known: %s)", t.text, castTypeList)
	}
	return name, nil
}

func (p *parser) number(t token) (Expr, error) {
	if t.kind == tInt {
		v, err := strconv.ParseInt(t.text, 10, 64)
		if err != nil {
			return nil, p.errAt(t.pos, "integer literal %s out of range for int64", t.text)
		}
		return Lit(v), nil
	}
	v, err := strconv.ParseFloat(t.text, 64)
	if err != nil {
		return nil, p.errAt(t.pos, "float literal %s out of range for float64", t.text)
	}
	return Lit(v), nil
}

func (p *parser) parsePrimary() (Expr, error) {
	t := p.next()
	switch t.kind {
	case tInt, tFloat:
		return p.number(t)
	case tString:
		return Lit(t.text), nil
	case tQIdent:
		return Col(t.text), nil
	case tOp:
		if t.text == "(" {
			e, err := p.parseOr()
			if err != nil {
				return nil, err
			}
			if err := p.expectOp(")"); err != nil {
				return nil, err
			}
			return e, nil
		}
		return nil, p.unexpected(t)
	case tEOF:
		return nil, p.unexpected(t)
	}
	switch kw := strings.ToUpper(t.text); kw {
	case "TRUE":
		return Lit(true), nil
	case "FALSE":
		return Lit(false), nil
	case "NULL":
		return Lit(nil), nil
	case "INTERVAL":
		return p.parseInterval()
	case "TIMESTAMP", "DATE":
		s := p.next()
		if s.kind != tString {
			return nil, p.expected(s, "a string after "+kw)
		}
		if kw == "DATE" {
			d, err := time.Parse("2006-01-02", s.text)
			if err != nil {
				return nil, p.errAt(s.pos, "invalid date %s (want 'YYYY-MM-DD')", quoteString(s.text))
			}
			return Lit(arrow.Date32FromTime(d)), nil
		}
		ts, ok := parseTimestamp(s.text)
		if !ok {
			return nil, p.errAt(s.pos, "invalid timestamp %s (want 'YYYY-MM-DD hh:mm:ss[.fraction]')", quoteString(s.text))
		}
		return Lit(ts), nil
	case "CAST":
		if err := p.expectOp("("); err != nil {
			return nil, err
		}
		x, err := p.parseOr()
		if err != nil {
			return nil, err
		}
		if !p.acceptKw("AS") {
			return nil, p.expected(p.peek(), "AS")
		}
		name, err := p.typeName()
		if err != nil {
			return nil, err
		}
		if err := p.expectOp(")"); err != nil {
			return nil, err
		}
		return &CastExpr{X: x, To: name}, nil
	case "CASE":
		return p.parseCase()
	}
	if isKeyword(t.text) {
		return nil, p.unexpected(t)
	}
	if isOp(p.peek(), "(") {
		return p.parseCall(t)
	}
	return Col(t.text), nil
}

// parseCase parses the rest of a CASE expression after the keyword.
func (p *parser) parseCase() (Expr, error) {
	c := &CaseExpr{}
	if isKw(p.peek(), "END") || isKw(p.peek(), "ELSE") {
		return nil, p.expected(p.peek(), "WHEN")
	}
	if !isKw(p.peek(), "WHEN") {
		x, err := p.parseOr()
		if err != nil {
			return nil, err
		}
		c.Operand = x
	}
	for p.acceptKw("WHEN") {
		cond, err := p.parseOr()
		if err != nil {
			return nil, err
		}
		if !p.acceptKw("THEN") {
			return nil, p.expected(p.peek(), "THEN")
		}
		v, err := p.parseOr()
		if err != nil {
			return nil, err
		}
		c.Whens = append(c.Whens, When{Cond: cond, Then: v})
	}
	if len(c.Whens) == 0 {
		return nil, p.expected(p.peek(), "WHEN")
	}
	if p.acceptKw("ELSE") {
		v, err := p.parseOr()
		if err != nil {
			return nil, err
		}
		c.Else = v
	}
	if !p.acceptKw("END") {
		return nil, p.expected(p.peek(), "WHEN, ELSE or END")
	}
	return c, nil
}

func (p *parser) parseCall(name token) (Expr, error) {
	fname := strings.ToLower(name.text)
	if fname == "starts_with" {
		return p.parseStartsWith()
	}
	if fname == "extract" {
		return p.parseExtract()
	}
	f, ok := functions[fname]
	if !ok {
		return nil, p.errAt(name.pos, "unknown function %q (known: %s)", name.text, functionList())
	}
	p.i++ // (
	call := &CallExpr{Name: fname}
	if !isOp(p.peek(), ")") {
		for {
			a, err := p.parseOr()
			if err != nil {
				return nil, err
			}
			call.Args = append(call.Args, a)
			if !isOp(p.peek(), ",") {
				break
			}
			p.i++
		}
	}
	if err := p.expectOp(")"); err != nil {
		return nil, err
	}
	if err := f.checkArity(len(call.Args)); err != nil {
		return nil, p.errAt(name.pos, "%s %v", fname, err)
	}
	return call, nil
}

func (p *parser) parseStartsWith() (Expr, error) {
	p.i++ // (
	x, err := p.parseOr()
	if err != nil {
		return nil, err
	}
	if err := p.expectOp(","); err != nil {
		return nil, err
	}
	t := p.next()
	if t.kind != tString {
		return nil, p.expected(t, "a string literal as the prefix of starts_with")
	}
	if err := p.expectOp(")"); err != nil {
		return nil, err
	}
	return StartsWith(x, t.text), nil
}

// parseTimestamp reads 'YYYY-MM-DD[ T]hh:mm:ss[.fraction][Z]' or a date
// alone, in UTC.
func parseTimestamp(s string) (time.Time, bool) {
	for _, layout := range []string{
		"2006-01-02 15:04:05.999999999",
		"2006-01-02T15:04:05.999999999",
		"2006-01-02T15:04:05.999999999Z07:00",
		"2006-01-02 15:04:05.999999999Z07:00",
		"2006-01-02 15:04",
		"2006-01-02",
	} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), true
		}
	}
	return time.Time{}, false
}

// parseInterval reads the rest of INTERVAL '<n> <unit> …' or INTERVAL <n>
// <unit>.
func (p *parser) parseInterval() (Expr, error) {
	t := p.next()
	text := t.text
	switch t.kind {
	case tString:
	case tInt:
		u := p.next()
		if u.kind != tIdent {
			return nil, p.expected(u, "a unit after INTERVAL "+t.text)
		}
		text += " " + u.text
	default:
		return nil, p.expected(t, "a string such as '1 hour' after INTERVAL")
	}
	d, err := parseInterval(text)
	if err != nil {
		return nil, p.errAt(t.pos, "invalid INTERVAL %s: %v", quoteString(text), err)
	}
	return Lit(d), nil
}

// parseExtract reads extract(field FROM x) as date_part('field', x).
func (p *parser) parseExtract() (Expr, error) {
	p.i++ // (
	f := p.next()
	if f.kind != tIdent && f.kind != tString {
		return nil, p.expected(f, "a field name such as year in extract")
	}
	if t := p.next(); t.kind != tIdent || !strings.EqualFold(t.text, "FROM") {
		return nil, p.expected(t, "FROM")
	}
	x, err := p.parseOr()
	if err != nil {
		return nil, err
	}
	if err := p.expectOp(")"); err != nil {
		return nil, err
	}
	return &CallExpr{Name: "date_part", Args: []Expr{Lit(strings.ToLower(f.text)), x}}, nil
}
