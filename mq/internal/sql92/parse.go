package sql92

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// ErrSyntax is wrapped by every *ParseError.
var ErrSyntax = errors.New("invalid SQL92 selector")

// maxLen bounds a selector's length and maxDepth its nesting, so hostile input cannot exhaust the stack.
const (
	maxLen   = 64 << 10
	maxDepth = 200
)

// ParseError reports where a selector is wrong; Pos is a 0-based byte offset into the source.
type ParseError struct {
	Pos int
	Msg string
}

func (e *ParseError) Error() string {
	return fmt.Sprintf("%v: %s at position %d", ErrSyntax, e.Msg, e.Pos)
}

func (e *ParseError) Unwrap() error { return ErrSyntax }

type tokKind uint8

const (
	tEOF tokKind = iota
	tIdent
	tString
	tInt     // decimal literal, value in num.i (kind int or long)
	tFloat   // floating literal, value in num.f
	tOp      // punctuation: = <> > >= < <= ( ) , + -
	tKeyword // NOT AND OR BETWEEN IN TRUE FALSE NULL IS CONTAINS STARTSWITH ENDSWITH (upper-cased in text)
)

type token struct {
	kind tokKind
	pos  int
	text string // identifier, string value, operator, or upper-cased keyword
	num  value
}

var keywords = map[string]bool{
	"NOT": true, "AND": true, "OR": true, "BETWEEN": true, "IN": true, "TRUE": true, "FALSE": true, "NULL": true,
	"IS": true, "CONTAINS": true, "STARTSWITH": true, "ENDSWITH": true,
}

type lexer struct {
	src string
	pos int
}

func isIdentStart(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_' || c == '$'
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func (l *lexer) next() (token, error) {
	// Skip white space and comments.
	for l.pos < len(l.src) {
		c := l.src[l.pos]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f':
			l.pos++
			continue
		case strings.HasPrefix(l.src[l.pos:], "--"):
			if i := strings.IndexAny(l.src[l.pos:], "\r\n"); i >= 0 {
				l.pos += i
			} else {
				l.pos = len(l.src)
			}
			continue
		case strings.HasPrefix(l.src[l.pos:], "/*"):
			i := strings.Index(l.src[l.pos+2:], "*/")
			if i < 0 {
				return token{}, &ParseError{Pos: l.pos, Msg: "unterminated comment"}
			}
			l.pos += i + 4
			continue
		}
		break
	}
	start := l.pos
	if l.pos >= len(l.src) {
		return token{kind: tEOF, pos: start}, nil
	}
	c := l.src[l.pos]
	switch {
	case isIdentStart(c):
		for l.pos < len(l.src) && (isIdentStart(l.src[l.pos]) || isDigit(l.src[l.pos])) {
			l.pos++
		}
		word := l.src[start:l.pos]
		if up := strings.ToUpper(word); keywords[up] {
			return token{kind: tKeyword, pos: start, text: up}, nil
		}
		return token{kind: tIdent, pos: start, text: word}, nil
	case c == '\'':
		var b strings.Builder
		l.pos++
		for {
			if l.pos >= len(l.src) {
				return token{}, &ParseError{Pos: start, Msg: "unterminated string literal"}
			}
			ch := l.src[l.pos]
			if ch == '\'' {
				if l.pos+1 < len(l.src) && l.src[l.pos+1] == '\'' {
					b.WriteByte('\'')
					l.pos += 2
					continue
				}
				l.pos++
				return token{kind: tString, pos: start, text: b.String()}, nil
			}
			b.WriteByte(ch)
			l.pos++
		}
	case isDigit(c) || c == '.' && l.pos+1 < len(l.src) && isDigit(l.src[l.pos+1]):
		return l.number()
	}
	for _, op := range []string{"<>", ">=", "<=", "=", ">", "<", "(", ")", ",", "+", "-"} {
		if strings.HasPrefix(l.src[l.pos:], op) {
			l.pos += len(op)
			return token{kind: tOp, pos: start, text: op}, nil
		}
	}
	return token{}, &ParseError{Pos: start, Msg: fmt.Sprintf("unexpected character %q", l.src[start:start+1])}
}

// number scans a decimal ("0" or [1-9][0-9]*, optional L) or floating literal (digits with '.' and/or exponent).
func (l *lexer) number() (token, error) {
	start := l.pos
	for l.pos < len(l.src) && isDigit(l.src[l.pos]) {
		l.pos++
	}
	isFloat := false
	if l.pos < len(l.src) && l.src[l.pos] == '.' {
		isFloat = true
		l.pos++
		for l.pos < len(l.src) && isDigit(l.src[l.pos]) {
			l.pos++
		}
	}
	if l.pos < len(l.src) && (l.src[l.pos] == 'e' || l.src[l.pos] == 'E') {
		p := l.pos + 1
		if p < len(l.src) && (l.src[p] == '+' || l.src[p] == '-') {
			p++
		}
		if p < len(l.src) && isDigit(l.src[p]) {
			for p < len(l.src) && isDigit(l.src[p]) {
				p++
			}
			l.pos = p
			isFloat = true
		}
	}
	text := l.src[start:l.pos]
	if isFloat {
		f, err := strconv.ParseFloat(text, 64)
		if err != nil && !errors.Is(err, strconv.ErrRange) {
			return token{}, &ParseError{Pos: start, Msg: fmt.Sprintf("invalid number %q", text)}
		}
		return token{kind: tFloat, pos: start, text: text, num: value{k: kDouble, f: f}}, nil
	}
	if l.pos < len(l.src) && (l.src[l.pos] == 'l' || l.src[l.pos] == 'L') {
		l.pos++
	}
	if len(text) > 1 && text[0] == '0' {
		return token{}, &ParseError{Pos: start, Msg: fmt.Sprintf("invalid number %q (leading zero)", text)}
	}
	n, err := strconv.ParseInt(text, 10, 64)
	if err != nil {
		return token{}, &ParseError{Pos: start, Msg: fmt.Sprintf("number %q out of range", text)}
	}
	// Java's ConstantExpression.createFromDecimal narrows values that fit to Integer, which matters when a
	// property string is converted to the literal's type.
	v := value{k: kLong, i: n}
	if n >= math.MinInt32 && n <= math.MaxInt32 {
		v.k = kInt
	}
	return token{kind: tInt, pos: start, text: text, num: v}, nil
}

type parser struct {
	lex   lexer
	tok   token // current token
	peek  *token
	depth int
}

// Compile parses a selector once; the result is evaluated per message with Match.
func Compile(src string) (*Expr, error) {
	if len(src) > maxLen {
		return nil, &ParseError{Pos: maxLen, Msg: fmt.Sprintf("selector longer than %d bytes", maxLen)}
	}
	p := &parser{lex: lexer{src: src}}
	if err := p.advance(); err != nil {
		return nil, err
	}
	if p.tok.kind == tEOF {
		return nil, &ParseError{Pos: 0, Msg: "empty selector"}
	}
	n, err := p.or()
	if err != nil {
		return nil, err
	}
	if p.tok.kind != tEOF {
		return nil, p.unexpected("end of selector")
	}
	if n, err = asBoolean(n); err != nil {
		return nil, err
	}
	return &Expr{src: src, root: n}, nil
}

// MustCompile is Compile for selectors known to be valid (tests, constants); it panics on error.
func MustCompile(src string) *Expr {
	e, err := Compile(src)
	if err != nil {
		panic(err)
	}
	return e
}

func (p *parser) advance() error {
	if p.peek != nil {
		p.tok, p.peek = *p.peek, nil
		return nil
	}
	t, err := p.lex.next()
	if err != nil {
		return err
	}
	p.tok = t
	return nil
}

func (p *parser) lookahead() (token, error) {
	if p.peek == nil {
		t, err := p.lex.next()
		if err != nil {
			return token{}, err
		}
		p.peek = &t
	}
	return *p.peek, nil
}

func (p *parser) isKw(kw string) bool { return p.tok.kind == tKeyword && p.tok.text == kw }
func (p *parser) isOp(op string) bool { return p.tok.kind == tOp && p.tok.text == op }
func (p *parser) describe(t token) string {
	switch t.kind {
	case tEOF:
		return "end of selector"
	case tString:
		return fmt.Sprintf("string '%s'", t.text)
	case tIdent:
		return fmt.Sprintf("identifier %s", t.text)
	}
	return fmt.Sprintf("%q", t.text)
}

func (p *parser) unexpected(want string) error {
	return &ParseError{Pos: p.tok.pos, Msg: fmt.Sprintf("expected %s, found %s", want, p.describe(p.tok))}
}

func (p *parser) enter() error {
	p.depth++
	if p.depth > maxDepth {
		return &ParseError{Pos: p.tok.pos, Msg: fmt.Sprintf("nested deeper than %d", maxDepth)}
	}
	return nil
}

func (p *parser) or() (*node, error) {
	if err := p.enter(); err != nil {
		return nil, err
	}
	defer func() { p.depth-- }()
	left, err := p.and()
	if err != nil {
		return nil, err
	}
	for p.isKw("OR") {
		pos := p.tok.pos
		if err := p.advance(); err != nil {
			return nil, err
		}
		right, err := p.and()
		if err != nil {
			return nil, err
		}
		if left, err = logic(opOr, left, right, pos); err != nil {
			return nil, err
		}
	}
	return left, nil
}

func (p *parser) and() (*node, error) {
	left, err := p.equality()
	if err != nil {
		return nil, err
	}
	for p.isKw("AND") {
		pos := p.tok.pos
		if err := p.advance(); err != nil {
			return nil, err
		}
		right, err := p.equality()
		if err != nil {
			return nil, err
		}
		if left, err = logic(opAnd, left, right, pos); err != nil {
			return nil, err
		}
	}
	return left, nil
}

func logic(o op, l, r *node, pos int) (*node, error) {
	l, err := asBoolean(l)
	if err != nil {
		return nil, err
	}
	if r, err = asBoolean(r); err != nil {
		return nil, err
	}
	return &node{op: o, l: l, r: r, pos: pos}, nil
}

func (p *parser) equality() (*node, error) {
	left, err := p.comparison()
	if err != nil {
		return nil, err
	}
	for {
		pos := p.tok.pos
		switch {
		case p.isOp("=") || p.isOp("<>"):
			neq := p.isOp("<>")
			if err := p.advance(); err != nil {
				return nil, err
			}
			right, err := p.comparison()
			if err != nil {
				return nil, err
			}
			if err := checkEqualOperands(left, right, pos); err != nil {
				return nil, err
			}
			left = &node{op: opEq, l: left, r: right, pos: pos}
			if neq {
				left = &node{op: opNot, l: left, pos: pos}
			}
		case p.isKw("IS"):
			if err := p.advance(); err != nil {
				return nil, err
			}
			not := false
			if p.isKw("NOT") {
				not = true
				if err := p.advance(); err != nil {
					return nil, err
				}
			}
			if !p.isKw("NULL") {
				return nil, p.unexpected("NULL")
			}
			if err := p.advance(); err != nil {
				return nil, err
			}
			left = &node{op: opEq, l: left, r: &node{op: opLit, pos: pos}, pos: pos}
			if not {
				left = &node{op: opNot, l: left, pos: pos}
			}
		default:
			return left, nil
		}
	}
}

func (p *parser) comparison() (*node, error) {
	left, err := p.unary()
	if err != nil {
		return nil, err
	}
	for {
		pos := p.tok.pos
		not := false
		if p.isKw("NOT") {
			// NOT here only starts NOT BETWEEN / IN / CONTAINS / STARTSWITH / ENDSWITH (Java's LOOKAHEAD(2)).
			nt, err := p.lookahead()
			if err != nil {
				return nil, err
			}
			if nt.kind != tKeyword || !(nt.text == "BETWEEN" || nt.text == "IN" || nt.text == "CONTAINS" ||
				nt.text == "STARTSWITH" || nt.text == "ENDSWITH") {
				return left, nil
			}
			not = true
			if err := p.advance(); err != nil {
				return nil, err
			}
		}
		switch {
		case !not && p.tok.kind == tOp && (p.tok.text == ">" || p.tok.text == ">=" || p.tok.text == "<" || p.tok.text == "<="):
			o := map[string]op{">": opGt, ">=": opGe, "<": opLt, "<=": opLe}[p.tok.text]
			if err := p.advance(); err != nil {
				return nil, err
			}
			right, err := p.unary()
			if err != nil {
				return nil, err
			}
			if err := checkOrdered(left, pos); err != nil {
				return nil, err
			}
			if err := checkOrdered(right, pos); err != nil {
				return nil, err
			}
			left = &node{op: o, l: left, r: right, pos: pos}
		case p.isKw("CONTAINS") || p.isKw("STARTSWITH") || p.isKw("ENDSWITH"):
			o := map[string]op{"CONTAINS": opContains, "STARTSWITH": opStartsWith, "ENDSWITH": opEndsWith}[p.tok.text]
			if err := p.advance(); err != nil {
				return nil, err
			}
			if p.tok.kind != tString {
				return nil, p.unexpected("a string literal")
			}
			// The NOT forms are their own operators in Java (FALSE, not unknown, for a missing property).
			left = &node{op: o, l: left, s: p.tok.text, not: not, pos: pos}
			if err := p.advance(); err != nil {
				return nil, err
			}
		case p.isKw("BETWEEN"):
			if err := p.advance(); err != nil {
				return nil, err
			}
			low, err := p.unary()
			if err != nil {
				return nil, err
			}
			if !p.isKw("AND") {
				return nil, p.unexpected("AND")
			}
			if err := p.advance(); err != nil {
				return nil, err
			}
			high, err := p.unary()
			if err != nil {
				return nil, err
			}
			for _, n := range []*node{left, low, high} {
				if err := checkOrdered(n, pos); err != nil {
					return nil, err
				}
			}
			if !not && low.op == opLit && high.op == opLit {
				c, ok := compare(high.v, low.v)
				if ok && c < 0 {
					return nil, &ParseError{Pos: pos, Msg: "BETWEEN: the low value must be less than or equal to the high value"}
				}
			}
			if not {
				left = &node{op: opOr, l: &node{op: opLt, l: left, r: low, pos: pos}, r: &node{op: opGt, l: left, r: high, pos: pos}, pos: pos}
			} else {
				left = &node{op: opAnd, l: &node{op: opGe, l: left, r: low, pos: pos}, r: &node{op: opLe, l: left, r: high, pos: pos}, pos: pos}
			}
		case p.isKw("IN"):
			if left.op != opProp {
				return nil, &ParseError{Pos: pos, Msg: "IN needs a property on its left"}
			}
			if err := p.advance(); err != nil {
				return nil, err
			}
			if !p.isOp("(") {
				return nil, p.unexpected("(")
			}
			var list []string
			for {
				if err := p.advance(); err != nil {
					return nil, err
				}
				if p.tok.kind != tString {
					return nil, p.unexpected("a string literal")
				}
				list = append(list, p.tok.text)
				if err := p.advance(); err != nil {
					return nil, err
				}
				if p.isOp(")") {
					break
				}
				if !p.isOp(",") {
					return nil, p.unexpected(", or )")
				}
			}
			if err := p.advance(); err != nil {
				return nil, err
			}
			left = &node{op: opIn, l: left, list: list, not: not, pos: pos}
		default:
			if not {
				return nil, p.unexpected("BETWEEN, IN, CONTAINS, STARTSWITH or ENDSWITH")
			}
			return left, nil
		}
	}
}

func (p *parser) unary() (*node, error) {
	if err := p.enter(); err != nil {
		return nil, err
	}
	defer func() { p.depth-- }()
	pos := p.tok.pos
	switch {
	case p.isOp("+"):
		if err := p.advance(); err != nil {
			return nil, err
		}
		return p.unary()
	case p.isOp("-"):
		if err := p.advance(); err != nil {
			return nil, err
		}
		x, err := p.unary()
		if err != nil {
			return nil, err
		}
		return &node{op: opNeg, l: x, pos: pos}, nil
	case p.isKw("NOT"):
		if err := p.advance(); err != nil {
			return nil, err
		}
		x, err := p.unary()
		if err != nil {
			return nil, err
		}
		if x, err = asBoolean(x); err != nil {
			return nil, err
		}
		return &node{op: opNot, l: x, pos: pos}, nil
	}
	return p.primary()
}

func (p *parser) primary() (*node, error) {
	t := p.tok
	var n *node
	switch {
	case t.kind == tString:
		n = &node{op: opLit, v: value{k: kString, s: t.text}, pos: t.pos}
	case t.kind == tInt || t.kind == tFloat:
		n = &node{op: opLit, v: t.num, pos: t.pos}
	case p.isKw("TRUE") || p.isKw("FALSE"):
		n = &node{op: opLit, v: value{k: kBool, b: t.text == "TRUE"}, pos: t.pos}
	case p.isKw("NULL"):
		n = &node{op: opLit, pos: t.pos}
	case t.kind == tIdent:
		n = &node{op: opProp, s: t.text, pos: t.pos}
	case p.isOp("("):
		if err := p.advance(); err != nil {
			return nil, err
		}
		x, err := p.or()
		if err != nil {
			return nil, err
		}
		if !p.isOp(")") {
			return nil, p.unexpected(")")
		}
		if err := p.advance(); err != nil {
			return nil, err
		}
		return x, nil
	default:
		return nil, p.unexpected("a property, literal or (")
	}
	if err := p.advance(); err != nil {
		return nil, err
	}
	return n, nil
}

// isBoolExpr mirrors Java's "instanceof BooleanExpression": logic and comparison nodes, and the TRUE, FALSE and
// NULL constants (BooleanConstantExpression).
func isBoolExpr(n *node) bool {
	switch n.op {
	case opLit:
		return n.v.k == kBool || n.v.k == kNull
	case opProp, opNeg:
		return false
	}
	return true
}

// asBoolean is Java's asBooleanExpression: a property used as a condition is cast; anything else non-boolean is an
// error.
func asBoolean(n *node) (*node, error) {
	if isBoolExpr(n) {
		return n, nil
	}
	if n.op == opProp {
		return &node{op: opBoolCast, l: n, pos: n.pos}, nil
	}
	return nil, &ParseError{Pos: n.pos, Msg: "expression will not result in a boolean value"}
}

// checkOrdered is Java's checkLessThanOperand: constants in < > BETWEEN must be numbers, and boolean
// expressions cannot be ordered.
func checkOrdered(n *node, pos int) error {
	if n.op == opLit {
		if n.v.k == kInt || n.v.k == kLong || n.v.k == kDouble {
			return nil
		}
		return &ParseError{Pos: n.pos, Msg: "only numbers can be compared with <, <=, >, >= or BETWEEN"}
	}
	if isBoolExpr(n) {
		return &ParseError{Pos: pos, Msg: "a condition cannot be compared with <, <=, >, >= or BETWEEN"}
	}
	return nil
}

// checkEqualOperands is Java's checkEqualOperand plus checkEqualOperandCompatability.
func checkEqualOperands(l, r *node, pos int) error {
	for _, n := range []*node{l, r} {
		if n.op == opLit && n.v.k == kNull {
			return &ParseError{Pos: n.pos, Msg: "NULL cannot be compared with = or <>; use IS NULL"}
		}
	}
	if l.op == opLit && r.op == opLit && l.v.k == kBool && r.v.k != kBool {
		return &ParseError{Pos: pos, Msg: "a boolean cannot be compared with a non-boolean constant"}
	}
	return nil
}
