// Package h1 holds the pieces of an HTTP/1.1 client that tide's lean data paths share: the field-line helpers and
// a response-head parser that reads straight out of a connection's bufio.Reader without building an http.Header,
// and a reader for the trailer section after a chunked body's last chunk. The gateway's lean proxy
// (serving/gateway) and the Trigger delivery client (eventing/delivery) use them, so one parser, fuzzed against
// net/http (FuzzResponse), decides what both accept.
//
// Invariant: whatever Response.Read accepts, net/http's http.ReadResponse reads as the same status and body
// framing (Content-Length, chunked, or delimited by the connection's close); what net/http would fold, tolerate
// or read differently (bare LF, obs-fold, a name that is not a token, conflicting lengths, codings other than
// chunked) is an error here, so a caller never proxies or accepts a response net/http would read otherwise.
// The package is a leaf: it imports only the standard library.
package h1

import (
	"bufio"
	"errors"
	"io"
	"strconv"
	"strings"
)

var tokenChars [256]bool // RFC 9110 tchar; written once by init, read-only after

func init() {
	for c := 0; c < 256; c++ {
		alnum := 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
		tokenChars[c] = alnum || strings.IndexByte("!#$%&'*+-.^_`|~", byte(c)) >= 0
	}
}

// IsToken reports an RFC 9110 tchar.
func IsToken(c byte) bool { return tokenChars[c] }

// FoldEq reports whether b equals the lower-case ASCII string lower, ignoring ASCII case.
func FoldEq(b []byte, lower string) bool {
	if len(b) != len(lower) {
		return false
	}
	for i := 0; i < len(b); i++ {
		c := b[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}

// TrimOWS trims optional whitespace (SP, HTAB) from both ends.
func TrimOWS(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}

// ValidValue reports a field value without control characters (HTAB allowed; obs-text allowed).
func ValidValue(v []byte) bool {
	for _, c := range v {
		if c < ' ' && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}

// IndexByte is bytes.IndexByte for the short lines of a head, where a plain loop beats the call.
func IndexByte(b []byte, c byte) int {
	for i, x := range b {
		if x == c {
			return i
		}
	}
	return -1
}

// SplitField splits a field line (no CRLF) into its name and trimmed value; ok is false for a line net/http
// would reject or fold (a name that is not a token, no colon, whitespace before the colon, obs-fold, control
// characters).
func SplitField(line []byte) (name, value []byte, ok bool) {
	colon := IndexByte(line, ':')
	if colon <= 0 {
		return nil, nil, false
	}
	name = line[:colon]
	for _, c := range name {
		if !tokenChars[c] {
			return nil, nil, false
		}
	}
	value = TrimOWS(line[colon+1:])
	return name, value, ValidValue(value)
}

// NextLine returns the line at the start of b without its CRLF and the rest; b holds complete CRLF lines.
func NextLine(b []byte) (line, rest []byte) {
	i := IndexByte(b, '\n')
	return b[:i-1], b[i+1:]
}

// Response is a response head, copied out of the connection's buffer into the caller's scratch slice (valid until
// the scratch is reused).
type Response struct {
	Status        int
	ContentLength int64 // -1: none (chunked, or delimited by the connection's close)
	Chunked       bool
	// Close: the server closes the connection after this response (Connection: close, or HTTP/1.0).
	Close          bool
	HasContentType bool
	HasDate        bool
	EventStream    bool     // a Content-Type of text/event-stream: the body is flushed as it comes
	Fields         []byte   // the field lines (each CRLF-terminated) after the status line, and the empty line
	Conn           [][]byte // other tokens of Connection: the headers they name are hop-by-hop too
}

// MaxResponseHead bounds a response head (net/http's Transport allows 10 MB by default; a server needing more
// than this is broken).
const MaxResponseHead = 1 << 20

var (
	// ErrResponseHeadTooLarge: the head exceeded MaxResponseHead.
	ErrResponseHeadTooLarge = errors.New("response head too large")
	// ErrMalformedResponse: a status line or field line net/http would reject or read differently.
	ErrMalformedResponse = errors.New("malformed response head")
)

// Read reads and parses one response head from br into p, using scratch for its bytes.
func (p *Response) Read(br *bufio.Reader, scratch *[]byte) error {
	buf := (*scratch)[:0]
	lineStart := 0
	for {
		frag, err := br.ReadSlice('\n')
		buf = append(buf, frag...)
		if len(buf) > MaxResponseHead {
			*scratch = buf
			return ErrResponseHeadTooLarge
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			*scratch = buf
			return err
		}
		line := buf[lineStart:]
		if len(line) < 2 || line[len(line)-2] != '\r' {
			*scratch = buf
			return ErrMalformedResponse // bare LF
		}
		if len(line) == 2 && lineStart > 0 {
			break
		}
		lineStart = len(buf)
	}
	*scratch = buf
	*p = Response{ContentLength: -1, Conn: p.Conn[:0]}
	statusLine, fields := NextLine(buf)
	p.Fields = fields
	// HTTP/1.x SP 3DIGIT [SP reason]
	if len(statusLine) < 12 || string(statusLine[:7]) != "HTTP/1." || statusLine[8] != ' ' ||
		len(statusLine) > 12 && statusLine[12] != ' ' {
		return ErrMalformedResponse
	}
	if statusLine[7] < '0' || statusLine[7] > '9' {
		return ErrMalformedResponse
	}
	p.Close = statusLine[7] != '1'
	code := 0
	for _, c := range statusLine[9:12] {
		if c < '0' || c > '9' {
			return ErrMalformedResponse
		}
		code = code*10 + int(c-'0')
	}
	if code < 100 {
		return ErrMalformedResponse
	}
	p.Status = code
	for rest := fields; len(rest) > 2; {
		var line []byte
		line, rest = NextLine(rest)
		name, value, ok := SplitField(line)
		if !ok {
			return ErrMalformedResponse
		}
		switch {
		case FoldEq(name, "content-length"):
			n, err := strconv.ParseInt(string(value), 10, 64)
			if err != nil || n < 0 || len(value) == 0 || value[0] == '+' {
				return errors.New("invalid Content-Length in response")
			}
			if p.ContentLength >= 0 && p.ContentLength != n {
				return errors.New("conflicting Content-Length in response")
			}
			p.ContentLength = n
		case FoldEq(name, "transfer-encoding"):
			if p.Chunked || !FoldEq(value, "chunked") {
				return errors.New("unsupported Transfer-Encoding in response")
			}
			p.Chunked = true
		case FoldEq(name, "connection"):
			for len(value) > 0 {
				var tok []byte
				if i := IndexByte(value, ','); i >= 0 {
					tok, value = TrimOWS(value[:i]), value[i+1:]
				} else {
					tok, value = TrimOWS(value), nil
				}
				switch {
				case len(tok) == 0, FoldEq(tok, "keep-alive"):
				case FoldEq(tok, "close"):
					p.Close = true
				default:
					p.Conn = append(p.Conn, tok)
				}
			}
		case FoldEq(name, "content-type"):
			p.HasContentType = true
			p.EventStream = p.EventStream || strings.HasPrefix(string(value), "text/event-stream")
		case FoldEq(name, "date"):
			p.HasDate = true
		}
	}
	if p.Chunked && statusLine[7] == '0' {
		// HTTP/1.0 has no chunked coding: net/http's transport ignores it, so the body ends with the connection
		// (RFC 9112 section 6.1 calls the framing faulty; the connection is not reused).
		p.Chunked = false // and a Content-Length, if any, frames it
	}
	if p.Chunked {
		p.ContentLength = -1 // Transfer-Encoding wins (RFC 9112 section 6.3); the length is dropped
	}
	return nil
}

// NamedByConnection reports a header that the response's Connection header lists.
func (p *Response) NamedByConnection(name []byte) bool {
	for _, t := range p.Conn {
		if len(t) == len(name) {
			match := true
			for i := range t {
				a, b := t[i], name[i]
				if 'A' <= a && a <= 'Z' {
					a += 'a' - 'A'
				}
				if 'A' <= b && b <= 'Z' {
					b += 'a' - 'A'
				}
				if a != b {
					match = false
					break
				}
			}
			if match {
				return true
			}
		}
	}
	return false
}

// MaxTrailers bounds a chunked body's trailer section.
const MaxTrailers = 64 << 10

// ErrBadTrailers: the trailer section after a last chunk is malformed or larger than MaxTrailers.
var ErrBadTrailers = errors.New("malformed or oversized trailer section")

// ReadTrailers reads the trailer section that follows a chunked body's last chunk (httputil's chunked reader
// stops after "0\r\n") through its empty line, calling field, when not nil, with each field line (CRLF included)
// and its name. The line is valid only during the call.
func ReadTrailers(br *bufio.Reader, field func(line, name []byte)) error {
	total := 0
	for {
		line, err := br.ReadSlice('\n')
		total += len(line)
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			if errors.Is(err, bufio.ErrBufferFull) {
				err = ErrBadTrailers
			}
			return err
		}
		if total > MaxTrailers || len(line) < 2 || line[len(line)-2] != '\r' {
			return ErrBadTrailers
		}
		if len(line) == 2 {
			return nil
		}
		name, _, ok := SplitField(line[:len(line)-2])
		if !ok {
			return ErrBadTrailers
		}
		if field != nil {
			field(line, name)
		}
	}
}
