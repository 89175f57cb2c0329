package expr

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
)

// Expr is a node of an expression's syntax tree, as returned by Parse and the
// Go builders. String prints canonical text that Parse reads back to an equal
// tree. An Expr is immutable and says nothing about types until it is bound
// to a schema with Bind.
type Expr interface {
	String() string
}

// ColumnRef references a column of the input by name.
type ColumnRef struct {
	Name string
}

// Literal is a constant. Value is one of int64, float64, string, bool, nil
// (SQL NULL), time.Time (a timestamp literal) or arrow.Date32 (a date
// literal).
type Literal struct {
	Value any
}

// BinaryOp is an arithmetic, comparison or logical binary operator.
type BinaryOp uint8

// Binary operators. Comparison operators are spelled "=", "!=", "<", "<=",
// ">", ">="; "<>" parses as "!=".
const (
	OpAdd BinaryOp = iota
	OpSub
	OpMul
	OpDiv
	OpMod
	OpEq
	OpNe
	OpLt
	OpLe
	OpGt
	OpGe
	OpAnd
	OpOr
)

var opText = [...]string{"+", "-", "*", "/", "%", "=", "!=", "<", "<=", ">", ">=", "AND", "OR"}

func (op BinaryOp) String() string { return opText[op] }

func (op BinaryOp) isArith() bool { return op <= OpMod }
func (op BinaryOp) isCmp() bool   { return op >= OpEq && op <= OpGe }

// flip returns the operator with its operands swapped: a op b == b op.flip() a.
func (op BinaryOp) flip() BinaryOp {
	switch op {
	case OpLt:
		return OpGt
	case OpLe:
		return OpGe
	case OpGt:
		return OpLt
	case OpGe:
		return OpLe
	}
	return op
}

// negate returns the comparison that is its logical negation under SQL
// three-valued logic (NOT a < b == a >= b; both NULL when an operand is).
func (op BinaryOp) negate() BinaryOp {
	switch op {
	case OpEq:
		return OpNe
	case OpNe:
		return OpEq
	case OpLt:
		return OpGe
	case OpLe:
		return OpGt
	case OpGt:
		return OpLe
	case OpGe:
		return OpLt
	}
	return op
}

// BinaryExpr applies Op to L and R.
type BinaryExpr struct {
	Op   BinaryOp
	L, R Expr
}

// NotExpr is logical negation.
type NotExpr struct{ X Expr }

// NegExpr is arithmetic negation (-x).
type NegExpr struct{ X Expr }

// IsNullExpr is `X IS NULL`, or `X IS NOT NULL` when Not is set.
type IsNullExpr struct {
	X   Expr
	Not bool
}

// InExpr is `X IN (List...)`. List holds literals only.
type InExpr struct {
	X    Expr
	List []*Literal
}

// StartsWithExpr is `starts_with(X, Prefix)`; `X LIKE 'abc%'` parses to it.
type StartsWithExpr struct {
	X      Expr
	Prefix string
}

// CastExpr converts X to the type named To (see doc.go for the names).
type CastExpr struct {
	X  Expr
	To string
}

// When is one WHEN … THEN … arm of a CaseExpr.
type When struct {
	Cond, Then Expr
}

// CaseExpr is `CASE WHEN cond THEN v … [ELSE v] END` when Operand is nil
// (searched form), or `CASE operand WHEN v THEN v … END` (simple form, where
// each When.Cond is a value compared with Operand by =). A nil Else is NULL.
type CaseExpr struct {
	Operand Expr
	Whens   []When
	Else    Expr
}

// CallExpr is a call of a function of the function table (see doc.go),
// such as coalesce(a, b). Name is lower case.
type CallExpr struct {
	Name string
	Args []Expr
}

// Col references the column name.
func Col(name string) *ColumnRef { return &ColumnRef{Name: name} }

// Lit makes a literal from a Go value: int, int8..int64, uint8..uint64 up to
// MaxInt64 (integer literals are int64), float32, float64, string, bool,
// nil (NULL), time.Time (timestamp) or arrow.Date32 (date). It panics on any
// other type or value: literals in Go code are programmer input.
func Lit(v any) *Literal {
	l, err := litOf(v)
	if err != nil {
		panic(err)
	}
	return l
}

func litOf(v any) (*Literal, error) {
	switch x := v.(type) {
	case *Literal:
		return x, nil
	case nil:
		return &Literal{nil}, nil
	case int:
		return &Literal{int64(x)}, nil
	case int8:
		return &Literal{int64(x)}, nil
	case int16:
		return &Literal{int64(x)}, nil
	case int32:
		return &Literal{int64(x)}, nil
	case int64:
		return &Literal{x}, nil
	case uint8:
		return &Literal{int64(x)}, nil
	case uint16:
		return &Literal{int64(x)}, nil
	case uint32:
		return &Literal{int64(x)}, nil
	case uint:
		if uint64(x) <= math.MaxInt64 {
			return &Literal{int64(x)}, nil
		}
	case uint64:
		if x <= math.MaxInt64 {
			return &Literal{int64(x)}, nil
		}
	case float32:
		return &Literal{float64(x)}, nil
	case float64:
		return &Literal{x}, nil
	case string:
		return &Literal{x}, nil
	case bool:
		return &Literal{x}, nil
	case time.Time:
		return &Literal{x.UTC()}, nil
	case arrow.Date32:
		return &Literal{x}, nil
	case time.Duration:
		return &Literal{x}, nil
	}
	return nil, fmt.Errorf("expr: unsupported literal %v of type %T", v, v)
}

func bin(op BinaryOp, l, r Expr) Expr { return &BinaryExpr{Op: op, L: l, R: r} }

// Add returns l + r.
func Add(l, r Expr) Expr { return bin(OpAdd, l, r) }

// Sub returns l - r.
func Sub(l, r Expr) Expr { return bin(OpSub, l, r) }

// Mul returns l * r.
func Mul(l, r Expr) Expr { return bin(OpMul, l, r) }

// Div returns l / r (always float64; NULL when r is 0).
func Div(l, r Expr) Expr { return bin(OpDiv, l, r) }

// Mod returns l % r (NULL when r is 0).
func Mod(l, r Expr) Expr { return bin(OpMod, l, r) }

// Eq returns l = r.
func Eq(l, r Expr) Expr { return bin(OpEq, l, r) }

// Ne returns l != r.
func Ne(l, r Expr) Expr { return bin(OpNe, l, r) }

// Lt returns l < r.
func Lt(l, r Expr) Expr { return bin(OpLt, l, r) }

// Le returns l <= r.
func Le(l, r Expr) Expr { return bin(OpLe, l, r) }

// Gt returns l > r.
func Gt(l, r Expr) Expr { return bin(OpGt, l, r) }

// Ge returns l >= r.
func Ge(l, r Expr) Expr { return bin(OpGe, l, r) }

// And returns the conjunction of its operands (TRUE when there are none).
func And(es ...Expr) Expr { return fold(OpAnd, true, es) }

// Or returns the disjunction of its operands (FALSE when there are none).
func Or(es ...Expr) Expr { return fold(OpOr, false, es) }

func fold(op BinaryOp, empty bool, es []Expr) Expr {
	if len(es) == 0 {
		return Lit(empty)
	}
	e := es[0]
	for _, r := range es[1:] {
		e = bin(op, e, r)
	}
	return e
}

// Not returns NOT e.
func Not(e Expr) Expr { return &NotExpr{X: e} }

// Neg returns -e.
func Neg(e Expr) Expr { return &NegExpr{X: e} }

// IsNull returns e IS NULL.
func IsNull(e Expr) Expr { return &IsNullExpr{X: e} }

// IsNotNull returns e IS NOT NULL.
func IsNotNull(e Expr) Expr { return &IsNullExpr{X: e, Not: true} }

// In returns e IN (lits...). Each element of lits is a Go value accepted by
// Lit or a *Literal. It panics on other types.
func In(e Expr, lits ...any) Expr {
	in := &InExpr{X: e, List: make([]*Literal, len(lits))}
	for i, v := range lits {
		in.List[i] = Lit(v)
	}
	return in
}

// StartsWith returns starts_with(e, prefix).
func StartsWith(e Expr, prefix string) Expr { return &StartsWithExpr{X: e, Prefix: prefix} }

// Cast returns CAST(e AS typeName).
func Cast(e Expr, typeName string) Expr { return &CastExpr{X: e, To: strings.ToLower(typeName)} }

// Case returns the searched CASE: whens alternate conditions and values
// (cond1, then1, cond2, then2, …); an odd trailing element is the ELSE
// value. It panics when whens has fewer than two elements.
func Case(whens ...Expr) Expr {
	if len(whens) < 2 {
		panic("expr: Case needs at least one WHEN condition and THEN value")
	}
	c := &CaseExpr{}
	for i := 0; i+1 < len(whens); i += 2 {
		c.Whens = append(c.Whens, When{Cond: whens[i], Then: whens[i+1]})
	}
	if len(whens)%2 == 1 {
		c.Else = whens[len(whens)-1]
	}
	return c
}

// Coalesce returns coalesce(es...): the first argument that is not NULL.
func Coalesce(es ...Expr) Expr { return &CallExpr{Name: "coalesce", Args: es} }

// MustParse is Parse that panics on error, for expressions written in code.
func MustParse(src string) Expr {
	e, err := Parse(src)
	if err != nil {
		panic(err)
	}
	return e
}

// Precedence levels for printing, loosest first.
const (
	precOr = iota + 1
	precAnd
	precNot
	precCmp
	precAdd
	precMul
	precUnary
	precPostfix
	precPrimary
)

func prec(e Expr) int {
	switch x := e.(type) {
	case *BinaryExpr:
		switch {
		case x.Op == OpOr:
			return precOr
		case x.Op == OpAnd:
			return precAnd
		case x.Op.isCmp():
			return precCmp
		case x.Op == OpAdd || x.Op == OpSub:
			return precAdd
		default:
			return precMul
		}
	case *NotExpr:
		return precNot
	case *IsNullExpr, *InExpr:
		return precCmp
	case *NegExpr:
		return precUnary
	case *Literal:
		if n, ok := x.Value.(int64); ok && n < 0 {
			return precUnary
		}
		if f, ok := x.Value.(float64); ok && (f < 0 || (f == 0 && math.Signbit(f))) {
			return precUnary
		}
	}
	return precPrimary
}

// paren prints e, parenthesized when its precedence is below min.
func paren(e Expr, min int) string {
	if prec(e) < min {
		return "(" + e.String() + ")"
	}
	return e.String()
}

func (c *ColumnRef) String() string { return quoteIdent(c.Name) }

func (l *Literal) String() string {
	switch v := l.Value.(type) {
	case nil:
		return "NULL"
	case bool:
		if v {
			return "TRUE"
		}
		return "FALSE"
	case int64:
		return strconv.FormatInt(v, 10)
	case float64:
		return formatFloatLit(v)
	case string:
		return quoteString(v)
	case time.Time:
		return "TIMESTAMP " + quoteString(formatTimestamp(v))
	case arrow.Date32:
		return "DATE " + quoteString(v.FormattedString())
	case time.Duration:
		if v%time.Microsecond != 0 {
			return fmt.Sprintf("INTERVAL '%d nanoseconds'", int64(v))
		}
		return fmt.Sprintf("INTERVAL '%d microseconds'", int64(v/time.Microsecond))
	}
	return fmt.Sprintf("<bad literal %T>", l.Value)
}

func formatFloatLit(v float64) string {
	switch {
	case math.IsNaN(v):
		return "CAST('NaN' AS float64)"
	case math.IsInf(v, 1):
		return "CAST('+Inf' AS float64)"
	case math.IsInf(v, -1):
		return "CAST('-Inf' AS float64)"
	}
	s := strconv.FormatFloat(v, 'g', -1, 64)
	if !strings.ContainsAny(s, ".eEn") {
		s += ".0"
	}
	return s
}

func formatTimestamp(t time.Time) string {
	return t.UTC().Format("2006-01-02 15:04:05.999999999")
}

func (b *BinaryExpr) String() string {
	p := prec(b)
	lmin, rmin := p, p+1 // left-associative
	if b.Op.isCmp() {
		lmin, rmin = p+1, p+1 // comparisons do not chain
	}
	return paren(b.L, lmin) + " " + b.Op.String() + " " + paren(b.R, rmin)
}

func (n *NotExpr) String() string { return "NOT " + paren(n.X, precNot) }

func (n *NegExpr) String() string {
	s := paren(n.X, precUnary)
	if _, lit := n.X.(*Literal); lit || strings.HasPrefix(s, "-") {
		// -3 would read back as the literal -3, not as -(3).
		return "-(" + n.X.String() + ")"
	}
	return "-" + s
}

func (n *IsNullExpr) String() string {
	if n.Not {
		return paren(n.X, precCmp+1) + " IS NOT NULL"
	}
	return paren(n.X, precCmp+1) + " IS NULL"
}

func (n *InExpr) String() string {
	var sb strings.Builder
	sb.WriteString(paren(n.X, precCmp+1))
	sb.WriteString(" IN (")
	for i, l := range n.List {
		if i > 0 {
			sb.WriteString(", ")
		}
		sb.WriteString(l.String())
	}
	sb.WriteString(")")
	return sb.String()
}

func (s *StartsWithExpr) String() string {
	return "starts_with(" + s.X.String() + ", " + quoteString(s.Prefix) + ")"
}

func (c *CaseExpr) String() string {
	var sb strings.Builder
	sb.WriteString("CASE")
	if c.Operand != nil {
		sb.WriteString(" " + c.Operand.String())
	}
	for _, w := range c.Whens {
		sb.WriteString(" WHEN " + w.Cond.String() + " THEN " + w.Then.String())
	}
	if c.Else != nil {
		sb.WriteString(" ELSE " + c.Else.String())
	}
	sb.WriteString(" END")
	return sb.String()
}

func (c *CallExpr) String() string {
	switch {
	case c.Name == "||" && len(c.Args) == 2:
		return "(" + c.Args[0].String() + " || " + c.Args[1].String() + ")"
	case (c.Name == "like" || c.Name == "ilike") && len(c.Args) == 2:
		return "(" + c.Args[0].String() + " " + strings.ToUpper(c.Name) + " " + c.Args[1].String() + ")"
	}
	var sb strings.Builder
	sb.WriteString(c.Name + "(")
	for i, a := range c.Args {
		if i > 0 {
			sb.WriteString(", ")
		}
		sb.WriteString(a.String())
	}
	sb.WriteString(")")
	return sb.String()
}

func (c *CastExpr) String() string {
	return "CAST(" + c.X.String() + " AS " + c.To + ")"
}

func quoteString(s string) string {
	return "'" + strings.ReplaceAll(s, "'", "''") + "'"
}

func quoteIdent(s string) string {
	plain := s != "" && !isKeyword(s)
	for i, r := range s {
		if !(r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || i > 0 && r >= '0' && r <= '9') {
			plain = false
			break
		}
	}
	if plain {
		return s
	}
	return `"` + strings.ReplaceAll(s, `"`, `""`) + `"`
}
