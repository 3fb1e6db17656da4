package broker

import (
	"encoding/json"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/tide-run/tide/mq/internal/sql92"
	"github.com/tide-run/tide/mq/message"
	"github.com/tide-run/tide/mq/mqmeta"
	"github.com/tide-run/tide/mq/remoting"
)

// subscription is a group's filter for one topic, from heartbeats.
type subscription struct {
	expr    string
	all     bool
	hashes  map[int64]bool
	version int64
	sql     *sql92.Expr // a compiled SQL92 selector (all is then true: tags do not filter)
	sqlErr  error       // a SQL92 selector that did not compile: pulls are refused
	// As the heartbeat said, for GET_CONSUMER_CONNECTION_LIST: the expression type and the tags.
	exprType string
	tags     []string
}

func (s *subscription) match(h int64) bool { return s.all || s.hashes[h] }

func parseSubscription(expr string, tags []string) *subscription {
	s := &subscription{expr: expr}
	if len(tags) == 0 {
		for _, t := range strings.Split(expr, "||") {
			if t = strings.TrimSpace(t); t != "" {
				tags = append(tags, t)
			}
		}
	}
	if strings.TrimSpace(expr) == "" || strings.TrimSpace(expr) == "*" || len(tags) == 0 {
		s.all = true
		return s
	}
	s.hashes = map[int64]bool{}
	for _, t := range tags {
		if t == "*" {
			s.all = true
		}
		// Hash the tag ourselves with Java's String.hashCode: the Go client's codeSet hashes UTF-8 bytes, which
		// differs from what the consume queue stores for non-ASCII tags.
		s.hashes[message.TagsHash(t)] = true
	}
	return s
}

type member struct {
	clientID string
	conn     *remoting.Conn
	lastSeen time.Time
	// The client's language and version, from its heartbeat's header (GET_CONSUMER_CONNECTION_LIST).
	language string
	version  int16
}

type group struct {
	name      string
	model     string // CLUSTERING or BROADCASTING
	fromWhere string
	// consumeType is CONSUME_PASSIVELY (push) or CONSUME_ACTIVELY (pull), as the heartbeat said.
	consumeType string
	members     map[string]*member
	subs        map[string]*subscription
}

// clientTable tracks connected clients and consumer groups.
type clientTable struct {
	b  *Broker
	mu sync.Mutex // guards groups and producers
	// groups by consumer group name.
	groups map[string]*group
	// producers: producer group -> client id -> member.
	producers map[string]map[string]*member
	// stats for tests and operators: group -> client id -> consumer-list calls.
	listCalls map[string]map[string]int
	// requesters: client id -> the connection its last request message came on (request/reply).
	requesters map[string]*remoting.Conn
}

func (t *clientTable) noteRequester(id string, c *remoting.Conn) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.requesters[id] = c
}

func newClientTable(b *Broker) *clientTable {
	return &clientTable{b: b, groups: map[string]*group{}, producers: map[string]map[string]*member{},
		listCalls: map[string]map[string]int{}, requesters: map[string]*remoting.Conn{}}
}

type heartbeatBody struct {
	ClientID        string `json:"clientID"`
	ProducerDataSet []struct {
		GroupName string `json:"groupName"`
	} `json:"producerDataSet"`
	ConsumerDataSet []struct {
		GroupName           string          `json:"groupName"`
		ConsumeType         json.RawMessage `json:"consumeType"`
		MessageModel        string          `json:"messageModel"`
		ConsumeFromWhere    json.RawMessage `json:"consumeFromWhere"`
		SubscriptionDataSet []struct {
			Topic          string   `json:"topic"`
			SubString      string   `json:"subString"`
			TagsSet        []string `json:"tagsSet"`
			SubVersion     int64    `json:"subVersion"`
			ExpressionType string   `json:"expressionType"`
		} `json:"subscriptionDataSet"`
	} `json:"consumerDataSet"`
}

func (b *Broker) handleHeartbeat(c *remoting.Conn, req *remoting.Command) *remoting.Command {
	var hb heartbeatBody
	if err := json.Unmarshal(req.Body, &hb); err != nil {
		return remoting.Errorf(req, remoting.SystemError, "heartbeat body: %v", err)
	}
	if hb.ClientID == "" {
		return remoting.Errorf(req, remoting.SystemError, "heartbeat body: clientID: missing")
	}
	now := b.clock.Now()
	var notify []string
	t := b.clients
	t.mu.Lock()
	for _, p := range hb.ProducerDataSet {
		m := t.producers[p.GroupName]
		if m == nil {
			m = map[string]*member{}
			t.producers[p.GroupName] = m
		}
		m[hb.ClientID] = &member{clientID: hb.ClientID, conn: c, lastSeen: now, language: req.Language, version: req.Version}
	}
	for _, cd := range hb.ConsumerDataSet {
		g := t.groups[cd.GroupName]
		if g == nil {
			g = &group{name: cd.GroupName, members: map[string]*member{}, subs: map[string]*subscription{}}
			t.groups[cd.GroupName] = g
		}
		g.model = strings.ToUpper(cd.MessageModel)
		g.fromWhere = strings.Trim(string(cd.ConsumeFromWhere), `"`)
		g.consumeType = strings.Trim(string(cd.ConsumeType), `"`)
		if m, ok := g.members[hb.ClientID]; ok && m.conn == c {
			m.lastSeen = now
		} else {
			g.members[hb.ClientID] = &member{clientID: hb.ClientID, conn: c, lastSeen: now, language: req.Language, version: req.Version}
			notify = append(notify, g.name)
			delete(t.listCalls, g.name)
		}
		for _, sd := range cd.SubscriptionDataSet {
			old := g.subs[sd.Topic]
			if old == nil || old.version <= sd.SubVersion || old.expr != sd.SubString {
				s := parseSubscription(sd.SubString, sd.TagsSet)
				if sd.ExpressionType != "" && !strings.EqualFold(sd.ExpressionType, "TAG") {
					s = exprSubscription(sd.ExpressionType, sd.SubString, old)
				}
				s.version = sd.SubVersion
				s.exprType, s.tags = sd.ExpressionType, sd.TagsSet
				if s.exprType == "" {
					s.exprType = "TAG"
				}
				g.subs[sd.Topic] = s
			}
		}
	}
	t.mu.Unlock()
	for _, cd := range hb.ConsumerDataSet {
		if _, err := b.cfg.ensureGroup(cd.GroupName); err != nil {
			b.log.Error("saving group config failed", "group", cd.GroupName, "err", err)
		}
		if !strings.EqualFold(cd.MessageModel, "BROADCASTING") {
			b.Topic(mqmeta.RetryPrefix + cd.GroupName)
		}
	}
	for _, g := range notify {
		b.clients.notify(g)
	}
	resp := remoting.NewResponse(req, remoting.Success, "")
	return resp
}

func (b *Broker) handleUnregister(c *remoting.Conn, req *remoting.Command) *remoting.Command {
	f := req.ReadFields()
	id := f.String("clientID")
	pg := f.OptString("producerGroup")
	cg := f.OptString("consumerGroup")
	if f.Err != nil {
		return remoting.Errorf(req, remoting.SystemError, "%v", f.Err)
	}
	t := b.clients
	t.mu.Lock()
	if m := t.producers[pg]; m != nil {
		delete(m, id)
	}
	changed := false
	if g := t.groups[cg]; g != nil {
		if _, ok := g.members[id]; ok {
			delete(g.members, id)
			delete(t.listCalls, cg)
			changed = true
		}
	}
	t.mu.Unlock()
	if changed {
		b.locks.releaseClient(cg, id)
		t.notify(cg)
	}
	return remoting.NewResponse(req, remoting.Success, "")
}

// connClosed forgets every client that used c.
func (t *clientTable) connClosed(c *remoting.Conn) {
	var changed []string
	type gone struct{ group, id string }
	var left []gone
	t.mu.Lock()
	for id, rc := range t.requesters {
		if rc == c {
			delete(t.requesters, id)
		}
	}
	for _, m := range t.producers {
		for id, p := range m {
			if p.conn == c {
				delete(m, id)
			}
		}
	}
	for name, g := range t.groups {
		for id, m := range g.members {
			if m.conn == c {
				delete(g.members, id)
				delete(t.listCalls, name)
				changed = append(changed, name)
				left = append(left, gone{name, id})
			}
		}
	}
	t.mu.Unlock()
	for _, l := range left {
		t.b.locks.releaseClient(l.group, l.id)
	}
	for _, g := range changed {
		t.notify(g)
	}
}

// ConnClosed is the remoting server's OnClose hook.
func (b *Broker) ConnClosed(c *remoting.Conn) { b.clients.connClosed(c) }

func (t *clientTable) expire(now time.Time) {
	var changed []string
	t.mu.Lock()
	for _, m := range t.producers {
		for id, p := range m {
			if now.Sub(p.lastSeen) > t.b.opts.ClientExpiry {
				delete(m, id)
			}
		}
	}
	for name, g := range t.groups {
		for id, m := range g.members {
			if now.Sub(m.lastSeen) > t.b.opts.ClientExpiry || m.conn.Closed() {
				delete(g.members, id)
				delete(t.listCalls, name)
				changed = append(changed, name)
			}
		}
	}
	t.mu.Unlock()
	for _, g := range changed {
		t.notify(g)
	}
}

// notify sends NOTIFY_CONSUMER_IDS_CHANGED to the group's members so they rebalance now instead of within 20 s.
func (t *clientTable) notify(groupName string) {
	t.mu.Lock()
	g := t.groups[groupName]
	var conns []*remoting.Conn
	if g != nil {
		seen := map[*remoting.Conn]bool{}
		for _, m := range g.members {
			if !seen[m.conn] {
				seen[m.conn] = true
				conns = append(conns, m.conn)
			}
		}
	}
	t.mu.Unlock()
	for _, c := range conns {
		// A slow client must not hold the caller: each notification is written on its own goroutine.
		go func(c *remoting.Conn) {
			_ = c.Send(remoting.NewRequest(remoting.NotifyConsumerIdsChanged, map[string]string{"consumerGroup": groupName}, nil))
		}(c)
	}
}

// connOf finds a client's connection by client id (producers first: a requester waits for its reply as one).
func (t *clientTable) connOf(clientID string) *remoting.Conn {
	t.mu.Lock()
	defer t.mu.Unlock()
	if c := t.requesters[clientID]; c != nil && !c.Closed() {
		return c
	}
	for _, m := range t.producers {
		if p := m[clientID]; p != nil && !p.conn.Closed() {
			return p.conn
		}
	}
	for _, g := range t.groups {
		if p := g.members[clientID]; p != nil && !p.conn.Closed() {
			return p.conn
		}
	}
	return nil
}

func (t *clientTable) producerConns(group string) []*remoting.Conn {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []*remoting.Conn
	for _, p := range t.producers[group] {
		if !p.conn.Closed() {
			out = append(out, p.conn)
		}
	}
	return out
}

func (t *clientTable) groupConns(groupName string) []*remoting.Conn {
	t.mu.Lock()
	defer t.mu.Unlock()
	g := t.groups[groupName]
	if g == nil {
		return nil
	}
	seen := map[*remoting.Conn]bool{}
	var out []*remoting.Conn
	for _, m := range g.members {
		if !seen[m.conn] {
			seen[m.conn] = true
			out = append(out, m.conn)
		}
	}
	return out
}

func (t *clientTable) consumerIDs(groupName string) []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	g := t.groups[groupName]
	if g == nil {
		return nil
	}
	ids := make([]string, 0, len(g.members))
	for id := range g.members {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

func (t *clientTable) subscription(groupName, topic string) *subscription {
	t.mu.Lock()
	defer t.mu.Unlock()
	if g := t.groups[groupName]; g != nil {
		return g.subs[topic]
	}
	return nil
}

func (t *clientTable) countListCall(groupName string, c *remoting.Conn) {
	t.mu.Lock()
	defer t.mu.Unlock()
	g := t.groups[groupName]
	if g == nil {
		return
	}
	for id, m := range g.members {
		if m.conn == c {
			calls := t.listCalls[groupName]
			if calls == nil {
				calls = map[string]int{}
				t.listCalls[groupName] = calls
			}
			calls[id]++
		}
	}
}

func (b *Broker) handleConsumerList(c *remoting.Conn, req *remoting.Command) *remoting.Command {
	f := req.ReadFields()
	g := f.String("consumerGroup")
	if f.Err != nil {
		return remoting.Errorf(req, remoting.SystemError, "%v", f.Err)
	}
	b.clients.countListCall(g, c)
	ids := b.allConsumerIDs(g)
	if ids == nil {
		ids = []string{}
	}
	body, _ := json.Marshal(map[string][]string{"consumerIdList": ids})
	resp := remoting.NewResponse(req, remoting.Success, "")
	resp.Body = body
	return resp
}

// ConsumerIDs lists a group's connected client ids (sorted; 4.x and 5.x clients), for operators and tests.
func (b *Broker) ConsumerIDs(group string) []string { return b.allConsumerIDs(group) }

// GroupInfo describes a connected consumer group.
type GroupInfo struct {
	Name          string            `json:"name"`
	MessageModel  string            `json:"messageModel"`
	FromWhere     string            `json:"consumeFromWhere"`
	Clients       []string          `json:"clients"`
	Subscriptions map[string]string `json:"subscriptions"`
}

// Groups describes the connected consumer groups.
func (b *Broker) Groups() []GroupInfo {
	t := b.clients
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []GroupInfo
	for _, g := range t.groups {
		gi := GroupInfo{Name: g.name, MessageModel: g.model, FromWhere: g.fromWhere, Subscriptions: map[string]string{}}
		for id := range g.members {
			gi.Clients = append(gi.Clients, id)
		}
		sort.Strings(gi.Clients)
		for topic, s := range g.subs {
			gi.Subscriptions[topic] = s.expr
		}
		out = append(out, gi)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// ConsumerListCalls reports how many GET_CONSUMER_LIST_BY_GROUP requests each member of group has made since the
// group's membership last changed (clients call it at every rebalance, once per subscribed topic), so tests can
// tell when a group has settled.
func (b *Broker) ConsumerListCalls(group string) map[string]int {
	t := b.clients
	t.mu.Lock()
	defer t.mu.Unlock()
	out := map[string]int{}
	for id, n := range t.listCalls[group] {
		out[id] = n
	}
	return out
}

func (t *clientTable) idsOnConn(c *remoting.Conn) []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	var ids []string
	seen := map[string]bool{}
	for _, g := range t.groups {
		for id, m := range g.members {
			if m.conn == c && !seen[id] {
				seen[id] = true
				ids = append(ids, id)
			}
		}
	}
	sort.Strings(ids)
	return ids
}
