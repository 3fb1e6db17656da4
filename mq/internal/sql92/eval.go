package sql92

import (
	"math"
	"strconv"
	"strings"
)

type kind uint8

const (
	kNull kind = iota
	kBool
	kInt    // Java Integer
	kLong   // Java Long
	kDouble // Java Double
	kString
)

type value struct {
	k kind
	b bool
	i int64
	f float64
	s string
}

var (
	vNull  = value{}
	vTrue  = value{k: kBool, b: true}
	vFalse = value{k: kBool}
)

func boolValue(b bool) value {
	if b {
		return vTrue
	}
	return vFalse
}

type op uint8

const (
	opLit op = iota
	opProp
	opNeg
	opNot
	opBoolCast
	opAnd
	opOr
	opEq
	opGt
	opGe
	opLt
	opLe
	opIn
	opContains
	opStartsWith
	opEndsWith
)

type node struct {
	op   op
	l, r *node
	v    value    // opLit
	s    string   // opProp: the name; opContains/StartsWith/EndsWith: the literal
	list []string // opIn
	not  bool     // opIn, opContains, opStartsWith, opEndsWith: the NOT form
	pos  int
}

// Expr is a compiled selector. It is immutable and safe for concurrent use.
type Expr struct {
	src  string
	root *node
}

// String returns the selector's source text.
func (e *Expr) String() string { return e.src }

// Properties looks up a message property by name; ok is false when the message does not carry it.
type Properties interface {
	Get(name string) (v string, ok bool)
}

// Map adapts a map to Properties.
type Map map[string]string

// Get implements Properties.
func (m Map) Get(name string) (string, bool) {
	v, ok := m[name]
	return v, ok
}

// Encoded reads properties straight from RocketMQ's wire encoding (name\x01value\x02...), so the broker can
// evaluate a stored message without building a map. As in Java's string-to-map decoding, a pair without \x01 is
// skipped and a later duplicate name wins.
type Encoded string

// Get implements Properties.
func (e Encoded) Get(name string) (string, bool) {
	s := string(e)
	var out string
	found := false
	for len(s) > 0 {
		var pair string
		if i := strings.IndexByte(s, 2); i >= 0 {
			pair, s = s[:i], s[i+1:]
		} else {
			pair, s = s, ""
		}
		if len(pair) > len(name) && pair[len(name)] == 1 && pair[:len(name)] == name {
			out, found = pair[len(name)+1:], true
		}
	}
	return out, found
}

// Match reports whether the properties satisfy the selector: only a TRUE result matches; unknown (a missing
// property) and evaluation errors (a property that cannot be converted) do not.
func (e *Expr) Match(p Properties) bool {
	v, ok := eval(e.root, p)
	return ok && v.k == kBool && v.b
}

// eval returns the node's value; ok is false when Java would throw, which aborts the whole evaluation.
func eval(n *node, p Properties) (value, bool) {
	switch n.op {
	case opLit:
		return n.v, true
	case opProp:
		if s, found := p.Get(n.s); found {
			return value{k: kString, s: s}, true
		}
		return vNull, true
	case opNeg:
		v, ok := eval(n.l, p)
		if !ok {
			return v, false
		}
		switch v.k {
		case kInt:
			return value{k: kInt, i: int64(-int32(v.i))}, true // Java int negation wraps
		case kLong:
			return value{k: kLong, i: -v.i}, true
		case kDouble:
			return value{k: kDouble, f: -v.f}, true
		}
		return vNull, true
	case opNot:
		v, ok := eval(n.l, p)
		if !ok || v.k != kBool {
			return vNull, ok
		}
		return boolValue(!v.b), true
	case opBoolCast:
		v, ok := eval(n.l, p)
		if !ok || v.k == kNull || v.k == kBool {
			return v, ok
		}
		return vFalse, true
	case opAnd:
		l, ok := eval(n.l, p)
		if !ok {
			return l, false
		}
		if l.k == kBool && !l.b {
			return vFalse, true
		}
		r, ok := eval(n.r, p)
		if !ok {
			return r, false
		}
		if r.k == kBool && !r.b {
			return vFalse, true
		}
		if l.k != kBool || r.k != kBool {
			return vNull, true
		}
		return vTrue, true
	case opOr:
		l, ok := eval(n.l, p)
		if !ok {
			return l, false
		}
		if l.k == kBool && l.b {
			return vTrue, true
		}
		r, ok := eval(n.r, p)
		if !ok {
			return r, false
		}
		if r.k == kBool && r.b {
			return vTrue, true
		}
		if l.k != kBool || r.k != kBool {
			return vNull, true
		}
		return vFalse, true
	case opEq:
		l, ok := eval(n.l, p)
		if !ok {
			return l, false
		}
		r, ok := eval(n.r, p)
		if !ok {
			return r, false
		}
		if (l.k == kNull) != (r.k == kNull) {
			if l.k == kNull {
				return vNull, true
			}
			return vFalse, true
		}
		if l.k == kNull {
			return vTrue, true
		}
		c, ok := compare(l, r)
		return boolValue(c == 0), ok
	case opGt, opGe, opLt, opLe:
		l, ok := eval(n.l, p)
		if !ok || l.k == kNull {
			return vNull, ok
		}
		r, ok := eval(n.r, p)
		if !ok || r.k == kNull {
			return vNull, ok
		}
		if l.k == kString && r.k == kString {
			// Ordering two strings: Java reads both as doubles or throws.
			lf, ok1 := javaDouble(l.s)
			rf, ok2 := javaDouble(r.s)
			if !ok1 || !ok2 {
				return vNull, false
			}
			l, r = value{k: kDouble, f: lf}, value{k: kDouble, f: rf}
		}
		c, ok := compare(l, r)
		switch n.op {
		case opGt:
			return boolValue(c > 0), ok
		case opGe:
			return boolValue(c >= 0), ok
		case opLt:
			return boolValue(c < 0), ok
		}
		return boolValue(c <= 0), ok
	case opIn:
		v, ok := eval(n.l, p)
		if !ok || v.k != kString {
			return vNull, ok
		}
		in := false
		for _, s := range n.list {
			if s == v.s {
				in = true
				break
			}
		}
		return boolValue(in != n.not), true
	case opContains, opStartsWith, opEndsWith:
		// Java: an empty search string, a missing property or a non-string is FALSE for both the plain and the
		// NOT form.
		if n.s == "" {
			return vFalse, true
		}
		v, ok := eval(n.l, p)
		if !ok || v.k != kString {
			return vFalse, ok
		}
		var has bool
		switch n.op {
		case opContains:
			has = strings.Contains(v.s, n.s)
		case opStartsWith:
			has = strings.HasPrefix(v.s, n.s)
		default:
			has = strings.HasSuffix(v.s, n.s)
		}
		return boolValue(has != n.not), true
	}
	return vNull, false
}

// compare is Java's ComparisonExpression.__compare with string conversion on: values of different types are
// converted up (int -> long -> double; a string to the other side's type); a pair that cannot be converted
// (boolean against a number) compares as -1, and a failed conversion is an error (ok false).
func compare(l, r value) (int, bool) {
	if l.k != r.k {
		var ok bool
		switch l.k {
		case kBool:
			if r.k == kString {
				return 0, false // Java casts the Boolean to String here and throws
			}
			return -1, true
		case kInt, kLong:
			switch r.k {
			case kInt, kLong:
				// Integer widened to Long: compare as int64.
			case kDouble:
				l = value{k: kDouble, f: float64(l.i)}
			case kString:
				r, ok = parseAs(r.s, l.k)
				if !ok {
					return 0, false
				}
			default:
				return -1, true
			}
		case kDouble:
			switch r.k {
			case kInt, kLong:
				r = value{k: kDouble, f: float64(r.i)}
			case kString:
				r, ok = parseAs(r.s, kDouble)
				if !ok {
					return 0, false
				}
			default:
				return -1, true
			}
		case kString:
			if r.k == kBool {
				l = boolValue(strings.EqualFold(l.s, "true"))
			} else if r.k == kNull {
				return -1, true
			} else if l, ok = parseAs(l.s, r.k); !ok {
				return 0, false
			}
		default:
			return -1, true
		}
	}
	switch l.k {
	case kBool:
		switch {
		case l.b == r.b:
			return 0, true
		case r.b:
			return -1, true
		}
		return 1, true
	case kInt, kLong:
		if l.k == kDouble || r.k == kDouble {
			break
		}
		switch {
		case l.i < r.i:
			return -1, true
		case l.i > r.i:
			return 1, true
		}
		return 0, true
	case kString:
		return strings.Compare(l.s, r.s), true
	}
	if l.k == kDouble || r.k == kDouble {
		return javaDoubleCompare(asFloat(l), asFloat(r)), true
	}
	return 0, true
}

func asFloat(v value) float64 {
	if v.k == kDouble {
		return v.f
	}
	return float64(v.i)
}

// javaDoubleCompare is Double.compare: NaN is above everything including +Inf and equal to itself; -0.0 < 0.0.
func javaDoubleCompare(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	an, bn := math.IsNaN(a), math.IsNaN(b)
	switch {
	case an && bn:
		return 0
	case an:
		return 1
	case bn:
		return -1
	}
	sa, sb := math.Signbit(a), math.Signbit(b)
	switch {
	case sa == sb:
		return 0
	case sa:
		return -1
	}
	return 1
}

// parseAs converts a property string as Integer.valueOf, Long.valueOf or Double.valueOf would.
func parseAs(s string, k kind) (value, bool) {
	switch k {
	case kInt:
		n, err := strconv.ParseInt(s, 10, 32)
		return value{k: kInt, i: n}, err == nil
	case kLong:
		n, err := strconv.ParseInt(s, 10, 64)
		return value{k: kLong, i: n}, err == nil
	case kDouble:
		f, ok := javaDouble(s)
		return value{k: kDouble, f: f}, ok
	}
	return vNull, false
}

// javaDouble approximates Double.valueOf: surrounding control/space characters are trimmed, an optional sign,
// "NaN", "Infinity", or a decimal (or hex) floating literal with an optional f/F/d/D suffix.
func javaDouble(s string) (float64, bool) {
	s = strings.TrimFunc(s, func(r rune) bool { return r <= ' ' })
	body := s
	neg := false
	if body != "" && (body[0] == '+' || body[0] == '-') {
		neg = body[0] == '-'
		body = body[1:]
	}
	switch body {
	case "NaN":
		return math.NaN(), true
	case "Infinity":
		if neg {
			return math.Inf(-1), true
		}
		return math.Inf(1), true
	case "":
		return 0, false
	}
	if !isDigit(body[0]) && body[0] != '.' || strings.ContainsAny(body, "_iInN") {
		return 0, false
	}
	if c := body[len(body)-1]; c == 'f' || c == 'F' || c == 'd' || c == 'D' {
		if !strings.HasPrefix(body, "0x") && !strings.HasPrefix(body, "0X") || strings.ContainsAny(body, "pP") {
			s = s[:len(s)-1]
		}
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		if ne, ok := err.(*strconv.NumError); ok && ne.Err == strconv.ErrRange {
			return f, true
		}
		return 0, false
	}
	return f, true
}
