package message

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"net/netip"
	"sort"
	"strconv"
	"strings"
	"unicode/utf16"
)

// Magic codes of stored messages. V1 has a 1-byte topic length; V2 a 2-byte one. The Go client only reads V1.
const (
	MagicV1 uint32 = 0xDAA320A7
	MagicV2 uint32 = 0xDAA320A8
)

// SysFlag bits.
const (
	FlagCompressed  int32 = 0x1
	FlagMultiTags   int32 = 0x2
	FlagTxPrepared  int32 = 0x4
	FlagTxCommit    int32 = 0x8
	FlagTxRollback  int32 = 0xC
	FlagBornHostV6  int32 = 0x10
	FlagStoreHostV6 int32 = 0x20
	TxTypeMask      int32 = 0xC
)

// MaxBodySize is the largest body a producer may send (Java's maxMessageSize, 4 MiB).
const MaxBodySize = 4 << 20

// Property keys.
const (
	PropTags              = "TAGS"
	PropKeys              = "KEYS"
	PropWaitStoreOK       = "WAIT"
	PropDelayLevel        = "DELAY"
	PropRetryTopic        = "RETRY_TOPIC"
	PropRealTopic         = "REAL_TOPIC"
	PropRealQueueID       = "REAL_QID"
	PropTxPrepared        = "TRAN_MSG"
	PropProducerGroup     = "PGROUP"
	PropOriginMessageID   = "ORIGIN_MESSAGE_ID"
	PropReconsumeTime     = "RECONSUME_TIME"
	PropMaxReconsumeTimes = "MAX_RECONSUME_TIMES"
	PropUniqKey           = "UNIQ_KEY"
	PropDLQOriginTopic    = "DLQ_ORIGIN_TOPIC"
	PropDLQOriginMsgID    = "DLQ_ORIGIN_MESSAGE_ID"
	PropTimerDeliverMS    = "TIMER_DELIVER_MS"
	PropTimerDelaySec     = "TIMER_DELAY_SEC"
	PropTimerDelayMS      = "TIMER_DELAY_MS"
	// PropTimerOutMS is set by the broker on a timer message it holds: when it falls due (epoch ms).
	PropTimerOutMS     = "TIMER_OUT_MS"
	PropTimerEnqueueMS = "TIMER_ENQUEUE_MS"
	PropTimerDequeueMS = "TIMER_DEQUEUE_MS"
)

const (
	nameValueSep = '\x01'
	propSep      = '\x02'
)

// Errors.
var (
	ErrTruncated = errors.New("message: truncated")
	ErrCorrupt   = errors.New("message: corrupt")
)

// Message is one stored message. Properties is the raw `k\x01v\x02` string, kept as sent.
type Message struct {
	QueueID        int32
	Flag           int32
	QueueOffset    int64
	PhysicalOffset int64
	SysFlag        int32
	BornTimestamp  int64
	BornHost       netip.AddrPort
	StoreTimestamp int64
	StoreHost      netip.AddrPort
	ReconsumeTimes int32
	PreparedTxOff  int64
	Body           []byte
	Topic          string
	Properties     string
	// BodyCRC is filled by Decode; Encode computes it.
	BodyCRC uint32
}

func hostLen(a netip.AddrPort) int {
	if a.Addr().Is4() || a.Addr().Is4In6() || !a.IsValid() {
		return 8
	}
	return 20
}

func (m *Message) normalizedSysFlag() int32 {
	f := m.SysFlag &^ (FlagBornHostV6 | FlagStoreHostV6)
	if hostLen(m.BornHost) == 20 {
		f |= FlagBornHostV6
	}
	if hostLen(m.StoreHost) == 20 {
		f |= FlagStoreHostV6
	}
	return f
}

// Size is the encoded size of m.
func (m *Message) Size() int {
	return 4 + 4 + 4 + 4 + 4 + 8 + 8 + 4 + 8 + hostLen(m.BornHost) + 8 + hostLen(m.StoreHost) + 4 + 8 +
		4 + len(m.Body) + 1 + len(m.Topic) + 2 + len(m.Properties)
}

// Validate checks the limits the encoding imposes.
func (m *Message) Validate() error {
	if len(m.Topic) == 0 || len(m.Topic) > 127 {
		return fmt.Errorf("%w: topic length %d, want 1..127", ErrCorrupt, len(m.Topic))
	}
	if len(m.Properties) > 32767 {
		return fmt.Errorf("%w: properties length %d over 32767", ErrCorrupt, len(m.Properties))
	}
	return nil
}

// PhysicalOffsetPos is where PHYSICALOFFSET sits in an encoded message, so the commit log can stamp it in place.
const PhysicalOffsetPos = 4 + 4 + 4 + 4 + 4 + 8

// QueueOffsetPos is where QUEUEOFFSET sits.
const QueueOffsetPos = 4 + 4 + 4 + 4 + 4

// StoreTimestampPos returns where STORETIMESTAMP sits given the sysflag.
func StoreTimestampPos(sysFlag int32) int {
	p := 4 + 4 + 4 + 4 + 4 + 8 + 8 + 4 + 8 + 8
	if sysFlag&FlagBornHostV6 != 0 {
		p += 12
	}
	return p
}

// Append appends the encoded message to dst (magic V1). Call Validate first for untrusted input.
func (m *Message) Append(dst []byte) []byte {
	size := m.Size()
	sf := m.normalizedSysFlag()
	start := len(dst)
	b := dst
	b = binary.BigEndian.AppendUint32(b, uint32(size))
	b = binary.BigEndian.AppendUint32(b, MagicV1)
	m.BodyCRC = crc32.ChecksumIEEE(m.Body) & 0x7FFFFFFF
	b = binary.BigEndian.AppendUint32(b, m.BodyCRC)
	b = binary.BigEndian.AppendUint32(b, uint32(m.QueueID))
	b = binary.BigEndian.AppendUint32(b, uint32(m.Flag))
	b = binary.BigEndian.AppendUint64(b, uint64(m.QueueOffset))
	b = binary.BigEndian.AppendUint64(b, uint64(m.PhysicalOffset))
	b = binary.BigEndian.AppendUint32(b, uint32(sf))
	b = binary.BigEndian.AppendUint64(b, uint64(m.BornTimestamp))
	b = appendHost(b, m.BornHost)
	b = binary.BigEndian.AppendUint64(b, uint64(m.StoreTimestamp))
	b = appendHost(b, m.StoreHost)
	b = binary.BigEndian.AppendUint32(b, uint32(m.ReconsumeTimes))
	b = binary.BigEndian.AppendUint64(b, uint64(m.PreparedTxOff))
	b = binary.BigEndian.AppendUint32(b, uint32(len(m.Body)))
	b = append(b, m.Body...)
	b = append(b, byte(len(m.Topic)))
	b = append(b, m.Topic...)
	b = binary.BigEndian.AppendUint16(b, uint16(len(m.Properties)))
	b = append(b, m.Properties...)
	if len(b)-start != size {
		panic("message: size mismatch") // a bug in Size, never input-dependent
	}
	return b
}

func appendHost(b []byte, a netip.AddrPort) []byte {
	ip := a.Addr()
	if !a.IsValid() {
		return append(b, 0, 0, 0, 0, 0, 0, 0, 0)
	}
	if ip.Is4() || ip.Is4In6() {
		v4 := ip.Unmap().As4()
		b = append(b, v4[:]...)
	} else {
		v6 := ip.As16()
		b = append(b, v6[:]...)
	}
	return binary.BigEndian.AppendUint32(b, uint32(a.Port()))
}

type reader struct {
	b   []byte
	p   int
	err error
}

func (r *reader) need(n int, what string) bool {
	if r.err != nil {
		return false
	}
	if n < 0 || len(r.b)-r.p < n {
		r.err = fmt.Errorf("%w: %s at byte %d needs %d bytes, %d left", ErrTruncated, what, r.p, n, len(r.b)-r.p)
		return false
	}
	return true
}

func (r *reader) u32(what string) uint32 {
	if !r.need(4, what) {
		return 0
	}
	v := binary.BigEndian.Uint32(r.b[r.p:])
	r.p += 4
	return v
}

func (r *reader) u64(what string) uint64 {
	if !r.need(8, what) {
		return 0
	}
	v := binary.BigEndian.Uint64(r.b[r.p:])
	r.p += 8
	return v
}

func (r *reader) bytes(n int, what string) []byte {
	if !r.need(n, what) {
		return nil
	}
	v := r.b[r.p : r.p+n]
	r.p += n
	return v
}

func (r *reader) host(v6 bool, what string) netip.AddrPort {
	n := 4
	if v6 {
		n = 16
	}
	ipb := r.bytes(n, what)
	port := r.u32(what + " port")
	if r.err != nil {
		return netip.AddrPort{}
	}
	ip, _ := netip.AddrFromSlice(ipb)
	return netip.AddrPortFrom(ip, uint16(port))
}

// Decode decodes one stored message at the start of b and returns it with its size. The body, like all slices in
// the result, aliases b.
func Decode(b []byte) (*Message, int, error) {
	r := &reader{b: b}
	size := int(int32(r.u32("TOTALSIZE")))
	if r.err != nil {
		return nil, 0, r.err
	}
	if size < 4 || size > len(b) {
		return nil, 0, fmt.Errorf("%w: TOTALSIZE %d, %d bytes present", ErrTruncated, size, len(b))
	}
	r.b = b[:size]
	magic := r.u32("MAGIC")
	if r.err == nil && magic != MagicV1 && magic != MagicV2 {
		return nil, 0, fmt.Errorf("%w: magic %#x", ErrCorrupt, magic)
	}
	m := &Message{}
	m.BodyCRC = r.u32("BODYCRC")
	m.QueueID = int32(r.u32("QUEUEID"))
	m.Flag = int32(r.u32("FLAG"))
	m.QueueOffset = int64(r.u64("QUEUEOFFSET"))
	m.PhysicalOffset = int64(r.u64("PHYSICALOFFSET"))
	m.SysFlag = int32(r.u32("SYSFLAG"))
	m.BornTimestamp = int64(r.u64("BORNTIMESTAMP"))
	m.BornHost = r.host(m.SysFlag&FlagBornHostV6 != 0, "BORNHOST")
	m.StoreTimestamp = int64(r.u64("STORETIMESTAMP"))
	m.StoreHost = r.host(m.SysFlag&FlagStoreHostV6 != 0, "STOREHOST")
	m.ReconsumeTimes = int32(r.u32("RECONSUMETIMES"))
	m.PreparedTxOff = int64(r.u64("PREPAREDTRANSACTIONOFFSET"))
	bodyLen := int(int32(r.u32("BODYLENGTH")))
	m.Body = r.bytes(bodyLen, "BODY")
	var topicLen int
	if magic == MagicV2 {
		if r.need(2, "TOPICLENGTH") {
			topicLen = int(binary.BigEndian.Uint16(r.b[r.p:]))
			r.p += 2
		}
	} else if r.need(1, "TOPICLENGTH") {
		topicLen = int(r.b[r.p])
		r.p++
	}
	m.Topic = string(r.bytes(topicLen, "TOPIC"))
	if r.need(2, "PROPERTIESLENGTH") {
		pl := int(int16(binary.BigEndian.Uint16(r.b[r.p:])))
		r.p += 2
		m.Properties = string(r.bytes(pl, "PROPERTIES"))
	}
	if r.err != nil {
		return nil, 0, r.err
	}
	if r.p != size {
		return nil, 0, fmt.Errorf("%w: TOTALSIZE %d but fields end at %d", ErrCorrupt, size, r.p)
	}
	return m, size, nil
}

// BatchItem is one message of a client batch (SEND_BATCH_MESSAGE body).
type BatchItem struct {
	Flag       int32
	Body       []byte
	Properties string
}

// DecodeBatch decodes a client batch body: repeated TOTALSIZE MAGIC BODYCRC FLAG BODYLEN BODY PROPLEN PROPS.
func DecodeBatch(b []byte) ([]BatchItem, error) {
	var items []BatchItem
	for off := 0; off < len(b); {
		r := &reader{b: b, p: off}
		size := int(int32(r.u32("TOTALSIZE")))
		if r.err != nil {
			return nil, fmt.Errorf("batch item %d: %w", len(items), r.err)
		}
		if size < 22 || size > len(b)-off {
			return nil, fmt.Errorf("batch item %d: %w: TOTALSIZE %d, %d bytes left", len(items), ErrTruncated, size, len(b)-off)
		}
		r.b = b[:off+size]
		r.u32("MAGIC")
		r.u32("BODYCRC")
		it := BatchItem{Flag: int32(r.u32("FLAG"))}
		it.Body = r.bytes(int(int32(r.u32("BODYLENGTH"))), "BODY")
		if r.need(2, "PROPERTIESLENGTH") {
			pl := int(int16(binary.BigEndian.Uint16(r.b[r.p:])))
			r.p += 2
			it.Properties = string(r.bytes(pl, "PROPERTIES"))
		}
		if r.err != nil {
			return nil, fmt.Errorf("batch item %d: %w", len(items), r.err)
		}
		if r.p != off+size {
			return nil, fmt.Errorf("batch item %d: %w: TOTALSIZE %d but fields end at %d", len(items), ErrCorrupt, size, r.p-off)
		}
		items = append(items, it)
		off += size
	}
	return items, nil
}

// AppendBatchItem appends one item in the client batch encoding (tests and tools build batches with it).
func AppendBatchItem(dst []byte, it BatchItem) []byte {
	size := 4 + 4 + 4 + 4 + 4 + len(it.Body) + 2 + len(it.Properties)
	dst = binary.BigEndian.AppendUint32(dst, uint32(size))
	dst = binary.BigEndian.AppendUint32(dst, 0)
	dst = binary.BigEndian.AppendUint32(dst, crc32.ChecksumIEEE(it.Body)&0x7FFFFFFF)
	dst = binary.BigEndian.AppendUint32(dst, uint32(it.Flag))
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(it.Body)))
	dst = append(dst, it.Body...)
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(it.Properties)))
	return append(dst, it.Properties...)
}

// ParseProperties splits a `k\x01v\x02` string. Malformed pairs (no separator) are skipped, as Java does.
func ParseProperties(s string) map[string]string {
	m := map[string]string{}
	for len(s) > 0 {
		var pair string
		if i := strings.IndexByte(s, propSep); i >= 0 {
			pair, s = s[:i], s[i+1:]
		} else {
			pair, s = s, ""
		}
		if j := strings.IndexByte(pair, nameValueSep); j >= 0 {
			m[pair[:j]] = pair[j+1:]
		}
	}
	return m
}

// Property returns one property from a raw properties string without building a map.
func Property(s, key string) string {
	for len(s) > 0 {
		var pair string
		if i := strings.IndexByte(s, propSep); i >= 0 {
			pair, s = s[:i], s[i+1:]
		} else {
			pair, s = s, ""
		}
		if len(pair) > len(key) && pair[len(key)] == nameValueSep && pair[:len(key)] == key {
			return pair[len(key)+1:]
		}
	}
	return ""
}

// FormatProperties joins properties in key order (deterministic bytes).
func FormatProperties(m map[string]string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		b.WriteString(k)
		b.WriteByte(nameValueSep)
		b.WriteString(m[k])
		b.WriteByte(propSep)
	}
	return b.String()
}

// TagsHash is the consume-queue tag code: Java's String.hashCode of the tag (over UTF-16 code units), or 0 for no tag.
func TagsHash(tag string) int64 {
	if tag == "" {
		return 0
	}
	var h int32
	for _, u := range utf16.Encode([]rune(tag)) {
		h = 31*h + int32(u)
	}
	return int64(h)
}

// OffsetMsgID is the broker's message id: store host IPv4 (4 bytes), port (4 bytes) and commit-log offset (8 bytes)
// as 32 upper-case hex characters (40 for an IPv6 host).
func OffsetMsgID(store netip.AddrPort, offset int64) string {
	var b []byte
	ip := store.Addr()
	if !store.IsValid() {
		b = append(b, 0, 0, 0, 0)
	} else if ip.Is4() || ip.Is4In6() {
		v4 := ip.Unmap().As4()
		b = append(b, v4[:]...)
	} else {
		v6 := ip.As16()
		b = append(b, v6[:]...)
	}
	b = binary.BigEndian.AppendUint32(b, uint32(store.Port()))
	b = binary.BigEndian.AppendUint64(b, uint64(offset))
	return strings.ToUpper(hex.EncodeToString(b))
}

// ParseOffsetMsgID returns the commit-log offset in an offset message id.
func ParseOffsetMsgID(id string) (int64, error) {
	if len(id) != 32 && len(id) != 56 {
		return 0, fmt.Errorf("message id %q: want 32 or 56 hex characters", id)
	}
	b, err := hex.DecodeString(id)
	if err != nil {
		return 0, fmt.Errorf("message id %q: %w", id, err)
	}
	return int64(binary.BigEndian.Uint64(b[len(b)-8:])), nil
}

// DelayLevel parses the DELAY property (0 when absent or invalid).
func DelayLevel(props string) int {
	v := Property(props, PropDelayLevel)
	if v == "" {
		return 0
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return 0
	}
	return n
}
