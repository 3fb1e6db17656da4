package remoting

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"os"
	"runtime"
	"testing"
	"testing/iotest"
	"time"
)

// sendFrame is a SEND_MESSAGE as the official client writes it, with a body of n bytes.
func sendFrame(n int) []byte {
	req := NewRequest(SendMessage, map[string]string{"producerGroup": "pg", "topic": "orders", "defaultTopic": "TBW102",
		"defaultTopicQueueNums": "4", "queueId": "0", "sysFlag": "0", "bornTimestamp": "1700000000000", "flag": "0",
		"properties": "UNIQ_KEY\x017F0000010001000000000000000000\x02WAIT\x01true\x02"}, make([]byte, n))
	return req.Encode()
}

// reference splits a stream into frames by slicing: what any correct reader must return.
func reference(stream []byte) (frames [][]byte, rest []byte, err error) {
	for len(stream) >= 4 {
		n := int32(binary.BigEndian.Uint32(stream))
		if n < 4 {
			return frames, nil, ErrMalformed
		}
		if n > MaxFrameSize {
			return frames, nil, ErrFrameTooLarge
		}
		if len(stream) < 4+int(n) {
			break
		}
		frames = append(frames, stream[4:4+n])
		stream = stream[4+n:]
	}
	return frames, stream, nil
}

func TestFrameReaderMatchesSlicing(t *testing.T) {
	var stream []byte
	for _, n := range []int{0, 1, 100, 1024, 5000, 70 << 10, 1 << 20, 3, 4 << 20, 0, 64 << 10} {
		stream = append(stream, sendFrame(n)...)
	}
	want, _, _ := reference(stream)
	readers := map[string]func() io.Reader{
		"whole":    func() io.Reader { return bytes.NewReader(stream) },
		"one byte": func() io.Reader { return iotest.OneByteReader(bytes.NewReader(stream)) },
		"half":     func() io.Reader { return iotest.HalfReader(bytes.NewReader(stream)) },
		"4093":     func() io.Reader { return &chunked{b: stream, n: 4093} },
	}
	for name, mk := range readers {
		fr := NewFrameReader(mk())
		for i, w := range want {
			got, err := fr.Next()
			if err != nil {
				t.Fatalf("%s: frame %d: %v", name, i, err)
			}
			if !bytes.Equal(got, w) {
				t.Fatalf("%s: frame %d differs (%d bytes, want %d)", name, i, len(got), len(w))
			}
			if cap(got) != len(got) {
				t.Errorf("%s: frame %d: cap %d for %d bytes", name, i, cap(got), len(got))
			}
		}
		if _, err := fr.Next(); err != io.EOF {
			t.Fatalf("%s: at the end: %v, want EOF", name, err)
		}
		if fr.BufferSize() > maxReadBuffer {
			t.Fatalf("%s: read buffer grew to %d", name, fr.BufferSize())
		}
	}
}

// chunked returns at most n bytes per Read, like a socket under load.
type chunked struct {
	b []byte
	n int
}

func (c *chunked) Read(p []byte) (int, error) {
	if len(c.b) == 0 {
		return 0, io.EOF
	}
	m := copy(p[:min(len(p), c.n)], c.b)
	c.b = c.b[m:]
	return m, nil
}

// TestAnnouncedLengthCostsNothing reproduces finding 3 at the reader: a peer that announces 16 MiB and sends a few
// bytes makes the reader allocate in proportion to those bytes, not to the announcement.
func TestAnnouncedLengthCostsNothing(t *testing.T) {
	for _, sent := range []int{0, 10, 100 << 10} {
		stream := binary.BigEndian.AppendUint32(nil, MaxFrameSize)
		stream = append(stream, make([]byte, sent)...)
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		fr := NewFrameReader(&chunked{b: stream, n: 1500})
		_, err := fr.Next()
		runtime.ReadMemStats(&after)
		if !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Fatalf("%d bytes sent: %v, want unexpected EOF", sent, err)
		}
		// Bound: the read buffer (64 KiB at most) plus twice what arrived plus the first allocation.
		limit := uint64(maxReadBuffer + 2*sent + wholeFrameAlloc + 16<<10)
		if got := after.TotalAlloc - before.TotalAlloc; got > limit {
			t.Errorf("%d bytes of a 16 MiB frame sent: %d bytes allocated, want at most %d", sent, got, limit)
		}
	}
	// The standalone ReadFrame too.
	stream := binary.BigEndian.AppendUint32(nil, MaxFrameSize)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, err := ReadFrame(bytes.NewReader(append(stream, 1, 2, 3)))
	runtime.ReadMemStats(&after)
	if !errors.Is(err, io.ErrUnexpectedEOF) || after.TotalAlloc-before.TotalAlloc > 64<<10 {
		t.Fatalf("ReadFrame of an announced 16 MiB frame: %v, %d bytes allocated", err, after.TotalAlloc-before.TotalAlloc)
	}
}

func TestFrameReaderRejectsBadLengths(t *testing.T) {
	for name, c := range map[string]struct {
		b   []byte
		err error
	}{
		"under 4":   {[]byte{0, 0, 0, 3, 1, 2, 3}, ErrMalformed},
		"negative":  {[]byte{0xff, 0xff, 0xff, 0xff}, ErrMalformed},
		"too large": {binary.BigEndian.AppendUint32(nil, MaxFrameSize+1), ErrFrameTooLarge},
	} {
		if _, err := NewFrameReader(bytes.NewReader(c.b)).Next(); !errors.Is(err, c.err) {
			t.Errorf("%s: %v, want %v", name, err, c.err)
		}
	}
}

// pipe returns both ends of a loopback TCP connection.
func pipe(t testing.TB) (client, server net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server, err = ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close(); server.Close() })
	return client, server
}

func TestFrameReaderIdleTimeout(t *testing.T) {
	client, server := pipe(t)
	fr := NewFrameReader(server)
	const idle = 150 * time.Millisecond
	fr.SetTimeouts(idle, time.Hour, nil)
	start := time.Now()
	_, err := fr.Next()
	if !errors.Is(err, ErrIdleTimeout) || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("silent peer: %v, want an idle timeout", err)
	}
	if d := time.Since(start); d < idle {
		t.Fatalf("idle timeout after %v, before the %v configured", d, idle)
	}
	// Nothing was lost: the connection is still readable.
	frame := sendFrame(10)
	if _, err := client.Write(frame); err != nil {
		t.Fatal(err)
	}
	got, err := fr.Next()
	if err != nil || !bytes.Equal(got, frame[4:]) {
		t.Fatalf("after an idle timeout: %v", err)
	}
}

// TestFrameReaderFrameTimeout: a frame must arrive whole within the frame timeout of its first byte, even from a
// peer that keeps sending a byte now and then (slowloris); the idle timeout does not apply inside a frame.
func TestFrameReaderFrameTimeout(t *testing.T) {
	for name, send := range map[string]func(net.Conn){
		"length only": func(c net.Conn) { c.Write([]byte{0, 0, 1, 0}) },
		"half a length": func(c net.Conn) {
			c.Write([]byte{0, 0})
		},
		"trickle": func(c net.Conn) {
			c.Write([]byte{0, 0, 1, 0})
			for range 20 {
				time.Sleep(40 * time.Millisecond)
				if _, err := c.Write([]byte{1}); err != nil {
					return
				}
			}
		},
	} {
		t.Run(name, func(t *testing.T) {
			client, server := pipe(t)
			fr := NewFrameReader(server)
			const frameTimeout = 300 * time.Millisecond
			fr.SetTimeouts(50*time.Millisecond, frameTimeout, nil) // idle shorter than the frame timeout: not used mid-frame
			go send(client)
			start := time.Now()
			_, err := fr.Next()
			if !errors.Is(err, ErrFrameTimeout) {
				t.Fatalf("stalled frame: %v, want a frame timeout", err)
			}
			if d := time.Since(start); d < frameTimeout-50*time.Millisecond || d > 10*frameTimeout {
				t.Fatalf("frame timeout after %v, want about %v", d, frameTimeout)
			}
		})
	}
}

// TestFrameReaderTimeoutsDoNotCutBusyConnections: frames that keep arriving, each within the frame timeout, are
// all read even though the connection lives longer than both timeouts. Socket deadlines run on real time, so the
// margins are wide: the writer pauses 100 ms where the timeouts allow 1 s (a loaded CI machine once stretched a
// 20 ms pause past a 100 ms timeout), and the connection lives 2 s, twice the timeouts.
func TestFrameReaderTimeoutsDoNotCutBusyConnections(t *testing.T) {
	client, server := pipe(t)
	fr := NewFrameReader(server)
	const timeout, pause = time.Second, 100 * time.Millisecond
	fr.SetTimeouts(timeout, timeout, nil)
	frame := sendFrame(100 << 10) // larger than the read buffer: read in several steps
	go func() {
		for range 10 {
			client.Write(frame[:50])
			time.Sleep(pause)
			client.Write(frame[50:])
			time.Sleep(pause)
		}
	}()
	start := time.Now()
	for i := range 10 {
		got, err := fr.Next()
		if err != nil || !bytes.Equal(got, frame[4:]) {
			t.Fatalf("frame %d: %v", i, err)
		}
	}
	if d := time.Since(start); d <= timeout {
		t.Fatalf("the connection lived %v, not longer than the %v timeouts: the test proves nothing", d, timeout)
	}
}

// FuzzFrameReader: however a stream is cut into reads, the frame reader returns exactly the frames slicing finds,
// then the same error (or EOF), holds no frame in more memory than its size, and never buffers more than 64 KiB.
func FuzzFrameReader(f *testing.F) {
	f.Add(append(sendFrame(10), sendFrame(300)...), uint16(7))
	f.Add(sendFrame(5000), uint16(1))
	f.Add([]byte{0, 0, 0, 3}, uint16(4))
	f.Add([]byte{0, 0xff, 0xff, 0xff, 1, 2}, uint16(2))
	f.Add(append(sendFrame(0), 0, 0), uint16(100))
	f.Add(append([]byte{0, 0, 0, 4, 0, 0, 0, 0}, binary.BigEndian.AppendUint32(nil, MaxFrameSize+1)...), uint16(3))
	f.Fuzz(func(t *testing.T, stream []byte, chunk uint16) {
		want, rest, wantErr := reference(stream)
		fr := NewFrameReader(&chunked{b: stream, n: int(chunk)%8192 + 1})
		for i, w := range want {
			got, err := fr.Next()
			if err != nil {
				t.Fatalf("frame %d: %v", i, err)
			}
			if !bytes.Equal(got, w) || cap(got) > len(w) {
				t.Fatalf("frame %d: %d bytes (cap %d), want %d", i, len(got), cap(got), len(w))
			}
		}
		_, err := fr.Next()
		switch {
		case wantErr != nil:
			if !errors.Is(err, wantErr) {
				t.Fatalf("after the frames: %v, want %v", err, wantErr)
			}
		case len(rest) == 0:
			if err != io.EOF {
				t.Fatalf("at the end: %v, want EOF", err)
			}
		default:
			if !errors.Is(err, io.ErrUnexpectedEOF) && !(len(rest) < 4 && errors.Is(err, io.EOF)) {
				t.Fatalf("stream cut inside a frame: %v", err)
			}
		}
		if fr.BufferSize() > maxReadBuffer {
			t.Fatalf("read buffer %d", fr.BufferSize())
		}
	})
}

// oldReadFrame is the reader before the incremental one (bufio plus an allocation of the announced length), kept
// as the baseline of BenchmarkReadFrames.
func oldReadFrame(r io.Reader) ([]byte, error) {
	var lenBuf [4]byte
	if _, err := io.ReadFull(r, lenBuf[:]); err != nil {
		return nil, err
	}
	n := int32(binary.BigEndian.Uint32(lenBuf[:]))
	if n < 4 || n > MaxFrameSize {
		return nil, ErrMalformed
	}
	frame := make([]byte, n)
	if _, err := io.ReadFull(r, frame); err != nil {
		return nil, err
	}
	return frame, nil
}

// BenchmarkReadFrames reads a stream of sends (1 KiB bodies, as BenchmarkSendSync32 sends) the old way (bufio,
// allocate the announced length) and with the FrameReader, from memory in socket-sized reads and over loopback TCP
// with the server's timeouts on: go test ./mq/remoting -run '^$' -bench ReadFrames -benchmem
func BenchmarkReadFrames(b *testing.B) {
	frame := sendFrame(1024)
	var stream []byte
	for range 1000 {
		stream = append(stream, frame...)
	}
	b.Run("memory/bufio", func(b *testing.B) {
		b.SetBytes(int64(len(frame)))
		src := &chunked{n: 64 << 10}
		r := bufio.NewReaderSize(src, 64<<10)
		for b.Loop() {
			if len(src.b) == 0 && r.Buffered() == 0 {
				src.b = stream
			}
			if _, err := oldReadFrame(r); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("memory/framereader", func(b *testing.B) {
		b.SetBytes(int64(len(frame)))
		src := &chunked{n: 64 << 10}
		fr := NewFrameReader(src)
		for b.Loop() {
			if len(src.b) == 0 && !fr.InFrame() {
				src.b = stream
			}
			if _, err := fr.Next(); err != nil {
				b.Fatal(err)
			}
		}
	})
	tcp := func(b *testing.B, read func(net.Conn) func() error) {
		client, server := pipe(b)
		go func() {
			for {
				if _, err := client.Write(stream); err != nil {
					return
				}
			}
		}()
		next := read(server)
		b.SetBytes(int64(len(frame)))
		b.ResetTimer()
		for range b.N {
			if err := next(); err != nil {
				b.Fatal(err)
			}
		}
		b.StopTimer()
		server.Close()
	}
	b.Run("tcp/bufio", func(b *testing.B) {
		tcp(b, func(c net.Conn) func() error {
			r := bufio.NewReaderSize(c, 64<<10)
			return func() error { _, err := oldReadFrame(r); return err }
		})
	})
	b.Run("tcp/framereader-timeouts", func(b *testing.B) {
		tcp(b, func(c net.Conn) func() error {
			fr := NewFrameReader(c)
			fr.SetTimeouts(DefaultIdleTimeout, DefaultFrameTimeout, nil)
			return func() error { _, err := fr.Next(); return err }
		})
	})
}
