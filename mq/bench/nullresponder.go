package bench

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
)

// nullResponder is the rocketmq-null peer's server: one listener acting as both the name server and the broker,
// written for the benchmark and sharing no code with tide's broker (no mq/remoting, mq/namesrv or mq/broker), so the
// ceiling it measures is the official client's alone, not partly tide's.
//
// It speaks just enough of RocketMQ's remoting protocol for a producer: frames are a 4-byte big-endian length, a
// 4-byte header length whose high byte is the header's serialization (0 JSON, 1 RocketMQ binary; both are read,
// answers are JSON), the header, the body. GET_ROUTEINFO_BY_TOPIC (105) gets a route to itself with 8 read-write
// queues; SEND_MESSAGE (10) and SEND_MESSAGE_V2 (310) get a canned success with the extension fields a broker sets;
// every other request gets an empty success; one-way frames get nothing. Each connection has one goroutine that
// reads whatever arrived, appends the answers to a buffer and writes them with one system call when no complete
// frame is left to read, so pipelined sends are answered in batches, as any efficient broker would.
type nullResponder struct {
	ln     net.Listener
	addr   string
	offset atomic.Int64
	wg     sync.WaitGroup
	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool
}

// Request codes and flags of RocketMQ's remoting protocol the responder distinguishes.
const (
	nullCodeSendMessage   = 10
	nullCodeSendMessageV2 = 310
	nullCodeGetRouteInfo  = 105
	nullFlagResponse      = 1
	nullFlagOneway        = 2
	nullMaxFrame          = 16 << 20 // more than any benchmark message; a larger length is a broken stream
)

func newNullResponder() (*nullResponder, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("null responder: %w", err)
	}
	r := &nullResponder{ln: ln, addr: ln.Addr().String(), conns: map[net.Conn]struct{}{}}
	r.wg.Add(1)
	go r.accept()
	return r, nil
}

func (r *nullResponder) accept() {
	defer r.wg.Done()
	for {
		c, err := r.ln.Accept()
		if err != nil {
			return
		}
		r.mu.Lock()
		if r.closed {
			r.mu.Unlock()
			c.Close()
			return
		}
		r.conns[c] = struct{}{}
		r.wg.Add(1)
		r.mu.Unlock()
		go r.serve(c)
	}
}

// close stops accepting, closes every connection and waits for their goroutines.
func (r *nullResponder) close() {
	r.mu.Lock()
	r.closed = true
	for c := range r.conns {
		c.Close()
	}
	r.mu.Unlock()
	r.ln.Close()
	r.wg.Wait()
}

func (r *nullResponder) serve(c net.Conn) {
	defer r.wg.Done()
	defer func() {
		r.mu.Lock()
		delete(r.conns, c)
		r.mu.Unlock()
		c.Close()
	}()
	in := bufio.NewReaderSize(c, 64<<10)
	var out []byte
	for {
		frame, err := readNullFrame(in)
		if err != nil {
			return
		}
		out, err = r.answer(out, frame)
		if err != nil {
			return
		}
		// Write when nothing complete is buffered: the next read may block.
		if len(out) > 0 && !nullFrameBuffered(in) {
			if _, err := c.Write(out); err != nil {
				return
			}
			out = out[:0]
		}
	}
}

// readNullFrame returns one frame without its length prefix (header length word, header, body).
func readNullFrame(in *bufio.Reader) ([]byte, error) {
	var n [4]byte
	if _, err := io.ReadFull(in, n[:]); err != nil {
		return nil, err
	}
	size := binary.BigEndian.Uint32(n[:])
	if size < 4 || size > nullMaxFrame {
		return nil, fmt.Errorf("null responder: frame length %d", size)
	}
	frame := make([]byte, size)
	if _, err := io.ReadFull(in, frame); err != nil {
		return nil, err
	}
	return frame, nil
}

// nullFrameBuffered reports whether a whole frame is already in the reader's buffer.
func nullFrameBuffered(in *bufio.Reader) bool {
	if in.Buffered() < 4 {
		return false
	}
	n, err := in.Peek(4)
	if err != nil {
		return false
	}
	return in.Buffered() >= 4+int(binary.BigEndian.Uint32(n))
}

// nullHeader is what the responder needs from a request header.
type nullHeader struct {
	code   int
	opaque int64
	flag   int
}

var errNullHeader = errors.New("null responder: malformed header")

func parseNullHeader(frame []byte) (nullHeader, error) {
	word := binary.BigEndian.Uint32(frame[:4])
	typ, hlen := byte(word>>24), int(word&0xFFFFFF)
	if 4+hlen > len(frame) {
		return nullHeader{}, errNullHeader
	}
	h := frame[4 : 4+hlen]
	switch typ {
	case 1: // RocketMQ binary: code int16, language byte, version int16, opaque int32, flag int32, ...
		if len(h) < 13 {
			return nullHeader{}, errNullHeader
		}
		return nullHeader{code: int(int16(binary.BigEndian.Uint16(h[0:]))), opaque: int64(int32(binary.BigEndian.Uint32(h[5:]))),
			flag: int(int32(binary.BigEndian.Uint32(h[9:])))}, nil
	case 0: // JSON: the three numbers are read by key, without decoding the whole header.
		code, ok1 := jsonIntField(h, `"code":`)
		opaque, ok2 := jsonIntField(h, `"opaque":`)
		flag, ok3 := jsonIntField(h, `"flag":`)
		if !ok1 || !ok2 || !ok3 {
			return nullHeader{}, errNullHeader
		}
		return nullHeader{code: int(code), opaque: opaque, flag: int(flag)}, nil
	}
	return nullHeader{}, errNullHeader
}

// jsonIntField finds key in a flat JSON header and parses the integer after it. The keys looked for occur once,
// before extFields, whose values are strings, so the first match is the header's own.
func jsonIntField(h []byte, key string) (int64, bool) {
	i := bytes.Index(h, []byte(key))
	if i < 0 {
		return 0, false
	}
	rest := bytes.TrimLeft(h[i+len(key):], " ")
	j := 0
	for j < len(rest) && (rest[j] == '-' || rest[j] >= '0' && rest[j] <= '9') {
		j++
	}
	v, err := strconv.ParseInt(string(rest[:j]), 10, 64)
	return v, err == nil
}

// answer appends the response to one request frame (none for a one-way request or a response).
func (r *nullResponder) answer(out, frame []byte) ([]byte, error) {
	h, err := parseNullHeader(frame)
	if err != nil {
		return out, err
	}
	if h.flag&(nullFlagResponse|nullFlagOneway) != 0 {
		return out, nil
	}
	var ext, body string
	switch h.code {
	case nullCodeSendMessage, nullCodeSendMessageV2:
		ext = `,"extFields":{"msgId":"7F00000100002A9F000000000000BEEF","queueId":"0","queueOffset":"` +
			strconv.FormatInt(r.offset.Add(1), 10) + `","MSG_REGION":"DefaultRegion","TRACE_ON":"true"}`
	case nullCodeGetRouteInfo:
		body = `{"orderTopicConf":"","queueDatas":[{"brokerName":"null-broker","readQueueNums":8,"writeQueueNums":8,"perm":6,"topicSynFlag":0}],` +
			`"brokerDatas":[{"cluster":"null-cluster","brokerName":"null-broker","brokerAddrs":{"0":"` + r.addr + `"}}]}`
	}
	header := `{"code":0,"language":"JAVA","version":0,"opaque":` + strconv.FormatInt(h.opaque, 10) +
		`,"flag":1,"serializeTypeCurrentRPC":"JSON"` + ext + `}`
	var word [8]byte
	binary.BigEndian.PutUint32(word[:4], uint32(4+len(header)+len(body)))
	binary.BigEndian.PutUint32(word[4:], uint32(len(header)))
	out = append(out, word[:]...)
	out = append(out, header...)
	return append(out, body...), nil
}
