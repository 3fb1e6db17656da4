package remoting

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"time"
)

// Read-buffer and frame allocation sizes. A connection's read buffer starts at minReadBuffer and doubles (up to
// maxReadBuffer) only when a read fills it, so an idle or slow connection costs a few KiB while a busy one reads
// up to 64 KiB per system call. A frame that is not yet whole is given memory as its bytes arrive: its length word
// alone never allocates more than wholeFrameAlloc.
const (
	minReadBuffer   = 4 << 10
	maxReadBuffer   = 64 << 10
	wholeFrameAlloc = 4 << 10
)

// ErrFrameTimeout reports a frame whose bytes did not all arrive within the frame timeout.
var ErrFrameTimeout = errors.New("remoting: frame not completed in time")

// ErrIdleTimeout reports a connection that sent nothing for the idle timeout.
var ErrIdleTimeout = errors.New("remoting: connection idle")

// readDeadliner is the part of net.Conn the reader needs to enforce its timeouts.
type readDeadliner interface {
	SetReadDeadline(t time.Time) error
}

// FrameReader reads length-prefixed frames from a stream holding memory in proportion to the bytes that actually
// arrived: a peer that announces 16 MiB and sends four bytes costs this reader's small buffer, not 16 MiB. Each
// returned frame is a fresh slice (never the read buffer), so a decoded Command may keep aliasing it.
//
// With timeouts (SetTimeouts, on a stream that has read deadlines, such as a net.Conn) a frame must arrive whole
// within the frame timeout of its first byte, and a stream with no frame in progress may stay silent for the idle
// timeout; past either, Next returns an error wrapping ErrFrameTimeout or ErrIdleTimeout (and os.ErrDeadlineExceeded).
// After ErrIdleTimeout nothing is lost: Next may be called again. A FrameReader is not safe for concurrent use.
type FrameReader struct {
	r          io.Reader
	buf        []byte // buf[head:tail] arrived and has not been returned
	head, tail int

	dl           readDeadliner // nil: no timeouts
	idle, frame  time.Duration // 0: that timeout is off
	now          func() time.Time
	deadline     time.Time // the read deadline last set on dl (zero: none)
	frameStarted time.Time // when the frame in progress was first seen incomplete; zero when none is
	midFrame     bool      // Next is reading the body of a frame whose length word it consumed
}

// NewFrameReader reads frames from r.
func NewFrameReader(r io.Reader) *FrameReader { return &FrameReader{r: r, now: time.Now} }

// SetTimeouts enables the idle and frame timeouts (0 leaves one off) when the stream has read deadlines; now is
// the clock (nil: time.Now).
func (fr *FrameReader) SetTimeouts(idle, frame time.Duration, now func() time.Time) {
	dl, ok := fr.r.(readDeadliner)
	if !ok || (idle <= 0 && frame <= 0) {
		fr.dl = nil
		return
	}
	fr.dl, fr.idle, fr.frame = dl, max(idle, 0), max(frame, 0)
	if now != nil {
		fr.now = now
	}
}

// Buffered reports whether a whole frame has already arrived, so Next returns it without a system call (and so
// without blocking).
func (fr *FrameReader) Buffered() bool {
	n := fr.tail - fr.head
	if n < 4 {
		return false
	}
	return int64(n) >= 4+int64(binary.BigEndian.Uint32(fr.buf[fr.head:]))
}

// InFrame reports whether part of a frame has arrived (the connection is not between frames).
func (fr *FrameReader) InFrame() bool { return fr.tail > fr.head }

// BufferSize is the read buffer's current capacity (tests check that idle connections stay small).
func (fr *FrameReader) BufferSize() int { return len(fr.buf) }

// http2PrefaceWord is "PRI " (the HTTP/2 connection preface) read as a big-endian frame length: 1347569952.
const http2PrefaceWord int32 = 0x50524920

// Next returns the next frame without its length prefix. A length over MaxFrameSize or under 4 is rejected
// (ErrFrameTooLarge, ErrMalformed) before anything is allocated for it.
func (fr *FrameReader) Next() ([]byte, error) {
	for fr.tail-fr.head < 4 {
		if err := fr.fill(); err != nil {
			return nil, err
		}
	}
	n := int32(binary.BigEndian.Uint32(fr.buf[fr.head:]))
	if n == http2PrefaceWord {
		return nil, ErrHTTP2Preface
	}
	if n < 4 {
		return nil, fmt.Errorf("%w: frame length %d below the 4-byte header-length word", ErrMalformed, n)
	}
	if n > MaxFrameSize {
		return nil, fmt.Errorf("%w: %d bytes, limit %d", ErrFrameTooLarge, n, MaxFrameSize)
	}
	size := int(n)
	if fr.tail-fr.head >= 4+size { // the hot path: the whole frame is buffered
		frame := make([]byte, size)
		copy(frame, fr.buf[fr.head+4:])
		fr.consume(4 + size)
		fr.frameStarted = time.Time{}
		return frame, nil
	}
	fr.consume(4)
	fr.midFrame = true
	// Memory follows what arrived: small frames are allocated whole; larger ones start with what is buffered and
	// at least double as more arrives, so a frame holds at most twice its received bytes (plus wholeFrameAlloc).
	frame := make([]byte, 0, min(size, max(wholeFrameAlloc, fr.tail-fr.head)))
	for len(frame) < size {
		if fr.tail > fr.head {
			take := min(fr.tail-fr.head, size-len(frame))
			frame = appendBounded(frame, fr.buf[fr.head:fr.head+take], size)
			fr.consume(take)
			continue
		}
		if rest := size - len(frame); rest < len(fr.buf) || len(fr.buf) < maxReadBuffer {
			// Buffer the rest with whatever follows it (the next frames of a busy connection), as bufio would.
			if err := fr.fill(); err != nil {
				return nil, fr.frameErr(err)
			}
			continue
		}
		// A large remainder is read straight into the frame, in steps no larger than what already arrived.
		if len(frame) == cap(frame) {
			frame = growBounded(frame, size)
		}
		m, err := fr.read(frame[len(frame):cap(frame)])
		frame = frame[:len(frame)+m]
		if err != nil && len(frame) < size {
			return nil, fr.frameErr(err)
		}
	}
	fr.frameStarted, fr.midFrame = time.Time{}, false
	return frame, nil
}

// frameErr reports a stream that ended or stalled inside a frame.
func (fr *FrameReader) frameErr(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}

func (fr *FrameReader) consume(n int) {
	fr.head += n
	if fr.head == fr.tail {
		fr.head, fr.tail = 0, 0
	}
}

// fill reads more bytes into the buffer, compacting it first and growing it when the previous read filled it.
// Part of a frame counts as "in progress" for the frame timeout: fill is only called when a frame is incomplete
// or none has started.
func (fr *FrameReader) fill() error {
	if fr.buf == nil {
		fr.buf = make([]byte, minReadBuffer)
	}
	if fr.head > 0 {
		copy(fr.buf, fr.buf[fr.head:fr.tail])
		fr.tail -= fr.head
		fr.head = 0
	}
	if fr.tail == len(fr.buf) {
		if len(fr.buf) >= maxReadBuffer {
			return fmt.Errorf("remoting: read buffer full") // unreachable: callers never buffer more than one length word
		}
		nb := make([]byte, 2*len(fr.buf))
		copy(nb, fr.buf[:fr.tail])
		fr.buf = nb
	}
	want := len(fr.buf) - fr.tail
	n, err := fr.read(fr.buf[fr.tail:])
	fr.tail += n
	if n == want && len(fr.buf) < maxReadBuffer {
		// The read filled the buffer: more is probably waiting, so read in larger steps from now on.
		nb := make([]byte, 2*len(fr.buf))
		copy(nb, fr.buf[fr.head:fr.tail])
		fr.tail -= fr.head
		fr.head = 0
		fr.buf = nb
	}
	if n > 0 {
		return nil
	}
	return err
}

// read is one Read on the stream under the deadline that applies: the frame timeout while a frame is in progress
// (bytes of it are held, or it is being read into), the idle timeout otherwise.
func (fr *FrameReader) read(p []byte) (int, error) {
	if fr.dl == nil {
		return fr.r.Read(p)
	}
	now := fr.now()
	inFrame := fr.midFrame || fr.tail > fr.head
	var want time.Time
	var cause error
	switch {
	case inFrame && fr.frame > 0:
		if fr.frameStarted.IsZero() {
			fr.frameStarted = now
		}
		want, cause = fr.frameStarted.Add(fr.frame), ErrFrameTimeout
	case !inFrame && fr.idle > 0:
		want, cause = now.Add(fr.idle), ErrIdleTimeout
	}
	// Setting a deadline costs a timer update. An idle deadline is set an eighth of the timeout later than needed
	// and only moved once it falls short, so a busy connection rarely pays for it: an idle connection is closed
	// after between 1 and 9/8 idle timeouts of silence. A frame's deadline is exact.
	switch {
	case want.IsZero():
		if !fr.deadline.IsZero() {
			_ = fr.dl.SetReadDeadline(time.Time{})
			fr.deadline = time.Time{}
		}
	case cause == ErrIdleTimeout:
		if fr.deadline.Before(want) || fr.deadline.After(want.Add(fr.idle/8)) {
			want = want.Add(fr.idle / 8)
			if err := fr.dl.SetReadDeadline(want); err != nil {
				return 0, err
			}
			fr.deadline = want
		}
	case !want.Equal(fr.deadline):
		if err := fr.dl.SetReadDeadline(want); err != nil {
			return 0, err
		}
		fr.deadline = want
	}
	n, err := fr.r.Read(p)
	if err != nil && n == 0 && cause != nil && isTimeout(err) {
		return 0, fmt.Errorf("%w after %v: %w", cause, fr.timeoutFor(cause), err)
	}
	return n, err
}

func (fr *FrameReader) timeoutFor(cause error) time.Duration {
	if cause == ErrIdleTimeout {
		return fr.idle
	}
	return fr.frame
}

func isTimeout(err error) bool {
	var te interface{ Timeout() bool }
	return errors.As(err, &te) && te.Timeout()
}

// appendBounded appends p to frame, growing its capacity at least twofold but never beyond size.
func appendBounded(frame, p []byte, size int) []byte {
	if cap(frame)-len(frame) < len(p) {
		nb := make([]byte, len(frame), min(size, max(2*cap(frame), len(frame)+len(p))))
		copy(nb, frame)
		frame = nb
	}
	return append(frame, p...)
}

// growBounded doubles frame's capacity, never beyond size.
func growBounded(frame []byte, size int) []byte {
	nb := make([]byte, len(frame), min(size, max(2*cap(frame), wholeFrameAlloc)))
	copy(nb, frame)
	return nb
}
