package h1

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net/http"
	"net/http/httputil"
	"strings"
	"testing"
)

// seeds are responses of every framing the lean clients meet, and some that must be refused.
var seeds = []string{
	"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nX-A: 1\r\nContent-Length: 5\r\n\r\nhello",
	"HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\nContent-Type: text/plain\r\n\r\n5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nX-Sum: 42\r\n\r\n",
	"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the close",
	"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nold",
	"HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n",
	"HTTP/1.1 200 OK\r\nConnection: X-Private, keep-alive\r\nX-Private: secret\r\nContent-Length: 2\r\n\r\nok",
	"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
	"HTTP/1.1 200 OK\r\nContent-Length: 100\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n",
	"HTTP/1.1 204 No Content\r\nX-A: 1\r\n\r\n",
	"HTTP/1.1 304 Not Modified\r\nETag: \"x\"\r\n\r\n",
	"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
	"HTTP/1.1 200\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n0\r\n\r\n",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nxx",
	"HTTP/1.1 2000 OK\r\nContent-Length: 0\r\n\r\n",
	"HTTP/1.1 200 OK\r\nContent-Length: 1x\r\n\r\nx",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel",
	"HTTP/1.1 200 OK\nContent-Length: 0\n\n",
	"HTTP/1.1 200 OK\r\nX: a\r\n b\r\nContent-Length: 0\r\n\r\n",
	"HTTP/1.1 200 OK\r\nCe-Id: 1\r\nCe-Specversion: 1.0\r\nContent-Length: 0\r\n\r\n",
}

// FuzzResponse feeds arbitrary bytes to Response.Read and, for a chunked body, to httputil's chunked reader and
// ReadTrailers: nothing may panic, and what Read accepts net/http must read with the same status and framing;
// for the bodies both read to the end, the same bytes.
func FuzzResponse(f *testing.F) {
	for _, s := range seeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		var p Response
		var scratch []byte
		br := bufio.NewReader(strings.NewReader(raw))
		if err := p.Read(br, &scratch); err != nil {
			return
		}
		resp, err := http.ReadResponse(bufio.NewReader(strings.NewReader(raw)), nil)
		if err != nil {
			t.Fatalf("Read accepts %q, net/http refuses it: %v", raw, err)
		}
		if resp.StatusCode != p.Status {
			t.Fatalf("%q: status %d, net/http %d", raw, p.Status, resp.StatusCode)
		}
		if p.Status < 200 || p.Status == 204 || p.Status == 304 {
			return
		}
		chunked := len(resp.TransferEncoding) > 0 && resp.TransferEncoding[0] == "chunked"
		if chunked != p.Chunked || !p.Chunked && resp.ContentLength != p.ContentLength {
			t.Fatalf("%q: chunked %v length %d; net/http %v %d", raw, p.Chunked, p.ContentLength, chunked, resp.ContentLength)
		}
		want, werr := io.ReadAll(resp.Body)
		var got []byte
		var gerr error
		switch {
		case p.Chunked:
			got, gerr = io.ReadAll(httputil.NewChunkedReader(br))
			if gerr == nil {
				gerr = ReadTrailers(br, nil)
			}
		case p.ContentLength >= 0:
			got, gerr = io.ReadAll(io.LimitReader(br, p.ContentLength))
			if int64(len(got)) < p.ContentLength {
				gerr = io.ErrUnexpectedEOF
			}
		default:
			got, gerr = io.ReadAll(br)
		}
		if gerr == nil && werr == nil && !bytes.Equal(got, want) {
			t.Fatalf("%q: body %q, net/http %q", raw, got, want)
		}
		// A body net/http reads whole is read whole here too, except a trailer section this package bounds or
		// refuses (net/http folds or tolerates some).
		if werr == nil && gerr != nil && !errors.Is(gerr, ErrBadTrailers) {
			t.Fatalf("%q: net/http reads the body, here: %v", raw, gerr)
		}
	})
}

func TestReadResponse(t *testing.T) {
	for _, c := range []struct {
		raw     string
		status  int
		cl      int64
		chunked bool
		close   bool
		err     error
	}{
		{raw: "HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n", status: 202, cl: 0},
		{raw: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", status: 200, cl: -1, chunked: true},
		{raw: "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\n", status: 200, cl: 2, close: true},
		{raw: "HTTP/1.0 200 OK\r\n\r\n", status: 200, cl: -1, close: true},
		{raw: "HTTP/1.1 200 OK\nContent-Length: 0\n\n", err: ErrMalformedResponse},
		{raw: "HTTP/1.1 200 OK\r\nX-Big: " + strings.Repeat("b", MaxResponseHead) + "\r\n\r\n", err: ErrResponseHeadTooLarge},
		{raw: "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n", err: io.ErrUnexpectedEOF},
	} {
		var p Response
		var scratch []byte
		err := p.Read(bufio.NewReader(strings.NewReader(c.raw)), &scratch)
		if c.err != nil {
			if !errors.Is(err, c.err) {
				t.Errorf("%.40q: error %v, want %v", c.raw, err, c.err)
			}
			continue
		}
		if err != nil || p.Status != c.status || p.ContentLength != c.cl || p.Chunked != c.chunked || p.Close != c.close {
			t.Errorf("%.40q: %+v %v", c.raw, p, err)
		}
	}
}

func TestReadTrailers(t *testing.T) {
	var names []string
	br := bufio.NewReader(strings.NewReader("X-Sum: 42\r\nX-B: 1\r\n\r\nnext"))
	if err := ReadTrailers(br, func(_, name []byte) { names = append(names, string(name)) }); err != nil {
		t.Fatal(err)
	}
	if strings.Join(names, ",") != "X-Sum,X-B" {
		t.Fatalf("names %v", names)
	}
	if rest, _ := io.ReadAll(br); string(rest) != "next" {
		t.Fatalf("read past the trailer section: rest %q", rest)
	}
	for _, raw := range []string{"X: 1\r\n", "X 1\r\n\r\n", "X: 1\n\n", strings.Repeat("X: 1234567890\r\n", MaxTrailers/14+1) + "\r\n"} {
		if err := ReadTrailers(bufio.NewReader(strings.NewReader(raw)), nil); err == nil {
			t.Errorf("%.40q: accepted", raw)
		}
	}
}
