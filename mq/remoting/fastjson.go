package remoting

import (
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
)

// fastDecodeJSONHeader decodes the header shape every client sends (a flat object whose extFields is an object of
// strings) without reflection. It returns ok=false for anything else, and the caller falls back to encoding/json,
// which also produces the error messages; so both paths accept exactly the same headers they understand.
func fastDecodeJSONHeader(b []byte) (*Command, bool) {
	// One string conversion of the whole header; every unescaped key and value is a substring of it, so a send's
	// dozen ext fields cost one allocation instead of two dozen.
	p := &jparser{b: b, s: string(b)}
	c := &Command{}
	p.ws()
	if !p.eat('{') {
		return nil, false
	}
	p.ws()
	if p.eat('}') {
		c.ExtFields = map[string]string{}
		return c, p.end()
	}
	for {
		p.ws()
		key, ok := p.str()
		if !ok {
			return nil, false
		}
		p.ws()
		if !p.eat(':') {
			return nil, false
		}
		p.ws()
		switch key {
		case "code", "version":
			n, ok := p.int(16)
			if !ok {
				return nil, false
			}
			if key == "code" {
				c.Code = int16(n)
			} else {
				c.Version = int16(n)
			}
		case "opaque", "flag":
			n, ok := p.int(32)
			if !ok {
				return nil, false
			}
			if key == "opaque" {
				c.Opaque = int32(n)
			} else {
				c.Flag = int32(n)
			}
		case "language":
			s, ok := p.str()
			if !ok {
				return nil, false
			}
			c.Language = s
		case "remark":
			if p.null() {
				break
			}
			s, ok := p.str()
			if !ok {
				return nil, false
			}
			c.Remark = s
		case "extFields":
			if p.null() {
				break
			}
			m, ok := p.strMap()
			if !ok {
				return nil, false
			}
			c.ExtFields = m
		default:
			// Fields tide does not use (serializeTypeCurrentRPC ...): only simple values are skipped here.
			if !p.skipScalar() {
				return nil, false
			}
		}
		p.ws()
		if p.eat(',') {
			continue
		}
		if p.eat('}') {
			break
		}
		return nil, false
	}
	if c.ExtFields == nil {
		c.ExtFields = map[string]string{}
	}
	return c, p.end()
}

type jparser struct {
	b []byte
	s string // string(b), sliced by str
	i int
}

func (p *jparser) ws() {
	for p.i < len(p.b) {
		switch p.b[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

func (p *jparser) end() bool { p.ws(); return p.i == len(p.b) }

func (p *jparser) eat(c byte) bool {
	if p.i < len(p.b) && p.b[p.i] == c {
		p.i++
		return true
	}
	return false
}

func (p *jparser) null() bool {
	if len(p.b)-p.i >= 4 && string(p.b[p.i:p.i+4]) == "null" {
		p.i += 4
		return true
	}
	return false
}

func (p *jparser) int(bits int) (int64, bool) {
	start := p.i
	if p.i < len(p.b) && p.b[p.i] == '-' {
		p.i++
	}
	digits := p.i
	for p.i < len(p.b) && p.b[p.i] >= '0' && p.b[p.i] <= '9' {
		p.i++
	}
	if p.i-digits > 1 && p.b[digits] == '0' {
		return 0, false // JSON forbids leading zeros
	}
	n, err := strconv.ParseInt(string(p.b[start:p.i]), 10, bits)
	return n, err == nil
}

func (p *jparser) skipScalar() bool {
	if p.null() {
		return true
	}
	if _, ok := p.str(); ok {
		return true
	}
	for _, lit := range []string{"true", "false"} {
		if len(p.b)-p.i >= len(lit) && string(p.b[p.i:p.i+len(lit)]) == lit {
			p.i += len(lit)
			return true
		}
	}
	_, ok := p.int(64)
	return ok
}

func (p *jparser) strMap() (map[string]string, bool) {
	m := make(map[string]string, 16) // a send header has 12-13 fields: no growth on the hot path
	if !p.eat('{') {
		return nil, false
	}
	p.ws()
	if p.eat('}') {
		return m, true
	}
	for {
		p.ws()
		k, ok := p.str()
		if !ok {
			return nil, false
		}
		p.ws()
		if !p.eat(':') {
			return nil, false
		}
		p.ws()
		v, ok := p.str()
		if !ok {
			return nil, false
		}
		m[k] = v
		p.ws()
		if p.eat(',') {
			continue
		}
		if p.eat('}') {
			return m, true
		}
		return nil, false
	}
}

// str reads a JSON string. Invalid UTF-8 and lone surrogates are left to the slow path (ok=false) so both decoders
// agree on replacement characters.
func (p *jparser) str() (string, bool) {
	if !p.eat('"') {
		return "", false
	}
	start := p.i
	for p.i < len(p.b) {
		c := p.b[p.i]
		switch {
		case c == '"':
			s := p.b[start:p.i]
			p.i++
			if !utf8.Valid(s) {
				return "", false
			}
			return p.s[start : p.i-1], true
		case c == '\\':
			return p.strEscaped(start)
		case c < 0x20:
			return "", false
		}
		p.i++
	}
	return "", false
}

func (p *jparser) strEscaped(start int) (string, bool) {
	out := append([]byte(nil), p.b[start:p.i]...)
	for p.i < len(p.b) {
		c := p.b[p.i]
		switch {
		case c == '"':
			p.i++
			if !utf8.Valid(out) {
				return "", false
			}
			return string(out), true
		case c < 0x20:
			return "", false
		case c != '\\':
			out = append(out, c)
			p.i++
			continue
		}
		if p.i+1 >= len(p.b) {
			return "", false
		}
		e := p.b[p.i+1]
		p.i += 2
		switch e {
		case '"', '\\', '/':
			out = append(out, e)
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'u':
			r, ok := p.hex4()
			if !ok {
				return "", false
			}
			if utf16.IsSurrogate(r) {
				if p.i+1 < len(p.b) && p.b[p.i] == '\\' && p.b[p.i+1] == 'u' {
					p.i += 2
					r2, ok := p.hex4()
					if !ok {
						return "", false
					}
					r = utf16.DecodeRune(r, r2)
					if r == utf8.RuneError {
						return "", false
					}
				} else {
					return "", false
				}
			}
			out = utf8.AppendRune(out, r)
		default:
			return "", false
		}
	}
	return "", false
}

func (p *jparser) hex4() (rune, bool) {
	if len(p.b)-p.i < 4 {
		return 0, false
	}
	n, err := strconv.ParseUint(string(p.b[p.i:p.i+4]), 16, 32)
	if err != nil {
		return 0, false
	}
	p.i += 4
	return rune(n), true
}
