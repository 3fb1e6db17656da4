package cli

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2"
	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/apache/rocketmq-client-go/v2/producer"
	"github.com/apache/rocketmq-client-go/v2/rlog"

	"github.com/tide-run/tide/mq"
	"github.com/tide-run/tide/mq/admin"
	"github.com/tide-run/tide/mq/mqtest"
	"github.com/tide-run/tide/mq/remoting"
)

// startMQ runs an embedded broker on ephemeral ports for the `tide mq` commands.
// startNoopConsumer runs an official push consumer of group on topic that accepts every message; it stops with the
// test.
func startNoopConsumer(t *testing.T, srv *mq.Server, group, topic string) {
	t.Helper()
	pc, err := rocketmq.NewPushConsumer(consumer.WithNameServer([]string{srv.NameServerAddr()}), consumer.WithGroupName(group),
		consumer.WithInstance("mqcli-"+group))
	if err != nil {
		t.Fatal(err)
	}
	if err := pc.Subscribe(topic, consumer.MessageSelector{}, func(context.Context, ...*primitive.MessageExt) (consumer.ConsumeResult, error) {
		return consumer.ConsumeSuccess, nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := pc.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pc.Shutdown() })
}

func startMQ(t *testing.T) *mq.Server {
	t.Helper()
	return mqtest.RunServer(t, mq.Options{})
}

type mqRun struct {
	code        int
	out, errOut string
}

// runMQ runs `tide mq ARGS --namesrv ADDR` in-process.
func runMQ(t *testing.T, srv *mq.Server, stdin string, args ...string) mqRun {
	t.Helper()
	var out, errOut bytes.Buffer
	full := append([]string{"mq"}, args...)
	if srv != nil {
		full = append(full, "--namesrv", srv.NameServerAddr())
	}
	code := Main(full, strings.NewReader(stdin), &out, &errOut)
	return mqRun{code, out.String(), errOut.String()}
}

func mustMQ(t *testing.T, srv *mq.Server, stdin string, args ...string) string {
	t.Helper()
	r := runMQ(t, srv, stdin, args...)
	if r.code != 0 {
		t.Fatalf("tide mq %v: exit %d\nstdout: %s\nstderr: %s", args, r.code, r.out, r.errOut)
	}
	return r.out
}

// rows parses a kubectl-style table into maps keyed by column header (headers may contain single spaces).
func rows(t *testing.T, table string) []map[string]string {
	t.Helper()
	lines := strings.Split(strings.TrimRight(table, "\n"), "\n")
	var header []string
	var out []map[string]string
	for _, l := range lines {
		cells := strings.FieldsFunc(strings.ReplaceAll(l, "   ", "\x00"), func(r rune) bool { return r == '\x00' })
		for i := range cells {
			cells[i] = strings.TrimSpace(cells[i])
		}
		if header == nil {
			if strings.ToUpper(l) == l && len(cells) > 1 {
				header = cells
			}
			continue
		}
		if len(cells) != len(header) {
			continue
		}
		r := map[string]string{}
		for i, h := range header {
			r[h] = cells[i]
		}
		out = append(out, r)
	}
	return out
}

func jsonLines(t *testing.T, s string) []jsonMessage {
	t.Helper()
	var out []jsonMessage
	sc := bufio.NewScanner(strings.NewReader(s))
	for sc.Scan() {
		var m jsonMessage
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("json line %q: %v", sc.Text(), err)
		}
		out = append(out, m)
	}
	return out
}

func TestMQTopicCommands(t *testing.T) {
	srv := startMQ(t)
	if out := mustMQ(t, srv, "", "topic", "create", "orders", "--queues", "3"); !strings.Contains(out, "topic/orders created (3 queues)") {
		t.Fatalf("create: %q", out)
	}
	list := rows(t, mustMQ(t, srv, "", "topic", "list"))
	i := slices.IndexFunc(list, func(r map[string]string) bool { return r["NAME"] == "orders" })
	if i < 0 || list[i]["WRITE QUEUES"] != "3" || list[i]["PERM"] != "RW" || list[i]["MESSAGES"] != "0" {
		t.Fatalf("list: %v", list)
	}
	if slices.ContainsFunc(list, func(r map[string]string) bool { return r["NAME"] == "TBW102" }) {
		t.Fatal("system topic listed without --all")
	}
	if all := rows(t, mustMQ(t, srv, "", "topic", "list", "--all")); !slices.ContainsFunc(all, func(r map[string]string) bool { return r["NAME"] == "TBW102" }) {
		t.Fatalf("--all: %v", all)
	}
	for _, bad := range [][]string{{"topic", "create", "bad topic!"}, {"topic", "create", "ok", "--queues", "0"}, {"topic", "create"}} {
		if r := runMQ(t, srv, "", bad...); r.code != 2 || !strings.HasPrefix(r.errOut, "error: ") {
			t.Fatalf("%v: exit %d %q", bad, r.code, r.errOut)
		}
	}
	if out := mustMQ(t, srv, "", "topic", "delete", "orders"); !strings.Contains(out, "topic/orders deleted") {
		t.Fatalf("delete: %q", out)
	}
	if r := runMQ(t, srv, "", "topic", "delete", "orders"); r.code != 1 || !strings.Contains(r.errOut, `topic "orders" not found`) {
		t.Fatalf("delete missing: exit %d %q", r.code, r.errOut)
	}
	if list := mustMQ(t, srv, "", "topic", "list"); strings.Contains(list, "orders") {
		t.Fatalf("deleted topic listed: %q", list)
	}
}

func TestMQUnreachableAndBadAddress(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	var out, errOut bytes.Buffer
	code := Main([]string{"mq", "topic", "list", "--namesrv", addr}, strings.NewReader(""), &out, &errOut)
	if code != 1 || !strings.Contains(errOut.String(), addr) || !strings.Contains(errOut.String(), "tide broker") {
		t.Fatalf("unreachable: exit %d %q", code, errOut.String())
	}
	t.Setenv(NameSrvEnv, "localhost:9876")
	errOut.Reset()
	code = Main([]string{"mq", "topic", "list"}, strings.NewReader(""), &out, &errOut)
	if code != 2 || !strings.Contains(errOut.String(), "literal IP") {
		t.Fatalf("hostname: exit %d %q", code, errOut.String())
	}
}

func TestMQUnknownSubcommand(t *testing.T) {
	for _, args := range [][]string{{"mq", "foo"}, {"mq", "topic", "foo"}} {
		var out, errOut bytes.Buffer
		if code := Main(args, strings.NewReader(""), &out, &errOut); code != 2 || !strings.Contains(errOut.String(), "unknown command") {
			t.Errorf("%v: exit %d %q", args, code, errOut.String())
		}
	}
	var out, errOut bytes.Buffer
	if code := Main([]string{"mq"}, strings.NewReader(""), &out, &errOut); code != 0 || !strings.Contains(out.String(), "Available Commands") {
		t.Errorf("mq: exit %d %q", code, out.String())
	}
}

func TestMQHelpHasExamples(t *testing.T) {
	for _, c := range [][]string{{"mq"}, {"mq", "topic"}, {"mq", "topic", "list"}, {"mq", "topic", "create"}, {"mq", "topic", "delete"},
		{"mq", "send"}, {"mq", "consume"}, {"mq", "groups"}, {"mq", "reset-offset"}, {"mq", "dlq"}, {"mq", "dlq", "replay"}} {
		var out, errOut bytes.Buffer
		if code := Main(append(c, "--help"), strings.NewReader(""), &out, &errOut); code != 0 || !strings.Contains(out.String(), "Examples:") {
			t.Errorf("%v --help: exit %d, examples missing in %q", c, code, out.String())
		}
	}
}

func TestMQSendConsumeGroups(t *testing.T) {
	srv := startMQ(t)
	mustMQ(t, srv, "", "topic", "create", "greet", "--queues", "2")
	sent := rows(t, mustMQ(t, srv, "", "send", "greet", "hello", "--tag", "a", "--keys", "k1,k2", "--property", "src=cli"))
	if len(sent) != 1 || len(sent[0]["MSGID"]) != 32 || sent[0]["TOPIC"] != "greet" || sent[0]["OFFSET"] != "0" {
		t.Fatalf("send: %v", sent)
	}
	mustMQ(t, srv, "from stdin\n", "send", "greet", "--tag", "b")
	mustMQ(t, srv, "dash", "send", "greet", "-", "--tag", "a")
	for _, bad := range [][]string{{"send", "greet", "x", "--property", "novalue"}, {"send", "greet", "x", "--property", "TAGS=z"},
		{"send", "greet", "x", "--tag", "a||b"}, {"send"}} {
		if r := runMQ(t, srv, "", bad...); r.code != 2 {
			t.Fatalf("%v: exit %d %q", bad, r.code, r.errOut)
		}
	}

	// Tag filter first, without committing: only the two "a" messages.
	got := jsonLines(t, mustMQ(t, srv, "", "consume", "greet", "--group", "g1", "--from", "first", "--tag", "a", "-o", "json",
		"--timeout", "200ms", "--no-commit"))
	if len(got) != 2 || got[0].Tags != "a" || got[1].Tags != "a" {
		t.Fatalf("tag filter: %+v", got)
	}
	// Everything, committed.
	got = jsonLines(t, mustMQ(t, srv, "", "consume", "greet", "--group", "g1", "--from", "first", "-o", "json", "--timeout", "200ms"))
	bodies := map[string]jsonMessage{}
	for _, m := range got {
		bodies[*m.Body] = m
	}
	if len(got) != 3 || bodies["hello"].Keys != "k1 k2" || bodies["hello"].Properties["src"] != "cli" ||
		bodies["hello"].MsgID != sent[0]["MSGID"] || bodies["from stdin\n"].Tags != "b" || bodies["dash"].Tags != "a" {
		t.Fatalf("consume: %+v", got)
	}
	g := rows(t, mustMQ(t, srv, "", "groups", "g1"))
	if len(g) != 2 || g[0]["LAG"] != "0" || g[1]["LAG"] != "0" {
		t.Fatalf("groups g1 after consume: %v", g)
	}
	// Committed: a second run sees nothing new; then one new message, read with --max.
	if out := mustMQ(t, srv, "", "consume", "greet", "--group", "g1", "-o", "body", "--timeout", "200ms"); out != "" {
		t.Fatalf("re-consume: %q", out)
	}
	mustMQ(t, srv, "", "send", "greet", "one")
	mustMQ(t, srv, "", "send", "greet", "two")
	list := rows(t, mustMQ(t, srv, "", "groups"))
	i := slices.IndexFunc(list, func(r map[string]string) bool { return r["GROUP"] == "g1" })
	if i < 0 || list[i]["LAG"] != "2" || list[i]["TOPICS"] != "greet" {
		t.Fatalf("groups: %v", list)
	}
	if out := mustMQ(t, srv, "", "consume", "greet", "--group", "g1", "-o", "body", "--max", "1"); out != "one\n" && out != "two\n" {
		t.Fatalf("--max 1: %q", out)
	}
	tbl := mustMQ(t, srv, "", "consume", "greet", "--group", "g1", "--timeout", "200ms")
	if r := rows(t, tbl); len(r) != 1 || (r[0]["BODY"] != "one" && r[0]["BODY"] != "two") {
		t.Fatalf("table consume: %q", tbl)
	}
	// A new group starting from last sees only what comes after.
	if out := mustMQ(t, srv, "", "consume", "greet", "--group", "g2", "--from", "last", "-o", "body", "--timeout", "100ms"); out != "" {
		t.Fatalf("--from last: %q", out)
	}
	mustMQ(t, srv, "", "send", "greet", "after")
	if out := mustMQ(t, srv, "", "consume", "greet", "--group", "g2", "-o", "body", "--timeout", "200ms"); out != "after\n" {
		t.Fatalf("g2 after: %q", out)
	}
	var js []groupRow
	if err := json.Unmarshal([]byte(mustMQ(t, srv, "", "groups", "-o", "json")), &js); err != nil || len(js) != 2 || js[0].Group != "g1" {
		t.Fatalf("groups -o json: %+v %v", js, err)
	}
	var tl []map[string]any
	if err := json.Unmarshal([]byte(mustMQ(t, srv, "", "topic", "list", "-o", "json")), &tl); err != nil || len(tl) != 1 || tl[0]["messages"] != float64(6) {
		t.Fatalf("topic list -o json: %v %v", tl, err)
	}
	if r := runMQ(t, srv, "", "groups", "-o", "yaml"); r.code != 2 {
		t.Fatalf("-o yaml: exit %d", r.code)
	}
	if r := runMQ(t, srv, "", "groups", "nobody"); r.code != 1 || !strings.Contains(r.errOut, "not found") {
		t.Fatalf("unknown group: exit %d %q", r.code, r.errOut)
	}
	for _, bad := range [][]string{{"consume", "greet"}, {"consume", "greet", "--group", "g", "--from", "middle"}, {"consume", "greet", "--group", "g", "--tag", "a*"}} {
		if r := runMQ(t, srv, "", bad...); r.code != 2 {
			t.Fatalf("%v: exit %d %q", bad, r.code, r.errOut)
		}
	}
	if r := runMQ(t, srv, "", "consume", "missing", "--group", "g"); r.code != 1 || !strings.Contains(r.errOut, `topic "missing" not found`) {
		t.Fatalf("missing topic: exit %d %q", r.code, r.errOut)
	}
}

// TestMQConsumeOfficialProducer: messages produced by the official client are read exactly once by `tide mq
// consume`, and reset-offset backtracks by time.
func TestMQConsumeOfficialProducer(t *testing.T) {
	rlog.SetLogLevel("error")
	srv := startMQ(t)
	mustMQ(t, srv, "", "topic", "create", "official", "--queues", "4")
	p, err := rocketmq.NewProducer(producer.WithNameServer([]string{srv.NameServerAddr()}), producer.WithInstanceName("mqcli-"+t.Name()))
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	defer p.Shutdown()
	const n = 200
	ids := map[string]bool{}
	var mid time.Time
	for i := 0; i < n; i++ {
		if i == n/2 {
			// Store timestamps have millisecond resolution: make the halves distinguishable.
			for start := time.Now(); time.Since(start) < 20*time.Millisecond; {
				time.Sleep(time.Millisecond)
			}
			mid = time.Now()
		}
		m := primitive.NewMessage("official", []byte(strconv.Itoa(i)))
		m.WithTag("t")
		r, err := p.SendSync(context.Background(), m)
		if err != nil {
			t.Fatal(err)
		}
		ids[r.MsgID] = true
	}
	got := jsonLines(t, mustMQ(t, srv, "", "consume", "official", "--group", "cg", "--from", "first", "-o", "json", "--timeout", "300ms"))
	seen := map[string]bool{}
	for _, m := range got {
		if !ids[m.MsgID] || seen[m.MsgID] {
			t.Fatalf("unexpected or duplicate message %+v", m)
		}
		seen[m.MsgID] = true
	}
	if len(seen) != n {
		t.Fatalf("consumed %d of %d", len(seen), n)
	}
	// Reset to the middle: the second half again.
	if r := runMQ(t, srv, "", "reset-offset", "--group", "cg", "--topic", "official", "--to", "yesterday"); r.code != 2 {
		t.Fatalf("bad --to: exit %d %q", r.code, r.errOut)
	}
	reset := rows(t, mustMQ(t, srv, "", "reset-offset", "--group", "cg", "--topic", "official", "--to", mid.UTC().Format(time.RFC3339Nano)))
	var lag int
	for _, r := range reset {
		l, _ := strconv.Atoi(r["LAG"])
		lag += l
	}
	if len(reset) != 4 || lag != n/2 {
		t.Fatalf("reset to %v: lag %d, %v", mid, lag, reset)
	}
	again := strings.Fields(mustMQ(t, srv, "", "consume", "official", "--group", "cg", "-o", "body", "--timeout", "300ms"))
	for _, b := range again {
		if i, _ := strconv.Atoi(b); i < n/2 {
			t.Fatalf("message %d from before the reset point", i)
		}
	}
	if len(again) != n/2 {
		t.Fatalf("after reset: %d messages, want %d", len(again), n/2)
	}
	mustMQ(t, srv, "", "reset-offset", "--group", "cg", "--topic", "official", "--to", "first")

	// A running push consumer is listed with its group.
	startNoopConsumer(t, srv, "live", "official")
	for deadline := time.Now().Add(20 * time.Second); ; {
		var d groupDetail
		if r := runMQ(t, srv, "", "groups", "live", "-o", "json"); r.code == 0 && json.Unmarshal([]byte(r.out), &d) == nil && len(d.Consumers) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the running push consumer is not listed in `groups live`")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if g := rows(t, mustMQ(t, srv, "", "groups", "cg")); len(g) != 4 {
		t.Fatalf("groups cg: %v", g)
	}
	if out := mustMQ(t, srv, "", "groups", "cg"); !strings.Contains(out, "Total lag: "+strconv.Itoa(n)) {
		t.Fatalf("lag after reset to first: %q", out)
	}
}

// deadLetter sends a stored message to the group's DLQ over the protocol (CONSUMER_SEND_MSG_BACK with delay level
// -1, what a client does for a message that must not be retried).
func deadLetterMsg(t *testing.T, srv *mq.Server, group, offsetMsgID, uniq string) {
	t.Helper()
	c, err := remoting.Dial(context.Background(), srv.BrokerAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	off, err := strconv.ParseInt(offsetMsgID[16:], 16, 64)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.Invoke(context.Background(), remoting.NewRequest(remoting.ConsumerSendMsgBack, map[string]string{
		"group": group, "offset": strconv.FormatInt(off, 10), "delayLevel": "-1", "originMsgId": uniq, "originTopic": "work"}, nil))
	if err != nil || resp.Code != remoting.Success {
		t.Fatalf("send back: %v %+v", err, resp)
	}
}

func TestMQDeadLetters(t *testing.T) {
	srv := startMQ(t)
	mustMQ(t, srv, "", "topic", "create", "work", "--queues", "1")
	if r := runMQ(t, srv, "", "dlq", "--group", "wg"); r.code != 0 || !strings.Contains(r.errOut, "No dead letters") {
		t.Fatalf("empty dlq: exit %d %q", r.code, r.errOut)
	}
	var sent []map[string]string
	for _, b := range []string{"d1", "d2", "ok"} {
		sent = append(sent, rows(t, mustMQ(t, srv, "", "send", "work", b, "--tag", "job", "--keys", "key-"+b, "--property", "tenant=x"))[0])
	}
	deadLetterMsg(t, srv, "wg", sent[0]["OFFSETMSGID"], sent[0]["MSGID"])
	deadLetterMsg(t, srv, "wg", sent[1]["OFFSETMSGID"], sent[1]["MSGID"])
	list := rows(t, mustMQ(t, srv, "", "dlq", "--group", "wg"))
	if len(list) != 2 || list[0]["MSGID"] != sent[0]["MSGID"] || list[0]["ORIGIN TOPIC"] != "work" || list[0]["REPLAYED"] != "-" || list[0]["BODY"] != "d1" {
		t.Fatalf("dlq list: %v", list)
	}
	if r := runMQ(t, srv, "", "dlq", "replay", "--group", "wg", "--msg-id", "0000"); r.code != 1 || !strings.Contains(r.errOut, "no dead letter") {
		t.Fatalf("unknown id: exit %d %q", r.code, r.errOut)
	}
	// Consume the topic first so only replays show up afterwards.
	mustMQ(t, srv, "", "consume", "work", "--group", "reader", "--from", "first", "--timeout", "100ms")
	one := rows(t, mustMQ(t, srv, "", "dlq", "replay", "--group", "wg", "--msg-id", sent[1]["MSGID"]))
	if len(one) != 1 || !strings.HasPrefix(one[0]["RESULT"], "replayed") {
		t.Fatalf("replay one: %v", one)
	}
	all := rows(t, mustMQ(t, srv, "", "dlq", "replay", "--group", "wg"))
	if len(all) != 2 || !strings.HasPrefix(all[0]["RESULT"], "replayed") || !strings.HasPrefix(all[1]["RESULT"], "skipped") {
		t.Fatalf("replay all: %v", all)
	}
	again := rows(t, mustMQ(t, srv, "", "dlq", "replay", "--group", "wg"))
	if len(again) != 2 || !strings.HasPrefix(again[0]["RESULT"], "skipped") || !strings.HasPrefix(again[1]["RESULT"], "skipped") {
		t.Fatalf("replay again: %v", again)
	}
	got := jsonLines(t, mustMQ(t, srv, "", "consume", "work", "--group", "reader", "-o", "json", "--timeout", "200ms"))
	if len(got) != 2 {
		t.Fatalf("replayed messages: %+v", got)
	}
	for _, m := range got {
		want := map[string]string{"d1": sent[0]["MSGID"], "d2": sent[1]["MSGID"]}[*m.Body]
		if m.MsgID != want || m.Tags != "job" || m.Keys != "key-"+*m.Body || m.Properties["tenant"] != "x" || m.Properties[admin.PropReplayOf] == "" {
			t.Fatalf("replayed message %+v", m)
		}
	}
	if list := rows(t, mustMQ(t, srv, "", "dlq", "--group", "wg")); list[0]["REPLAYED"] == "-" || list[1]["REPLAYED"] == "-" {
		t.Fatalf("dlq list after replay: %v", list)
	}
	if r := runMQ(t, srv, "", "dlq"); r.code != 2 {
		t.Fatalf("dlq without group: exit %d", r.code)
	}
}

// TestMQReplayRealDeadLetters: an official push consumer fails a message until the broker dead-letters it (retry
// topic, delay levels shortened), `tide mq dlq replay` sends it back, and the same consumer group then processes it.
func TestMQReplayRealDeadLetters(t *testing.T) {
	rlog.SetLogLevel("error")
	srv := mqtest.RunServer(t, mq.Options{DelayLevels: mqtest.DelayLevels(50 * time.Millisecond)})
	mustMQ(t, srv, "", "topic", "create", "jobs", "--queues", "2")
	var failing atomic.Bool
	failing.Store(true)
	var mu sync.Mutex
	var okBodies []string
	var replayOf []string
	c, err := rocketmq.NewPushConsumer(consumer.WithNameServer([]string{srv.NameServerAddr()}), consumer.WithGroupName("flaky"),
		consumer.WithInstance("mqcli-flaky"), consumer.WithConsumeFromWhere(consumer.ConsumeFromFirstOffset), consumer.WithMaxReconsumeTimes(1))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Subscribe("jobs", consumer.MessageSelector{}, func(_ context.Context, msgs ...*primitive.MessageExt) (consumer.ConsumeResult, error) {
		for _, m := range msgs {
			if string(m.Body) == "bad" && failing.Load() {
				return consumer.ConsumeRetryLater, nil
			}
		}
		mu.Lock()
		for _, m := range msgs {
			okBodies = append(okBodies, string(m.Body))
			if v := m.GetProperty(admin.PropReplayOf); v != "" {
				replayOf = append(replayOf, v)
			}
		}
		mu.Unlock()
		return consumer.ConsumeSuccess, nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	defer c.Shutdown()
	bad := rows(t, mustMQ(t, srv, "", "send", "jobs", "bad", "--tag", "t1", "--keys", "job-1"))[0]
	mustMQ(t, srv, "", "send", "jobs", "good")
	var list []map[string]string
	for deadline := time.Now().Add(30 * time.Second); ; {
		list = rows(t, mustMQ(t, srv, "", "dlq", "--group", "flaky"))
		if len(list) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no dead letter after 30s: %v", list)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if list[0]["MSGID"] != bad["MSGID"] || list[0]["ORIGIN TOPIC"] != "jobs" || list[0]["BODY"] != "bad" {
		t.Fatalf("dead letter %v, sent %v", list[0], bad)
	}
	failing.Store(false)
	if r := rows(t, mustMQ(t, srv, "", "dlq", "replay", "--group", "flaky")); len(r) != 1 || !strings.HasPrefix(r[0]["RESULT"], "replayed") {
		t.Fatalf("replay: %v", r)
	}
	for deadline := time.Now().Add(30 * time.Second); ; {
		mu.Lock()
		n := len(replayOf)
		got := slices.Clone(okBodies)
		mu.Unlock()
		if n == 1 {
			if slices.Index(got, "bad") < 0 || slices.Index(got, "good") < 0 {
				t.Fatalf("consumed %v", got)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("replayed message not consumed: %v", got)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if r := rows(t, mustMQ(t, srv, "", "dlq", "replay", "--group", "flaky")); len(r) != 1 || !strings.HasPrefix(r[0]["RESULT"], "skipped") {
		t.Fatalf("second replay: %v", r)
	}
}
