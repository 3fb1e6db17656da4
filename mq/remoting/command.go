package remoting

import (
	"errors"
	"fmt"
	"strconv"
	"time"
)

// MaxFrameSize caps a frame (header and body, without the 4-byte length prefix), as Java's broker does: 16 MiB.
const MaxFrameSize = 16 << 20

// Serialize types carried in the top byte of the header-length word.
const (
	SerializeJSON     byte = 0
	SerializeRocketMQ byte = 1
)

// Flag bits.
const (
	FlagResponse int32 = 1 << 0
	FlagOneway   int32 = 1 << 1
)

// Version is the remoting version the broker stamps on its own commands (the value a 4.9 broker would send is
// larger; clients only compare it against V4_1_0 = 0).
const Version int16 = 317

// Request codes (a subset of Java's RequestCode, the ones tide serves or sends).
const (
	SendMessage                   int16 = 10
	PullMessage                   int16 = 11
	QueryMessage                  int16 = 12
	QueryConsumerOffset           int16 = 14
	UpdateConsumerOffset          int16 = 15
	UpdateAndCreateTopic          int16 = 17
	GetAllTopicConfig             int16 = 21
	SearchOffsetByTimestamp       int16 = 29
	GetMaxOffset                  int16 = 30
	GetMinOffset                  int16 = 31
	ViewMessageByID               int16 = 33
	HeartBeat                     int16 = 34
	UnregisterClient              int16 = 35
	ConsumerSendMsgBack           int16 = 36
	EndTransaction                int16 = 37
	GetConsumerListByGroup        int16 = 38
	CheckTransactionState         int16 = 39
	NotifyConsumerIdsChanged      int16 = 40
	LockBatchMQ                   int16 = 41
	UnlockBatchMQ                 int16 = 42
	CheckClientConfig             int16 = 46
	RegisterBroker                int16 = 103
	GetRouteInfoByTopic           int16 = 105
	GetBrokerClusterInfo          int16 = 106
	UpdateAndCreateSubscription   int16 = 200
	GetAllSubscriptionGroupConfig int16 = 201
	GetAllTopicListFromNameSrv    int16 = 206
	DeleteSubscriptionGroup       int16 = 207
	GetConsumeStats               int16 = 208
	DeleteTopicInBroker           int16 = 215
	DeleteTopicInNameSrv          int16 = 216
	ResetConsumerClientOffset     int16 = 220
	InvokeBrokerToResetOffset     int16 = 222
	SendBatchMessage              int16 = 320
	SendReplyMessage              int16 = 324
	SendReplyMessageV2            int16 = 325
	SendMessageV2                 int16 = 310
	PushReplyMessageToClient      int16 = 326
)

// Response codes (Java's ResponseCode / RemotingSysResponseCode).
const (
	Success                 int16 = 0
	SystemError             int16 = 1
	SystemBusy              int16 = 2
	RequestCodeNotSupported int16 = 3
	FlushDiskTimeout        int16 = 10
	MessageIllegal          int16 = 13
	ServiceNotAvailable     int16 = 14
	NoPermission            int16 = 16
	TopicNotExist           int16 = 17
	PullNotFound            int16 = 19
	PullRetryImmediately    int16 = 20
	PullOffsetMoved         int16 = 21
	QueryNotFound           int16 = 22
	SubscriptionParseFailed int16 = 23
	SubscriptionNotExist    int16 = 24
	MessageTooLarge         int16 = 13
)

// Sentinel errors; wrapped with detail by the codec.
var (
	ErrFrameTooLarge = errors.New("remoting: frame too large")
	ErrMalformed     = errors.New("remoting: malformed frame")
	// ErrHTTP2Preface: the peer speaks HTTP/2 ("PRI * HTTP/2.0", a gRPC client such as RocketMQ 5's SDKs), whose
	// first four bytes would read as a 1347569952-byte frame.
	ErrHTTP2Preface = fmt.Errorf("%w: HTTP/2 connection preface (a gRPC client on a remoting port)", ErrMalformed)
	ErrClosed       = errors.New("remoting: connection closed")
)

// Command is a RemotingCommand. ExtFields values are strings on the wire, whatever they mean.
type Command struct {
	Code      int16
	Language  string
	Version   int16
	Opaque    int32
	Flag      int32
	Remark    string
	ExtFields map[string]string
	Body      []byte

	// arrived is when the server's read loop decoded this request (monotonic), set only when the server has an
	// OnReply observer (metrics: rocketmq_rpc_latency).
	arrived time.Time
}

// IsResponse reports whether the response bit is set.
func (c *Command) IsResponse() bool { return c.Flag&FlagResponse != 0 }

// IsOneway reports whether the oneway bit is set (the Go client never sets it).
func (c *Command) IsOneway() bool { return c.Flag&FlagOneway != 0 }

// NewRequest builds a request from the broker (or an admin client).
func NewRequest(code int16, ext map[string]string, body []byte) *Command {
	if ext == nil {
		ext = map[string]string{}
	}
	return &Command{Code: code, Language: "GO", Version: Version, ExtFields: ext, Body: body}
}

// NewResponse builds the response to req with the given code and remark.
func NewResponse(req *Command, code int16, remark string) *Command {
	return &Command{Code: code, Language: "JAVA", Version: Version, Opaque: req.Opaque, Flag: FlagResponse,
		Remark: remark, ExtFields: map[string]string{}}
}

// Errorf builds an error response to req.
func Errorf(req *Command, code int16, format string, args ...any) *Command {
	return NewResponse(req, code, fmt.Sprintf(format, args...))
}

// Ext returns the named ext field and whether it was present.
func (c *Command) Ext(name string) (string, bool) {
	v, ok := c.ExtFields[name]
	return v, ok
}

// SetExt sets an ext field.
func (c *Command) SetExt(name, value string) {
	if c.ExtFields == nil {
		c.ExtFields = map[string]string{}
	}
	c.ExtFields[name] = value
}

// FieldError names an ext field that is missing or of the wrong type.
type FieldError struct {
	Field string
	Value string
	Want  string
}

func (e *FieldError) Error() string {
	if e.Value == "" {
		return fmt.Sprintf("extFields.%s: missing, want %s", e.Field, e.Want)
	}
	return fmt.Sprintf("extFields.%s: %q is not %s", e.Field, e.Value, e.Want)
}

// Fields reads typed ext fields, remembering the first error so handlers can read everything and check once.
type Fields struct {
	c   *Command
	Err error
}

// ReadFields starts reading c's ext fields.
func (c *Command) ReadFields() *Fields { return &Fields{c: c} }

func (f *Fields) fail(name, v, want string) {
	if f.Err == nil {
		f.Err = &FieldError{Field: name, Value: v, Want: want}
	}
}

// String returns a required string field (may be empty only if present).
func (f *Fields) String(name string) string {
	v, ok := f.c.ExtFields[name]
	if !ok {
		f.fail(name, "", "a string")
	}
	return v
}

// OptString returns an optional string field.
func (f *Fields) OptString(name string) string { return f.c.ExtFields[name] }

// Int64 returns a required integer field.
func (f *Fields) Int64(name string) int64 {
	v, ok := f.c.ExtFields[name]
	if !ok {
		f.fail(name, "", "an integer")
		return 0
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		f.fail(name, v, "an integer")
	}
	return n
}

// OptInt64 returns an optional integer field, def when absent or empty.
func (f *Fields) OptInt64(name string, def int64) int64 {
	v, ok := f.c.ExtFields[name]
	if !ok || v == "" || v == "null" {
		return def
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		f.fail(name, v, "an integer")
	}
	return n
}

// Int32 returns a required 32-bit integer field.
func (f *Fields) Int32(name string) int32 {
	v, ok := f.c.ExtFields[name]
	if !ok {
		f.fail(name, "", "an integer")
		return 0
	}
	n, err := strconv.ParseInt(v, 10, 32)
	if err != nil {
		f.fail(name, v, "a 32-bit integer")
	}
	return int32(n)
}

// OptInt32 returns an optional 32-bit integer field.
func (f *Fields) OptInt32(name string, def int32) int32 {
	v, ok := f.c.ExtFields[name]
	if !ok || v == "" || v == "null" {
		return def
	}
	n, err := strconv.ParseInt(v, 10, 32)
	if err != nil {
		f.fail(name, v, "a 32-bit integer")
	}
	return int32(n)
}

// OptBool returns an optional boolean field.
func (f *Fields) OptBool(name string, def bool) bool {
	v, ok := f.c.ExtFields[name]
	if !ok || v == "" || v == "null" {
		return def
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		f.fail(name, v, "a boolean")
	}
	return b
}
