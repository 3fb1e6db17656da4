package interop_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"

	"github.com/tide-run/tide/internal/apachetest"
	tideadmin "github.com/tide-run/tide/mq/admin"
	"github.com/tide-run/tide/mq/mqmeta"
)

// scenario5 is one RocketMQ 5 scenario of java/Scenarios5.java (Apache's official Java 5.x client, gRPC): what the
// Go test prepares for it (topic type and queues, a group's settings) and the outcome Apache gives.
type scenario5 struct {
	name   string
	want   string
	typ    string // the topic's message.type
	queues int
	group  *mqmeta.GroupConfig // the settings of group g-<topic> (nil: Apache's defaults)
}

// The outcomes are Apache 5.5.0's with rocketmq-client-java 5.0.8; tide must give the same.
var scenarios5 = []scenario5{
	{name: "5x sync send", typ: mqmeta.MessageTypeNormal, queues: 4, want: "20 sent, 20 received"},
	{name: "5x async send", typ: mqmeta.MessageTypeNormal, queues: 4, want: "20 acknowledged, 20 received"},
	// Apache's proxy refuses a delivery time more than a day ahead (maxDelayTimeMills), before its broker's 3-day
	// timer limit; the client itself refuses a delayed message for a NORMAL topic (the route's accepted types).
	{name: "5x delivery timestamp", typ: mqmeta.MessageTypeDelay, queues: 1,
		want: "beyond a day: refused (code 40012); delayed on a NORMAL topic: refused; 2 received, 0 before its time, delivery timestamps intact"},
	{name: "5x fifo across redelivery", typ: mqmeta.MessageTypeFIFO, queues: 2,
		group: &mqmeta.GroupConfig{ConsumeMessageOrderly: true, RetryMaxTimes: 16},
		want:  "a1 redelivered, message group present, consumed {a=[a0, a1, a2, a3], b=[b0, b1, b2, b3]}"},
	{name: "5x transaction", typ: mqmeta.MessageTypeTransaction, queues: 1,
		want: "received [checked-commit, commit], checked back [checked-commit, checked-rollback]"},
	{name: "5x invisible time", typ: mqmeta.MessageTypeNormal, queues: 1,
		want: "attempts 1 then 2, same id true, back before the first invisible time ran out true, " +
			"earlier handle's ack refused (code 40013), 0 more after the ack"},
	{name: "5x push consumer", typ: mqmeta.MessageTypeNormal, queues: 2, want: "attempts {fail-once=[1, 2], ok-1=[1], ok-2=[1]}"},
	{name: "5x fifo push consumer", typ: mqmeta.MessageTypeFIFO, queues: 2,
		group: &mqmeta.GroupConfig{ConsumeMessageOrderly: true, RetryMaxTimes: 16},
		want:  "consumed {a=[a0#1, a1#1, a1#2, a2#1], b=[b0#1, b1#1, b2#1]}"},
	{name: "5x max attempts then DLQ", typ: mqmeta.MessageTypeNormal, queues: 1, group: &mqmeta.GroupConfig{RetryMaxTimes: 1},
		want: "attempts [1, 2], dead letter poison with the same id"},
	{name: "5x tag filter", typ: mqmeta.MessageTypeNormal, queues: 2, want: "received [0, 2, 3, 5]"},
	{name: "5x sql92 filter", typ: mqmeta.MessageTypeNormal, queues: 2, want: "received [3, 4]"},
	{name: "5x from 4x and back", typ: mqmeta.MessageTypeNormal, queues: 2,
		want: "5.x received 3 from 4.x, tag keys and property intact, ids the 4.x producer's; " +
			"4.x received 3 from 5.x, tag keys and property intact, ids the 5.x producer's"},
	{name: "5x plaintext", typ: mqmeta.MessageTypeNormal, queues: 1, want: "received [plain] over plaintext"},
	{name: "5x refusals", typ: mqmeta.MessageTypeNormal, queues: 1,
		want: "unknown topic: code 40402; invisible 1 s: code 40011; invisible 13 h: code 40011; then ack refused; " +
			"message group on NORMAL: refused; 4 MiB + 1: refused"},
}

// java5Client runs java/Scenarios5.java against each target's gRPC endpoint (one JVM per target runs every
// scenario at once) and compares the outcomes: tide's must equal Apache's, and Apache's the expected one.
func java5Client(t *testing.T, targets []target) {
	cp := compileScenarios5(t)
	results := make([]map[string]string, len(targets))
	// Each target in a subtest of its own (so its setup may fail it), both at once; the group returns when both are done.
	t.Run("run", func(t *testing.T) {
		for i, tg := range targets {
			t.Run(tg.name, func(t *testing.T) {
				t.Parallel()
				results[i] = runJava5(t, tg, cp)
			})
		}
	})
	var table strings.Builder
	for _, sc := range scenarios5 {
		fmt.Fprintf(&table, "\n  %-26s tide: %s\n  %-26s apache: %s", sc.name, results[0][sc.name], "", results[1][sc.name])
	}
	t.Logf("outcomes with rocketmq-client-java:%s", table.String())
	for _, sc := range scenarios5 {
		t.Run(sc.name, func(t *testing.T) {
			tide, apache := results[0][sc.name], results[1][sc.name]
			if tide == "" || apache == "" {
				t.Errorf("no outcome from the Java 5.x client (tide %q, Apache %q)", tide, apache)
			}
			if tide != apache {
				t.Errorf("tide and Apache differ with the Java 5.x client:\n  tide:   %s\n  apache: %s", tide, apache)
			}
			if sc.want != "" && apache != sc.want {
				t.Errorf("Apache's outcome with the Java 5.x client %q is not the expected %q", apache, sc.want)
			}
		})
	}
}

// compileScenarios5 compiles java/Scenarios5.java against rocketmq-client-java (resolved by test/apache/rocketmq)
// and returns the classpath to run it.
func compileScenarios5(t *testing.T) string {
	t.Helper()
	out, err := exec.Command(apachetest.Script(), "classpath5").Output()
	if err != nil {
		t.Fatalf("classpath of rocketmq-client-java: %v", err)
	}
	cp := strings.TrimSpace(string(out))
	_, file, _, _ := runtime.Caller(0)
	classes := t.TempDir()
	if b, err := exec.Command("javac", "-nowarn", "-d", classes, "-cp", cp, filepath.Join(filepath.Dir(file), "java", "Scenarios5.java")).CombinedOutput(); err != nil {
		t.Fatalf("javac Scenarios5.java: %v\n%s", err, b)
	}
	return cp + string(filepath.ListSeparator) + classes
}

func runJava5(t *testing.T, tg target, cp string) map[string]string {
	id := fmt.Sprintf("j5%s%d", tg.name, time.Now().UnixNano()%1e6)
	adm, err := tideadmin.Dial(ctx(t), tg.nameServer)
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close()
	args := []string{"-Xmx256m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", "-Duser.home=" + t.TempDir(),
		"-cp", cp, "Scenarios5", tg.grpc}
	var interopTopic string
	for _, sc := range scenarios5 {
		topic := createTopic(t, tg, id+"-"+strings.ReplaceAll(sc.name, " ", "-"), sc.queues)
		setTopicType(t, tg, topic, sc.queues, sc.typ)
		// Apache's proxy serves a 5.x consumer only in a group that exists (see docs/mq.md): create each scenario's
		// groups first, as Apache's quick start does with mqadmin updateSubGroup.
		g := mqmeta.GroupConfig{RetryMaxTimes: 16}
		if sc.group != nil {
			g = *sc.group
		}
		g.GroupName, g.ConsumeEnable, g.ConsumeBroadcastEnable, g.RetryQueueNums = "g-"+topic, true, true, 1
		groups := []mqmeta.GroupConfig{g}
		if sc.name == "5x max attempts then DLQ" {
			groups = append(groups, mqmeta.GroupConfig{GroupName: "d-" + topic, ConsumeEnable: true, ConsumeBroadcastEnable: true, RetryQueueNums: 1, RetryMaxTimes: 16})
		}
		for _, g := range groups {
			if err := adm.CreateGroup(ctx(t), g); err != nil {
				t.Fatalf("%s: create group %s: %v", tg.name, g.GroupName, err)
			}
		}
		arg := sc.name + "=" + topic
		switch sc.name {
		case "5x delivery timestamp":
			// A NORMAL topic beside it, which must refuse a delayed message.
			normal := createTopic(t, tg, id+"-normal", 1)
			setTopicType(t, tg, normal, 1, mqmeta.MessageTypeNormal)
			arg += "," + normal
		case "5x from 4x and back":
			interopTopic = topic
			arg += "," + strings.Join(send4x(t, tg, id, topic), ",")
		}
		args = append(args, arg)
	}
	c, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(c, "java", args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Errorf("%s: the Java 5.x client's scenarios failed: %v\n%s", tg.name, err, stderr.String())
	}
	res := map[string]string{}
	var ids5 []string
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		if line, ok := strings.CutPrefix(sc.Text(), "RESULT "); ok {
			name, outcome, _ := strings.Cut(line, "\t")
			res[name] = outcome
		}
		if ids, ok := strings.CutPrefix(sc.Text(), "IDS5 "); ok {
			ids5 = strings.Split(ids, ",")
		}
	}
	failed := len(res) < len(scenarios5)
	for _, o := range res {
		failed = failed || strings.HasPrefix(o, "error")
	}
	if failed {
		// The shaded client logs nothing (no SLF4J binding): its stack traces on stderr are what there is.
		t.Logf("%s: the Java 5.x client's output:\n%s\nstderr:\n%s", tg.name, out, stderr.String())
	}
	if ids5 != nil {
		res["5x from 4x and back"] += "; " + receive4x(t, tg, id, interopTopic, ids5)
	}
	return res
}

// send4x sends three messages with the Go 4.x remoting client for Scenarios5.interop and returns their ids.
func send4x(t *testing.T, tg target, id, topic string) []string {
	p := newProducer(t, tg, "4x-"+id)
	var ids []string
	for i := range 3 {
		m := primitive.NewMessage(topic, fmt.Appendf(nil, "from4-%d", i))
		m.WithTag("t4")
		m.WithKeys([]string{"k4", fmt.Sprint(i)})
		m.WithProperty("origin", "4x")
		r, err := p.SendSync(ctx(t), m)
		if err != nil {
			t.Fatalf("%s: 4.x send: %v", tg.name, err)
		}
		ids = append(ids, r.MsgID)
	}
	return ids
}

// receive4x reads the 5.x producer's messages of Scenarios5.interop with the Go 4.x push consumer.
func receive4x(t *testing.T, tg target, id, topic string, ids5 []string) string {
	var mu sync.Mutex
	var got []string
	intact := true
	consumeAllGroup(t, tg, "g4-"+id, topic, consumer.MessageSelector{Type: consumer.TAG, Expression: "t5"}, 3, func(m *primitive.MessageExt) {
		mu.Lock()
		defer mu.Unlock()
		if m.GetTags() != "t5" || m.GetKeys() != "k5" || m.GetProperty("origin") != "5x" || !strings.HasPrefix(string(m.Body), "from5-") {
			intact = false
			t.Logf("%s: 4.x received %s with tag %q keys %q origin %q", tg.name, m.Body, m.GetTags(), m.GetKeys(), m.GetProperty("origin"))
		}
		got = append(got, m.MsgId)
	})
	mu.Lock()
	defer mu.Unlock()
	slices.Sort(got)
	slices.Sort(ids5)
	idText := "others"
	if slices.Equal(got, ids5) {
		idText = "the 5.x producer's"
	}
	state := "intact"
	if !intact {
		state = "changed"
	}
	return fmt.Sprintf("4.x received %d from 5.x, tag keys and property %s, ids %s", len(got), state, idText)
}
