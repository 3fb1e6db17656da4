package remoting

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strconv"
	"unicode/utf8"
)

// ReadFrame reads one length-prefixed frame from r and returns its bytes without the prefix. A length over
// MaxFrameSize or under 4 is rejected before anything is allocated, and the frame's memory grows with the bytes
// that arrive (at most twice them), never with the announced length alone. Servers use a FrameReader, which also
// buffers and enforces timeouts.
func ReadFrame(r io.Reader) ([]byte, error) {
	var lenBuf [4]byte
	if _, err := io.ReadFull(r, lenBuf[:]); err != nil {
		return nil, err
	}
	n := int32(binary.BigEndian.Uint32(lenBuf[:]))
	if n < 4 {
		return nil, fmt.Errorf("%w: frame length %d below the 4-byte header-length word", ErrMalformed, n)
	}
	if n > MaxFrameSize {
		return nil, fmt.Errorf("%w: %d bytes, limit %d", ErrFrameTooLarge, n, MaxFrameSize)
	}
	size := int(n)
	frame := make([]byte, 0, min(size, wholeFrameAlloc))
	for len(frame) < size {
		if len(frame) == cap(frame) {
			frame = growBounded(frame, size)
		}
		m, err := r.Read(frame[len(frame):cap(frame)])
		frame = frame[:len(frame)+m]
		if err != nil && len(frame) < size {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
	}
	return frame, nil
}

// Decode decodes a frame (as returned by ReadFrame). The body aliases frame.
func Decode(frame []byte) (*Command, error) {
	if len(frame) < 4 {
		return nil, fmt.Errorf("%w: %d bytes, want at least 4", ErrMalformed, len(frame))
	}
	word := binary.BigEndian.Uint32(frame)
	typ := byte(word >> 24)
	hlen := int(word & 0xFFFFFF)
	if hlen > len(frame)-4 {
		return nil, fmt.Errorf("%w: header length %d exceeds frame (%d bytes left)", ErrMalformed, hlen, len(frame)-4)
	}
	header := frame[4 : 4+hlen]
	var (
		c   *Command
		err error
	)
	switch typ {
	case SerializeJSON:
		c, err = decodeJSONHeader(header)
	case SerializeRocketMQ:
		c, err = decodeBinaryHeader(header)
	default:
		return nil, fmt.Errorf("%w: unknown serialize type %d", ErrMalformed, typ)
	}
	if err != nil {
		return nil, err
	}
	if body := frame[4+hlen:]; len(body) > 0 {
		c.Body = body
	}
	return c, nil
}

type jsonHeader struct {
	Code      int16             `json:"code"`
	Language  json.RawMessage   `json:"language"`
	Version   int16             `json:"version"`
	Opaque    int32             `json:"opaque"`
	Flag      int32             `json:"flag"`
	Remark    *string           `json:"remark"`
	ExtFields map[string]string `json:"extFields"`
}

func decodeJSONHeader(b []byte) (*Command, error) {
	if c, ok := fastDecodeJSONHeader(b); ok {
		return c, nil
	}
	var h jsonHeader
	if err := json.Unmarshal(b, &h); err != nil {
		return nil, fmt.Errorf("%w: JSON header: %w", ErrMalformed, err)
	}
	c := &Command{Code: h.Code, Version: h.Version, Opaque: h.Opaque, Flag: h.Flag, ExtFields: h.ExtFields}
	if h.Remark != nil {
		c.Remark = *h.Remark
	}
	if len(h.Language) > 0 {
		var s string
		if json.Unmarshal(h.Language, &s) == nil {
			c.Language = s
		} else {
			c.Language = string(h.Language)
		}
	}
	if c.ExtFields == nil {
		c.ExtFields = map[string]string{}
	}
	return c, nil
}

// PeekOpaque recovers the opaque and flag of a frame whose header failed to decode (for example an ext field with a
// number instead of a string), so the server can still answer that request with an error instead of closing.
func PeekOpaque(frame []byte) (opaque int32, flag int32, ok bool) {
	if len(frame) < 4 {
		return 0, 0, false
	}
	word := binary.BigEndian.Uint32(frame)
	hlen := int(word & 0xFFFFFF)
	if hlen > len(frame)-4 {
		return 0, 0, false
	}
	header := frame[4 : 4+hlen]
	switch byte(word >> 24) {
	case SerializeJSON:
		var h struct {
			Opaque *int32 `json:"opaque"`
			Flag   int32  `json:"flag"`
		}
		if json.Unmarshal(header, &h) != nil || h.Opaque == nil {
			return 0, 0, false
		}
		return *h.Opaque, h.Flag, true
	case SerializeRocketMQ:
		if len(header) < 13 {
			return 0, 0, false
		}
		return int32(binary.BigEndian.Uint32(header[5:])), int32(binary.BigEndian.Uint32(header[9:])), true
	}
	return 0, 0, false
}

// binary header: code i16, language u8, version i16, opaque i32, flag i32, remarkLen i32 + remark,
// extLen i32 + repeated (keyLen i16, key, valLen i32, val).
func decodeBinaryHeader(b []byte) (*Command, error) {
	const fixed = 2 + 1 + 2 + 4 + 4 + 4
	if len(b) < fixed {
		return nil, fmt.Errorf("%w: binary header %d bytes, want at least %d", ErrMalformed, len(b), fixed)
	}
	c := &Command{
		Code:    int16(binary.BigEndian.Uint16(b)),
		Version: int16(binary.BigEndian.Uint16(b[3:])),
		Opaque:  int32(binary.BigEndian.Uint32(b[5:])),
		Flag:    int32(binary.BigEndian.Uint32(b[9:])),
	}
	c.Language = languageName(b[2])
	p := b[13:]
	if len(p) < 4 {
		return nil, fmt.Errorf("%w: binary header: missing remark length", ErrMalformed)
	}
	n := int32(binary.BigEndian.Uint32(p))
	p = p[4:]
	if n < 0 || int(n) > len(p) {
		return nil, fmt.Errorf("%w: binary header: remark length %d exceeds header", ErrMalformed, n)
	}
	c.Remark = string(p[:n])
	p = p[n:]
	if len(p) < 4 {
		return nil, fmt.Errorf("%w: binary header: missing ext length", ErrMalformed)
	}
	n = int32(binary.BigEndian.Uint32(p))
	p = p[4:]
	if n < 0 || int(n) > len(p) {
		return nil, fmt.Errorf("%w: binary header: ext length %d exceeds header", ErrMalformed, n)
	}
	ext := p[:n]
	c.ExtFields = map[string]string{}
	for len(ext) > 0 {
		if len(ext) < 2 {
			return nil, fmt.Errorf("%w: binary header: truncated ext key length", ErrMalformed)
		}
		kl := int(int16(binary.BigEndian.Uint16(ext)))
		ext = ext[2:]
		if kl < 0 || kl > len(ext) {
			return nil, fmt.Errorf("%w: binary header: ext key length %d exceeds header", ErrMalformed, kl)
		}
		k := string(ext[:kl])
		ext = ext[kl:]
		if len(ext) < 4 {
			return nil, fmt.Errorf("%w: binary header: truncated ext value length", ErrMalformed)
		}
		vl := int(int32(binary.BigEndian.Uint32(ext)))
		ext = ext[4:]
		if vl < 0 || vl > len(ext) {
			return nil, fmt.Errorf("%w: binary header: ext value length %d exceeds header", ErrMalformed, vl)
		}
		c.ExtFields[k] = string(ext[:vl])
		ext = ext[vl:]
	}
	return c, nil
}

func languageName(b byte) string {
	switch b {
	case 0:
		return "JAVA"
	case 9:
		return "GO"
	}
	return "OTHER"
}

func languageCode(s string) byte {
	switch s {
	case "JAVA":
		return 0
	case "GO":
		return 9
	}
	return 13 // OTHER
}

// Encode returns the whole frame (length prefix included) with a compact JSON header, the form every client reads.
func (c *Command) Encode() []byte {
	return c.AppendFrame(nil, SerializeJSON)
}

// AppendFrame appends the whole frame with the given header serialization to dst.
func (c *Command) AppendFrame(dst []byte, typ byte) []byte {
	start := len(dst)
	dst = append(dst, 0, 0, 0, 0, 0, 0, 0, 0)
	hstart := len(dst)
	if typ == SerializeRocketMQ {
		dst = c.appendBinaryHeader(dst)
	} else {
		typ = SerializeJSON
		dst = c.appendJSONHeader(dst)
	}
	hlen := len(dst) - hstart
	dst = append(dst, c.Body...)
	binary.BigEndian.PutUint32(dst[start:], uint32(len(dst)-start-4))
	binary.BigEndian.PutUint32(dst[start+4:], uint32(typ)<<24|uint32(hlen)&0xFFFFFF)
	return dst
}

func (c *Command) appendJSONHeader(b []byte) []byte {
	lang := c.Language
	if lang == "" {
		lang = "JAVA"
	}
	b = append(b, `{"code":`...)
	b = strconv.AppendInt(b, int64(c.Code), 10)
	b = append(b, `,"language":`...)
	b = appendJSONString(b, lang)
	b = append(b, `,"version":`...)
	b = strconv.AppendInt(b, int64(c.Version), 10)
	b = append(b, `,"opaque":`...)
	b = strconv.AppendInt(b, int64(c.Opaque), 10)
	b = append(b, `,"flag":`...)
	b = strconv.AppendInt(b, int64(c.Flag), 10)
	if c.Remark != "" {
		b = append(b, `,"remark":`...)
		b = appendJSONString(b, c.Remark)
	}
	b = append(b, `,"extFields":{`...)
	keys := make([]string, 0, len(c.ExtFields))
	for k := range c.ExtFields {
		keys = append(keys, k)
	}
	sort.Strings(keys) // deterministic bytes: golden tests and fuzz round trips compare them
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, k)
		b = append(b, ':')
		b = appendJSONString(b, c.ExtFields[k])
	}
	return append(b, "}}"...)
}

func (c *Command) appendBinaryHeader(b []byte) []byte {
	b = binary.BigEndian.AppendUint16(b, uint16(c.Code))
	b = append(b, languageCode(c.Language))
	b = binary.BigEndian.AppendUint16(b, uint16(c.Version))
	b = binary.BigEndian.AppendUint32(b, uint32(c.Opaque))
	b = binary.BigEndian.AppendUint32(b, uint32(c.Flag))
	b = binary.BigEndian.AppendUint32(b, uint32(len(c.Remark)))
	b = append(b, c.Remark...)
	lenAt := len(b)
	b = append(b, 0, 0, 0, 0)
	keys := make([]string, 0, len(c.ExtFields))
	for k := range c.ExtFields {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v := c.ExtFields[k]
		b = binary.BigEndian.AppendUint16(b, uint16(len(k)))
		b = append(b, k...)
		b = binary.BigEndian.AppendUint32(b, uint32(len(v)))
		b = append(b, v...)
	}
	binary.BigEndian.PutUint32(b[lenAt:], uint32(len(b)-lenAt-4))
	return b
}

const hexDigits = "0123456789abcdef"

// appendJSONString appends s as a JSON string; invalid UTF-8 becomes U+FFFD as encoding/json does.
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	for i := 0; i < len(s); {
		ch := s[i]
		if ch < utf8.RuneSelf {
			switch {
			case ch == '"' || ch == '\\':
				b = append(b, '\\', ch)
			case ch >= 0x20:
				b = append(b, ch)
			case ch == '\n':
				b = append(b, '\\', 'n')
			case ch == '\r':
				b = append(b, '\\', 'r')
			case ch == '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[ch>>4], hexDigits[ch&0xF])
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, `\ufffd`...)
		} else if r == '\u2028' || r == '\u2029' {
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
		} else {
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return append(b, '"')
}
