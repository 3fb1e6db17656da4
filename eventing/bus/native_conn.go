package bus

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/tide-run/tide/mq/acl"
	"github.com/tide-run/tide/mq/mqmeta"
	"github.com/tide-run/tide/mq/remoting"
)

// The native bus's plumbing: connections to name servers and brokers, and topic routes. One remoting.Client per
// address (one TCP connection, requests multiplexed by opaque, one write per frame); a connection that ended is
// dialled again on the next request, which is all a broker restart needs on this side.

// errBrokerAnswer wraps a broker's or name server's error answer.
var errBrokerAnswer = errors.New("rocketmq answered with an error")

// nativeConns is one client identity's set of connections. Each consumer group member has its own (the brokers key
// a group's members by connection, as the official clients' per-instance connections are), the producer another.
type nativeConns struct {
	nameServers []string
	creds       acl.Credentials
	// onRequest gets requests a broker sends (NOTIFY_CONSUMER_IDS_CHANGED); onDial is told about every new
	// connection to a broker (a consumer sends its heartbeat there again). Both may be nil; neither may block.
	onRequest func(addr string, cmd *remoting.Command)
	onDial    func(addr string)

	mu     sync.Mutex // guards conns, closed, nsNext
	conns  map[string]*remoting.Client
	closed bool
	nsNext int
}

func newNativeConns(nameServers []string, creds acl.Credentials) *nativeConns {
	return &nativeConns{nameServers: nameServers, creds: creds, conns: map[string]*remoting.Client{}}
}

// get returns a live connection to addr, dialling one if there is none.
func (p *nativeConns) get(ctx context.Context, addr string) (*remoting.Client, error) {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil, ErrClosed
	}
	c := p.conns[addr]
	p.mu.Unlock()
	if c != nil {
		select {
		case <-c.Done():
		default:
			return c, nil
		}
	}
	var sign func(*remoting.Command)
	if !p.creds.Empty() {
		creds := p.creds
		sign = func(cmd *remoting.Command) { cmd.ExtFields = creds.Sign(cmd.ExtFields, cmd.Body) }
	}
	var onReq func(*remoting.Command)
	if p.onRequest != nil {
		onReq = func(cmd *remoting.Command) { p.onRequest(addr, cmd) }
	}
	dctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	nc, err := remoting.DialWith(dctx, addr, onReq, sign)
	cancel()
	if err != nil {
		return nil, err
	}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		_ = nc.Close()
		return nil, ErrClosed
	}
	if cur := p.conns[addr]; cur != nil && cur != c {
		select {
		case <-cur.Done():
		default: // another caller dialled meanwhile: use theirs
			p.mu.Unlock()
			_ = nc.Close()
			return cur, nil
		}
	}
	p.conns[addr] = nc
	p.mu.Unlock()
	if c != nil {
		_ = c.Close()
	}
	if p.onDial != nil && !slices.Contains(p.nameServers, addr) {
		p.onDial(addr)
	}
	return nc, nil
}

// invoke sends req to addr and waits for the answer (any code) at most timeout.
func (p *nativeConns) invoke(ctx context.Context, addr string, req *remoting.Command, timeout time.Duration) (*remoting.Command, error) {
	c, err := p.get(ctx, addr)
	if err != nil {
		return nil, err
	}
	ictx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	resp, err := c.Invoke(ictx, req)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", addr, err)
	}
	return resp, nil
}

// call is invoke that turns a non-success answer into an error.
func (p *nativeConns) call(ctx context.Context, addr string, req *remoting.Command, timeout time.Duration) (*remoting.Command, error) {
	resp, err := p.invoke(ctx, addr, req, timeout)
	if err != nil {
		return nil, err
	}
	if resp.Code != remoting.Success {
		return resp, fmt.Errorf("%w: %s: code %d: %s", errBrokerAnswer, addr, resp.Code, resp.Remark)
	}
	return resp, nil
}

// invokeNS sends req to the name servers, starting with the one that answered last, until one answers.
func (p *nativeConns) invokeNS(ctx context.Context, req func() *remoting.Command) (*remoting.Command, error) {
	p.mu.Lock()
	start := p.nsNext
	p.mu.Unlock()
	var errs []error
	for i := range p.nameServers {
		n := (start + i) % len(p.nameServers)
		resp, err := p.invoke(ctx, p.nameServers[n], req(), 3*time.Second)
		if err == nil {
			p.mu.Lock()
			p.nsNext = n
			p.mu.Unlock()
			return resp, nil
		}
		errs = append(errs, err)
	}
	return nil, errors.Join(errs...)
}

func (p *nativeConns) close() {
	p.mu.Lock()
	p.closed = true
	conns := p.conns
	p.conns = map[string]*remoting.Client{}
	p.mu.Unlock()
	for _, c := range conns {
		_ = c.Close()
	}
}

// brokerAddrs lists the connected broker addresses (not name servers).
func (p *nativeConns) brokerAddrs() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []string
	for a := range p.conns {
		if !slices.Contains(p.nameServers, a) {
			out = append(out, a)
		}
	}
	return out
}

// nativeQueue is one message queue of a route: the broker's name and master address and the queue id.
type nativeQueue struct {
	topic  string
	broker string
	addr   string
	id     int32
}

func (q nativeQueue) key() queueKey { return queueKey{topic: q.topic, broker: q.broker, id: q.id} }

type queueKey struct {
	topic, broker string
	id            int32
}

// nativeRoute is a topic's route as the name server gave it: write queues (producers) and read queues (consumers)
// of every master broker, in broker-name then queue-id order (the order every client sorts them in, so that the
// members of a group agree on the allocation).
type nativeRoute struct {
	write, read []nativeQueue
	masters     []string
	at          time.Time
}

// errNoRoute: the name servers know no route for the topic.
var errNoRoute = errors.New("no route for topic")

// fetchRoute asks the name servers for topic's route.
func (p *nativeConns) fetchRoute(ctx context.Context, topic string) (*nativeRoute, error) {
	resp, err := p.invokeNS(ctx, func() *remoting.Command {
		return remoting.NewRequest(remoting.GetRouteInfoByTopic, map[string]string{"topic": topic}, nil)
	})
	if err != nil {
		return nil, fmt.Errorf("route of %s: %w", topic, err)
	}
	if resp.Code == remoting.TopicNotExist {
		return nil, fmt.Errorf("%w %s", errNoRoute, topic)
	}
	if resp.Code != remoting.Success {
		return nil, fmt.Errorf("route of %s: %w: code %d: %s", topic, errBrokerAnswer, resp.Code, resp.Remark)
	}
	return parseRoute(topic, resp.Body)
}

func parseRoute(topic string, body []byte) (*nativeRoute, error) {
	var rd struct {
		QueueDatas []struct {
			BrokerName     string `json:"brokerName"`
			ReadQueueNums  int    `json:"readQueueNums"`
			WriteQueueNums int    `json:"writeQueueNums"`
			Perm           int    `json:"perm"`
		} `json:"queueDatas"`
		BrokerDatas []struct {
			BrokerName  string            `json:"brokerName"`
			BrokerAddrs map[string]string `json:"brokerAddrs"`
		} `json:"brokerDatas"`
	}
	if err := json.Unmarshal(quoteNumericKeys(body), &rd); err != nil {
		return nil, fmt.Errorf("route of %s: %w", topic, err)
	}
	masters := map[string]string{}
	for _, bd := range rd.BrokerDatas {
		if a := bd.BrokerAddrs["0"]; a != "" {
			masters[bd.BrokerName] = a
		}
	}
	slices.SortFunc(rd.QueueDatas, func(a, b struct {
		BrokerName     string `json:"brokerName"`
		ReadQueueNums  int    `json:"readQueueNums"`
		WriteQueueNums int    `json:"writeQueueNums"`
		Perm           int    `json:"perm"`
	}) int {
		return strings.Compare(a.BrokerName, b.BrokerName)
	})
	r := &nativeRoute{at: time.Now()}
	for _, qd := range rd.QueueDatas {
		addr := masters[qd.BrokerName]
		if addr == "" {
			continue
		}
		r.masters = append(r.masters, addr)
		if qd.Perm&mqmeta.PermWrite != 0 {
			for i := range qd.WriteQueueNums {
				r.write = append(r.write, nativeQueue{topic: topic, broker: qd.BrokerName, addr: addr, id: int32(i)})
			}
		}
		if qd.Perm&mqmeta.PermRead != 0 {
			for i := range qd.ReadQueueNums {
				r.read = append(r.read, nativeQueue{topic: topic, broker: qd.BrokerName, addr: addr, id: int32(i)})
			}
		}
	}
	if len(r.masters) == 0 {
		return nil, fmt.Errorf("%w %s: no master broker listed", errNoRoute, topic)
	}
	return r, nil
}

// quoteNumericKeys turns fastjson's bare numeric object keys ({0:"a"}, Apache's name server) into JSON strings;
// b itself when it has none (tide's name server).
func quoteNumericKeys(b []byte) []byte {
	inStr := false
	for i := 0; i < len(b); i++ {
		ch := b[i]
		if inStr {
			if ch == '\\' {
				i++
			} else if ch == '"' {
				inStr = false
			}
			continue
		}
		if ch == '"' {
			inStr = true
			continue
		}
		if (ch == '{' || ch == ',') && i+1 < len(b) && b[i+1] >= '0' && b[i+1] <= '9' {
			return quoteNumericKeysSlow(b)
		}
	}
	return b
}

// quoteNumericKeysSlow rebuilds b with every bare numeric key quoted.
func quoteNumericKeysSlow(b []byte) []byte {
	out := make([]byte, 0, len(b)+16)
	inStr := false
	for i := 0; i < len(b); i++ {
		ch := b[i]
		out = append(out, ch)
		if inStr {
			if ch == '\\' && i+1 < len(b) {
				i++
				out = append(out, b[i])
			} else if ch == '"' {
				inStr = false
			}
			continue
		}
		if ch == '"' {
			inStr = true
			continue
		}
		if (ch == '{' || ch == ',') && i+1 < len(b) && b[i+1] >= '0' && b[i+1] <= '9' {
			j := i + 1
			for j < len(b) && b[j] >= '0' && b[j] <= '9' {
				j++
			}
			if j < len(b) && b[j] == ':' {
				out = append(out, '"')
				out = append(out, b[i+1:j]...)
				out = append(out, '"')
				i = j - 1
			}
		}
	}
	return out
}

// clientIP is the address clients put in their ids; tide runs brokers and clients on one machine.
const clientIP = "127.0.0.1"

// newClientID builds a client id in the clients' "IP@instance" form, unique per call within the process.
func newClientID(kind string) string {
	return clientIP + "@" + strconv.Itoa(os.Getpid()) + "#tide-" + kind + "-" + strconv.FormatInt(time.Now().UnixNano(), 36) +
		"-" + strconv.FormatUint(clientSeq.Add(1), 36)
}
