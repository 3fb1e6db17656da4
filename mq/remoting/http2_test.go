package remoting

import (
	"errors"
	"strings"
	"testing"
)

// A gRPC (HTTP/2) client's connection preface is recognised, not read as a 1347569952-byte frame.
func TestHTTP2PrefaceRecognised(t *testing.T) {
	_, err := NewFrameReader(strings.NewReader("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")).Next()
	if !errors.Is(err, ErrHTTP2Preface) || !errors.Is(err, ErrMalformed) || errors.Is(err, ErrFrameTooLarge) {
		t.Fatalf("preface: %v, want ErrHTTP2Preface (a malformed frame, not too large)", err)
	}
}
