package admin

import (
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"

	"github.com/tide-run/tide/mq/mqmeta"
)

// Apache's broker writes some bodies with fastjson, whose maps keyed by an object come out with the object itself
// as the key: GET_CONSUME_STATS's offsetTable is {{"brokerName":..,"queueId":..,"topic":..}:{"brokerOffset":..},...}
// and INVOKE_BROKER_TO_RESET_OFFSET's is {{...}:offset,...}. That is not JSON, so this file has a small parser for
// JSON plus non-string keys, used only to pull such tables out of a response body.

// ErrBody reports a response body that cannot be read.
var ErrBody = errors.New("admin: unreadable response body")

// maxDepth bounds nesting so a hostile body cannot exhaust the stack.
const maxDepth = 64

// fjValue is a parsed value: raw holds a scalar's JSON text (string with quotes, number, true, false, null); obj
// and arr hold containers. Object keys are values themselves.
type fjValue struct {
	raw []byte
	obj []fjPair
	arr []fjValue
	// isObj and isArr tell an empty container from a scalar.
	isObj, isArr bool
}

type fjPair struct{ key, val fjValue }

type fjParser struct {
	b []byte
	i int
}

func parseFastJSON(b []byte) (fjValue, error) {
	p := &fjParser{b: b}
	v, err := p.value(0)
	if err != nil {
		return fjValue{}, err
	}
	p.ws()
	if p.i != len(p.b) {
		return fjValue{}, fmt.Errorf("%w: trailing data at byte %d", ErrBody, p.i)
	}
	return v, nil
}

func (p *fjParser) ws() {
	for p.i < len(p.b) && (p.b[p.i] == ' ' || p.b[p.i] == '\t' || p.b[p.i] == '\n' || p.b[p.i] == '\r') {
		p.i++
	}
}

func (p *fjParser) value(depth int) (fjValue, error) {
	if depth > maxDepth {
		return fjValue{}, fmt.Errorf("%w: nested deeper than %d", ErrBody, maxDepth)
	}
	p.ws()
	if p.i >= len(p.b) {
		return fjValue{}, fmt.Errorf("%w: unexpected end", ErrBody)
	}
	switch c := p.b[p.i]; {
	case c == '{':
		p.i++
		v := fjValue{isObj: true}
		p.ws()
		if p.i < len(p.b) && p.b[p.i] == '}' {
			p.i++
			return v, nil
		}
		for {
			k, err := p.value(depth + 1)
			if err != nil {
				return v, err
			}
			p.ws()
			if p.i >= len(p.b) || p.b[p.i] != ':' {
				return v, fmt.Errorf("%w: want ':' at byte %d", ErrBody, p.i)
			}
			p.i++
			val, err := p.value(depth + 1)
			if err != nil {
				return v, err
			}
			v.obj = append(v.obj, fjPair{k, val})
			p.ws()
			if p.i < len(p.b) && p.b[p.i] == ',' {
				p.i++
				continue
			}
			if p.i < len(p.b) && p.b[p.i] == '}' {
				p.i++
				return v, nil
			}
			return v, fmt.Errorf("%w: want ',' or '}' at byte %d", ErrBody, p.i)
		}
	case c == '[':
		p.i++
		v := fjValue{isArr: true}
		p.ws()
		if p.i < len(p.b) && p.b[p.i] == ']' {
			p.i++
			return v, nil
		}
		for {
			e, err := p.value(depth + 1)
			if err != nil {
				return v, err
			}
			v.arr = append(v.arr, e)
			p.ws()
			if p.i < len(p.b) && p.b[p.i] == ',' {
				p.i++
				continue
			}
			if p.i < len(p.b) && p.b[p.i] == ']' {
				p.i++
				return v, nil
			}
			return v, fmt.Errorf("%w: want ',' or ']' at byte %d", ErrBody, p.i)
		}
	case c == '"':
		start := p.i
		p.i++
		for p.i < len(p.b) {
			switch p.b[p.i] {
			case '\\':
				p.i += 2
				continue
			case '"':
				p.i++
				return fjValue{raw: p.b[start:p.i]}, nil
			}
			p.i++
		}
		return fjValue{}, fmt.Errorf("%w: unterminated string", ErrBody)
	default:
		start := p.i
		for p.i < len(p.b) {
			c := p.b[p.i]
			if c == ',' || c == '}' || c == ']' || c == ':' || c == ' ' || c == '\n' || c == '\r' || c == '\t' {
				break
			}
			p.i++
		}
		if p.i == start {
			return fjValue{}, fmt.Errorf("%w: unexpected %q at byte %d", ErrBody, c, p.i)
		}
		return fjValue{raw: p.b[start:p.i]}, nil
	}
}

// field returns the value of an object's string key name.
func (v fjValue) field(name string) (fjValue, bool) {
	for _, kv := range v.obj {
		if s, ok := kv.key.str(); ok && s == name {
			return kv.val, true
		}
	}
	return fjValue{}, false
}

func (v fjValue) str() (string, bool) {
	if len(v.raw) < 2 || v.raw[0] != '"' {
		return "", false
	}
	var s string
	if json.Unmarshal(v.raw, &s) != nil {
		return "", false
	}
	return s, true
}

func (v fjValue) int64() (int64, bool) {
	if len(v.raw) == 0 {
		return 0, false
	}
	n, err := strconv.ParseInt(string(v.raw), 10, 64)
	return n, err == nil
}

// queueKey reads a fastjson MessageQueue key {"brokerName":..,"queueId":..,"topic":..}.
func (v fjValue) queueKey() (topic, brokerName string, queue int32, ok bool) {
	t, ok1 := v.field("topic")
	b, ok2 := v.field("brokerName")
	q, ok3 := v.field("queueId")
	if !ok1 || !ok2 || !ok3 {
		return "", "", 0, false
	}
	topic, ok1 = t.str()
	brokerName, ok2 = b.str()
	n, ok3 := q.int64()
	if !ok1 || !ok2 || !ok3 || n < 0 || n > 1<<30 {
		return "", "", 0, false
	}
	return topic, brokerName, int32(n), true
}

// parseQueueTable reads body's offsetTable, in Apache's layout (an object keyed by MessageQueue objects, whose
// values are an OffsetWrapper object or, for a reset, a bare offset) or in the array layout of tide before it
// spoke Apache's (a list of QueueStat). Rows come sorted by topic and queue; Lag is brokerOffset-consumerOffset,
// never negative.
func parseQueueTable(body []byte) ([]mqmeta.QueueStat, error) {
	v, err := parseFastJSON(body)
	if err != nil {
		return nil, err
	}
	tbl, ok := v.field("offsetTable")
	if !ok {
		return nil, nil // no table: nothing consumed
	}
	var out []mqmeta.QueueStat
	switch {
	case tbl.isArr: // tide's older layout
		var body struct {
			OffsetTable []mqmeta.QueueStat `json:"offsetTable"`
		}
		if err := json.Unmarshal(body2json(v), &body); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrBody, err)
		}
		for _, r := range body.OffsetTable {
			if r.QueueID < 0 {
				return nil, fmt.Errorf("%w: offsetTable row with queue id %d", ErrBody, r.QueueID)
			}
			r.Lag = max(0, r.Lag)
			out = append(out, r)
		}
	case tbl.isObj:
		for _, kv := range tbl.obj {
			topic, bn, q, ok := kv.key.queueKey()
			if !ok {
				return nil, fmt.Errorf("%w: offsetTable key is not a message queue", ErrBody)
			}
			st := mqmeta.QueueStat{Topic: topic, BrokerName: bn, QueueID: q}
			if n, ok := kv.val.int64(); ok { // reset: {mq: offset}
				st.ConsumerOffset = n
			} else {
				bo, _ := kv.val.field("brokerOffset")
				co, _ := kv.val.field("consumerOffset")
				st.BrokerOffset, _ = bo.int64()
				st.ConsumerOffset, _ = co.int64()
				st.Lag = max(0, st.BrokerOffset-st.ConsumerOffset)
			}
			out = append(out, st)
		}
	default:
		return nil, fmt.Errorf("%w: offsetTable is neither an object nor a list", ErrBody)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Topic != out[j].Topic {
			return out[i].Topic < out[j].Topic
		}
		return out[i].QueueID < out[j].QueueID
	})
	return out, nil
}

// body2json re-encodes a value that is plain JSON (string keys only) as JSON text.
func body2json(v fjValue) []byte {
	var b []byte
	var enc func(v fjValue)
	enc = func(v fjValue) {
		switch {
		case v.isObj:
			b = append(b, '{')
			for i, kv := range v.obj {
				if i > 0 {
					b = append(b, ',')
				}
				enc(kv.key)
				b = append(b, ':')
				enc(kv.val)
			}
			b = append(b, '}')
		case v.isArr:
			b = append(b, '[')
			for i, e := range v.arr {
				if i > 0 {
					b = append(b, ',')
				}
				enc(e)
			}
			b = append(b, ']')
		default:
			b = append(b, v.raw...)
		}
	}
	enc(v)
	return b
}
