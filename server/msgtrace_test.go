package server_test

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2"
	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/apache/rocketmq-client-go/v2/producer"
	"github.com/apache/rocketmq-client-go/v2/rlog"
	"github.com/chromedp/chromedp"

	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"

	"github.com/tide-run/tide/dashboard/dashboardtest"
	foodbundle "github.com/tide-run/tide/examples/food-delivery"
	"github.com/tide-run/tide/server"
)

// TestFoodDeliveryOrderTraced is issue 15's first "done when": with `tide up` (the whole server) and the
// food-delivery bundle applied unchanged (but for the order database's path), one order sent by a producer with the
// official client's message trace on (its producer_trace example's options) and the orderId as the message key is
// followed
//   - by `tide mq trace <orderId>`: the producer's record; the RocketMQSource's consumer group, with the CloudEvent
//     the message became, the Broker ingress's 202 and the OpenTelemetry trace id; then that event's message on the
//     Broker's topic, consumed by the Trigger's group and delivered to the order service, with the service's
//     response (202) and its latency, in the same trace;
//   - by `tide trace <trace id>` (the id `tide mq trace` printed: the producer sent no traceparent, so the join is
//     the records' own), which names the order's message and key and shows every hop to the order service's
//     instance;
//   - and at an OTLP/HTTP receiver started here (OTEL_EXPORTER_OTLP_ENDPOINT), which gets the same trace.
//
// The only test in this package that turns the client's trace on (v2.1.2 keeps one trace client per process).
func TestFoodDeliveryOrderTraced(t *testing.T) {
	rlog.SetLogLevel("error")
	otlp := newOTLPReceiver(t)
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", otlp.URL)
	t.Setenv("OTEL_BSP_SCHEDULE_DELAY", "100")
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	p := newPlatform(t, server.Options{DataDir: dir,
		Serving:  server.ServingOptions{BuildCacheDir: filepath.Join(dir, "build"), SourceDir: root},
		Eventing: server.EventingOptions{StatsInterval: 100 * time.Millisecond}})
	eventually(t, 15*time.Second, func() error {
		if !p.srv.Ready() {
			return fmt.Errorf("not ready")
		}
		return nil
	})
	ns := p.endpoint("rocketmq name server")

	// The order topic, as the simulator's first send would create it (the source waits for it).
	p.mustRun("", "mq", "topic", "create", "orders", "--namesrv", ns)
	// The bundle, in the seed's order; the order database goes to the test's directory.
	var docs []string
	for _, name := range foodbundle.Files() {
		raw, err := foodbundle.Read(name)
		if err != nil {
			t.Fatal(err)
		}
		doc := string(raw)
		if name == "ksvc-order-service.yaml" {
			const work = "            - name: ORDER_WORK_MS\n"
			if !strings.Contains(doc, work) {
				t.Fatalf("%s no longer sets ORDER_WORK_MS as this test expects:\n%s", name, doc)
			}
			doc = strings.Replace(doc, work, fmt.Sprintf("            - name: ORDER_DB\n              value: %q\n", filepath.Join(dir, "orders.db"))+work, 1)
		}
		docs = append(docs, doc)
	}
	p.apply(strings.Join(docs, "\n---\n"))
	p.waitReadyWithin("ksvc", "order-service", "120s")
	p.waitReady("trigger", "order-service")
	p.waitReady("rocketmqsource", "orders")

	// The order, as the simulator sends it: the seed's order JSON, tagged with its status, keyed by its orderId.
	const orderID = "ord-1765000000-0000001"
	prod, err := rocketmq.NewProducer(producer.WithNsResolver(primitive.NewPassthroughResolver([]string{ns})),
		producer.WithGroupName("food-delivery-simulator"), producer.WithInstanceName("food-trace"), producer.WithRetry(2),
		producer.WithTrace(&primitive.TraceConfig{GroupName: "food-delivery-simulator", NamesrvAddrs: []string{ns}, Access: primitive.Local}))
	if err != nil {
		t.Fatal(err)
	}
	if err := prod.Start(); err != nil {
		t.Fatal(err)
	}
	defer prod.Shutdown()
	order := primitive.NewMessage("orders", []byte(`{"orderId":"`+orderID+`","orderStatus":"completed","userPhoneNo":"152122131323",`+
		`"prodId":"2141412","prodName":"test","chargeMoney":"30.0","chargeTime":"1584932320","finishTime":"1584932320"}`))
	order.WithTag("completed").WithKeys([]string{orderID})
	res, err := prod.SendSync(context.Background(), order)
	if err != nil || res.Status != primitive.SendOK {
		t.Fatalf("send the order: %v %v", res, err)
	}
	orderMsgID := res.MsgID

	// `tide mq trace <orderId>`: the order's message, then its event's message on the Broker's topic.
	type attempt struct {
		Done     bool   `json:"done"`
		Success  bool   `json:"success"`
		TraceID  string `json:"traceId"`
		Event    string `json:"event"`
		Sink     string `json:"sink"`
		Outcome  string `json:"outcome"`
		Status   int    `json:"status"`
		Delivery int64  `json:"deliveryMs"`
	}
	type traced struct {
		MsgID     string `json:"msgId"`
		Published []struct {
			Group   string `json:"group"`
			Topic   string `json:"topic"`
			Success bool   `json:"success"`
		} `json:"published"`
		Consumed []struct {
			Group    string    `json:"group"`
			Attempts []attempt `json:"attempts"`
		} `json:"consumed"`
	}
	var orderMsg, eventMsg traced
	var src, trig attempt
	eventually(t, 60*time.Second, func() error {
		out, errOut, code := p.run("", "mq", "trace", orderID, "--namesrv", ns, "-o", "json")
		if code != 0 {
			return fmt.Errorf("tide mq trace: exit %d: %s", code, errOut)
		}
		var msgs []traced
		dec := json.NewDecoder(strings.NewReader(out))
		for dec.More() {
			var m traced
			if err := dec.Decode(&m); err != nil {
				return err
			}
			msgs = append(msgs, m)
		}
		if len(msgs) != 2 {
			return fmt.Errorf("want the order's message and its event's, got %d:\n%s", len(msgs), out)
		}
		orderMsg, eventMsg = msgs[0], msgs[1]
		if len(orderMsg.Consumed) != 1 || len(orderMsg.Consumed[0].Attempts) == 0 || len(eventMsg.Consumed) != 1 || len(eventMsg.Consumed[0].Attempts) == 0 {
			return fmt.Errorf("consumptions missing:\n%s", out)
		}
		src, trig = orderMsg.Consumed[0].Attempts[0], eventMsg.Consumed[0].Attempts[0]
		if !src.Done || !trig.Done {
			return fmt.Errorf("deliveries not finished:\n%s", out)
		}
		return nil
	})
	if orderMsg.MsgID != orderMsgID || len(orderMsg.Published) != 1 || orderMsg.Published[0].Group != "food-delivery-simulator" ||
		orderMsg.Published[0].Topic != "orders" || !orderMsg.Published[0].Success {
		t.Errorf("the order's message %s: %+v; want %s, produced by food-delivery-simulator to orders", orderMsg.MsgID, orderMsg, orderMsgID)
	}
	if g := orderMsg.Consumed[0].Group; g != "food-delivery-orders" {
		t.Errorf("the order consumed by %q, want the source's group food-delivery-orders", g)
	}
	if !src.Success || src.Outcome != "Delivered" || src.Status != 202 || src.Event != orderMsgID || len(src.TraceID) != 32 {
		t.Errorf("the source's delivery %+v: want the event %s Delivered to the Broker with 202, and a trace id", src, orderMsgID)
	}
	traceID := src.TraceID
	if !trig.Success || trig.Outcome != "Delivered" || trig.Status != 202 || trig.Event != orderMsgID || trig.TraceID != traceID ||
		!strings.Contains(trig.Sink, "order-service") || trig.Delivery <= 0 {
		t.Errorf("the Trigger's delivery %+v: want event %s Delivered to the order service, its 202, a latency, trace %s", trig, orderMsgID, traceID)
	}
	text := p.mustRun("", "mq", "trace", orderID, "--namesrv", ns)
	for _, want := range []string{"message " + orderMsgID, "by group food-delivery-simulator", "group food-delivery-orders",
		"event " + orderMsgID, "Delivered, status 202", "trace " + traceID, "order-service"} {
		if !strings.Contains(text, want) {
			t.Errorf("tide mq trace %s lacks %q:\n%s", orderID, want, text)
		}
	}

	// `tide trace <trace id>`: the order's message and key, every hop to the order service's instance.
	var tree string
	eventually(t, 20*time.Second, func() error {
		out, errOut, code := p.run("", "trace", traceID)
		if code != 0 {
			return fmt.Errorf("tide trace: exit %d: %s", code, errOut)
		}
		tree = out
		for _, want := range []string{"message " + orderMsgID, "keys " + orderID, "process orders", "POST /{namespace}/{broker}",
			"send tide-broker-default_default", "process tide-broker-default_default", "order-service"} {
			if !strings.Contains(out, want) {
				return fmt.Errorf("tide trace %s lacks %q:\n%s", traceID, want, out)
			}
		}
		return nil
	})
	t.Logf("tide mq trace %s:\n%s\ntide trace %s:\n%s", orderID, text, traceID, tree)

	// The API's message trace (what the dashboard's page reads) and the page itself in Chromium: the order's steps
	// and its event's, each delivery with its status, and the step's trace linked to the trace page.
	t.Run("dashboard", func(t *testing.T) {
		var l server.MessageTraceList
		resp, err := http.Get(p.srv.APIURL() + "/tide/v1/messagetraces/" + orderID)
		if err != nil {
			t.Fatal(err)
		}
		err = json.NewDecoder(resp.Body).Decode(&l)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("GET /tide/v1/messagetraces/%s: %s %v", orderID, resp.Status, err)
		}
		if len(l.Messages) != 2 || l.Messages[0].MsgID != orderMsgID || l.Messages[0].Stored == nil || l.Messages[0].Stored.Keys != orderID ||
			l.Messages[1].TraceID != traceID {
			t.Fatalf("GET /tide/v1/messagetraces/%s: %+v", orderID, l)
		}
		page := dashboardtest.Open(t, p.srv.APIURL()+"/")
		var steps []string
		var links []string
		var waterfall []string
		page.Run(30*time.Second,
			chromedp.Navigate(p.srv.APIURL()+"/dashboard/messages#"+orderID),
			chromedp.WaitVisible(`.msg[data-msg="`+orderMsgID+`"] .msg-step[data-step="delivered"]`),
			chromedp.WaitVisible(`.msg:nth-of-type(2) .msg-step[data-step="delivered"]`),
			chromedp.Evaluate(`[...document.querySelectorAll('.msg-step')].map(r => r.dataset.step + ': ' + r.textContent)`, &steps),
			chromedp.Evaluate(`[...document.querySelectorAll('a.trace-link')].map(a => a.getAttribute('href'))`, &links),
		)
		page.Screenshot("messages.png")
		joined := strings.Join(steps, "\n")
		for _, want := range []string{"produced: ", "by group food-delivery-simulator", "stored: ", "consumed by food-delivery-orders",
			"delivered: ", "status 202", "consumed by tide-trigger-default-order-service", "order-service.default"} {
			if !strings.Contains(joined, want) {
				t.Errorf("the message page lacks %q:\n%s", want, joined)
			}
		}
		if len(links) == 0 || slices.ContainsFunc(links, func(h string) bool { return h != "/dashboard/traces#"+traceID }) {
			t.Errorf("trace links %v: want each to open /dashboard/traces#%s", links, traceID)
		}
		// Following the link opens the trace's waterfall on the trace page.
		page.Run(30*time.Second,
			chromedp.Click(`a.trace-link`),
			chromedp.WaitVisible(`.wf-row[data-name="process orders"]`),
			chromedp.Evaluate(`[...document.querySelectorAll('.wf-row')].map(r => r.dataset.name)`, &waterfall),
		)
		if !slices.Contains(waterfall, "process tide-broker-default_default") {
			t.Errorf("the trace page after the link shows %v", waterfall)
		}
		page.NoProblems()
	})

	// The same trace at the OTLP receiver, down to the order service's instance (the gateway's span).
	eventually(t, 20*time.Second, func() error {
		_ = p.srv.Tracing().ForceFlush(context.Background())
		var source, gateway bool
		for _, sp := range otlp.trace(traceID) {
			source = source || sp.Name == "process orders" && slices.Contains(spanStrings(sp, "messaging.rocketmq.message.keys"), orderID) &&
				spanAttr(sp, "messaging.message.id") == orderMsgID
			gateway = gateway || spanAttr(sp, "tide.revision") == "default/order-service-00001"
		}
		if !source || !gateway {
			var have []string
			for _, sp := range otlp.trace(traceID) {
				have = append(have, sp.Name+"("+hex.EncodeToString(sp.SpanId)+")")
			}
			return fmt.Errorf("trace %s at the receiver: source span %v, gateway span %v; have %v", traceID, source, gateway, have)
		}
		return nil
	})
}

// spanStrings is a string-array attribute of an OTLP span (the conventions' message keys are one).
func spanStrings(sp *tracepb.Span, key string) []string {
	var out []string
	for _, kv := range sp.Attributes {
		if kv.Key != key {
			continue
		}
		if arr, ok := kv.GetValue().GetValue().(*commonpb.AnyValue_ArrayValue); ok {
			for _, v := range arr.ArrayValue.Values {
				out = append(out, v.GetStringValue())
			}
		}
	}
	return out
}
