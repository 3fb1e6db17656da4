package interop_test

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2"
	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"

	"github.com/tide-run/tide/internal/apachetest"
	tideadmin "github.com/tide-run/tide/mq/admin"
)

// mqadminClient runs Apache RocketMQ's own operations tool, mqadmin (rocketmq-tools, java/Admin.java runs its
// commands in one JVM), against each target: a topic is created and written with mqadmin, an official Go client
// consumes it, and then the commands operators and the RocketMQ dashboard rely on read the brokers' state back:
// clusterList, brokerStatus, getBrokerConfig, topicRoute, topicStatus, consumerConnection, consumerProgress and
// producerConnection.
// Each command's output is reduced to an outcome (what it shows, not the numbers that differ between brokers),
// and tide's must equal Apache's.
func mqadminClient(t *testing.T, targets []target) {
	cp := compileAdmin(t)
	results := make([]map[string]string, len(targets))
	t.Run("run", func(t *testing.T) {
		for i, tg := range targets {
			t.Run(tg.name, func(t *testing.T) {
				t.Parallel()
				results[i] = runMQAdmin(t, tg, cp)
			})
		}
	})
	if t.Failed() {
		return
	}
	var names []string
	for name := range results[1] {
		names = append(names, name)
	}
	sort.Strings(names)
	var table strings.Builder
	for _, name := range names {
		fmt.Fprintf(&table, "\n  %-18s tide: %s\n  %-18s apache: %s", name, results[0][name], "", results[1][name])
	}
	t.Logf("outcomes with mqadmin:%s", table.String())
	for _, name := range names {
		if results[0][name] != results[1][name] {
			t.Errorf("mqadmin %s: tide and Apache differ:\n  tide:   %s\n  apache: %s", name, results[0][name], results[1][name])
		}
	}
}

// compileAdmin compiles java/Admin.java against Apache's jars (rocketmq-tools among them).
func compileAdmin(t *testing.T) string {
	t.Helper()
	out, err := exec.Command(apachetest.Script(), "classpath").Output()
	if err != nil {
		t.Fatalf("classpath of Apache's jars: %v", err)
	}
	cp := strings.TrimSpace(string(out))
	_, file, _, _ := runtime.Caller(0)
	classes := t.TempDir()
	if b, err := exec.Command("javac", "-nowarn", "-d", classes, "-cp", cp, filepath.Join(filepath.Dir(file), "java", "Admin.java")).CombinedOutput(); err != nil {
		t.Fatalf("javac Admin.java: %v\n%s", err, b)
	}
	return cp + string(filepath.ListSeparator) + classes
}

// mqadmin runs mqadmin commands (each a list of arguments; -n is added) in one JVM and returns each one's output.
func mqadmin(t *testing.T, tg target, cp string, cmds ...[]string) map[string]string {
	t.Helper()
	var in strings.Builder
	for _, c := range cmds {
		in.WriteString(strings.Join(append(c, "-n", tg.nameServer), "\t"))
		in.WriteByte('\n')
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "java", "-Xmx256m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
		"-Duser.home="+t.TempDir(), "-cp", cp, "Admin")
	cmd.Stdin = strings.NewReader(in.String())
	b, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("mqadmin against %s: %v\n%s", tg.name, err, b)
	}
	out := map[string]string{}
	var name string
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "### "); ok {
			name = strings.Fields(rest)[0]
			continue
		}
		if name != "" && !strings.HasPrefix(line, "SLF4J") {
			out[name] += line + "\n"
		}
	}
	return out
}

var (
	mqadminError = regexp.MustCompile(`(?m)^(?:[\w.]+(?:Exception|Error))(?:: (.*))?$`)
	brokerCode   = regexp.MustCompile(`CODE: (\d+)`)
)

// failure is an mqadmin section's error, "" when the command printed none.
func failure(s string) string {
	m := mqadminError.FindStringSubmatch(s)
	if m == nil {
		return ""
	}
	if c := brokerCode.FindStringSubmatch(s); c != nil {
		return "error code " + c[1]
	}
	return "error " + strings.SplitN(m[0], ":", 2)[0]
}

func runMQAdmin(t *testing.T, tg target, cp string) map[string]string {
	id := fmt.Sprintf("%s%d", tg.name, time.Now().UnixNano()%1e6)
	topic, group := "adm-"+id, "gadm-"+id
	res := map[string]string{}
	outcome := func(name, out string, f func(string) string) {
		if e := failure(out); e != "" {
			res[name] = e
			t.Logf("mqadmin %s against %s:\n%s", name, tg.name, out)
			return
		}
		res[name] = f(out)
	}

	// Create the topic and write one message with mqadmin (its sendMessage producer is one per JVM), two more with
	// the official Go client.
	w := mqadmin(t, tg, cp,
		[]string{"updateTopic", "-c", "DefaultCluster", "-t", topic, "-r", "4", "-w", "4"},
		[]string{"sendMessage", "-t", topic, "-p", "one"})
	outcome("updateTopic", w["updateTopic"], func(s string) string {
		return fmt.Sprintf("created %v", strings.Contains(s, "success"))
	})
	outcome("sendMessage", w["sendMessage"], func(s string) string {
		return fmt.Sprintf("%d SEND_OK", strings.Count(s, "SEND_OK"))
	})
	waitRoute(t, tg, topic)
	p := newProducer(t, tg, "adm"+id)
	for _, body := range []string{"two", "three"} {
		if _, err := p.SendSync(context.Background(), primitive.NewMessage(topic, []byte(body))); err != nil {
			t.Fatalf("%s: send: %v", tg.name, err)
		}
	}

	// An official Go client consumes them in a group of its own and stays connected.
	var consumed atomic.Int32
	c, err := rocketmq.NewPushConsumer(consumer.WithNameServer([]string{tg.nameServer}), consumer.WithGroupName(group),
		consumer.WithInstance("adm-"+id), consumer.WithConsumeFromWhere(consumer.ConsumeFromFirstOffset))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Subscribe(topic, consumer.MessageSelector{}, func(_ context.Context, msgs ...*primitive.MessageExt) (consumer.ConsumeResult, error) {
		consumed.Add(int32(len(msgs)))
		return consumer.ConsumeSuccess, nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	stop := func() { once.Do(func() { _ = c.Shutdown() }) }
	defer stop()
	// Until the three are consumed and their offsets committed (the client commits every 5 s).
	ctx := context.Background()
	adm, err := tideadmin.Dial(ctx, tg.nameServer)
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close()
	deadline := time.Now().Add(60 * time.Second)
	for {
		var committed int64
		if stats, err := adm.ConsumeStats(ctx, group, topic); err == nil {
			for _, s := range stats {
				committed += max(0, s.ConsumerOffset)
			}
		}
		if consumed.Load() >= 3 && committed == 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: consumed %d, committed %d of 3 within 60 s", tg.name, consumed.Load(), committed)
		}
		time.Sleep(200 * time.Millisecond)
	}

	r := mqadmin(t, tg, cp,
		[]string{"clusterList"},
		[]string{"brokerStatus", "-b", tg.broker},
		[]string{"getBrokerConfig", "-b", tg.broker},
		[]string{"topicRoute", "-t", topic},
		[]string{"topicStatus", "-t", topic},
		[]string{"consumerConnection", "-g", group},
		[]string{"consumerProgress", "-g", group},
		[]string{"producerConnection", "-g", "p-adm" + id, "-t", topic})
	outcome("clusterList", r["clusterList"], func(s string) string {
		rows := 0
		active := ""
		for _, l := range strings.Split(s, "\n") {
			f := strings.Fields(l)
			if len(f) > 3 && f[3] == tg.broker {
				rows++
				active = f[len(f)-1]
			}
		}
		return fmt.Sprintf("%d broker row(s), activated %s", rows, active)
	})
	outcome("brokerStatus", r["brokerStatus"], func(s string) string {
		var keys []string
		for _, k := range []string{"brokerVersionDesc", "msgPutTotalTodayNow", "msgGetTotalTodayNow", "putTps", "getTransferredTps",
			"earliestMessageTimeStamp", "commitLogMaxOffset", "bootTimestamp", "runtime"} {
			if regexp.MustCompile(`(?m)^` + k + `\s*:`).MatchString(s) {
				keys = append(keys, k)
			}
		}
		return "shows " + strings.Join(keys, ", ")
	})
	outcome("getBrokerConfig", r["getBrokerConfig"], func(s string) string {
		var keys []string
		for _, k := range []string{"brokerClusterName", "brokerName", "brokerId", "listenPort", "messageDelayLevel",
			"autoCreateTopicEnable", "maxMessageSize"} {
			if regexp.MustCompile(`(?m)^` + k + `\s*=`).MatchString(s) {
				keys = append(keys, k)
			}
		}
		return "shows " + strings.Join(keys, ", ")
	})
	outcome("topicRoute", r["topicRoute"], func(s string) string {
		return fmt.Sprintf("readQueueNums 4 %v, writeQueueNums 4 %v", strings.Contains(s, `"readQueueNums":4`),
			strings.Contains(s, `"writeQueueNums":4`))
	})
	outcome("topicStatus", r["topicStatus"], func(s string) string {
		queues, total, dated, written := 0, int64(0), 0, 0
		for _, l := range strings.Split(s, "\n") {
			f := strings.Fields(l)
			if len(f) >= 4 && f[0] != "#Broker" {
				if _, err := strconv.Atoi(f[1]); err != nil {
					continue
				}
				queues++
				n, _ := strconv.ParseInt(f[3], 10, 64)
				total += n
				if n > 0 {
					written++
				}
				if len(f) >= 5 && strings.HasPrefix(f[4], "20") {
					dated++
				}
			}
		}
		// Which queues the sends chose differs; every written queue must show when it was last written.
		return fmt.Sprintf("%d queues, %d messages, every written queue with a last-updated time %v", queues, total,
			written > 0 && dated == written)
	})
	outcome("consumerConnection", r["consumerConnection"], func(s string) string {
		return fmt.Sprintf("client listed %v, language GO %v, subscribes the topic %v, %v", strings.Contains(s, "@adm-"+id),
			strings.Contains(s, " GO "), regexp.MustCompile(`(?m)^`+regexp.QuoteMeta(topic)+`\s+\*\s*$`).MatchString(s),
			strings.Join(regexp.MustCompile(`CONSUME_PASSIVELY|CLUSTERING|CONSUME_FROM_FIRST_OFFSET`).FindAllString(s, -1), " "))
	})
	outcome("consumerProgress", r["consumerProgress"], func(s string) string {
		var broker, consumer, rows int64
		for _, l := range strings.Split(s, "\n") {
			f := strings.Fields(l)
			if len(f) >= 6 && f[0] == topic {
				rows++
				b, _ := strconv.ParseInt(f[3], 10, 64)
				c, _ := strconv.ParseInt(f[4], 10, 64)
				broker += b
				consumer += c
			}
		}
		return fmt.Sprintf("%d queue rows, broker offsets %d, consumer offsets %d", rows, broker, consumer)
	})
	outcome("producerConnection", r["producerConnection"], func(s string) string {
		return fmt.Sprintf("client listed %v, language GO %v", strings.Contains(s, "@i-adm"+id), strings.Contains(s, " GO "))
	})
	stop()
	return res
}
