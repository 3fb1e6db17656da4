package mq_test

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"

	"github.com/tide-run/tide/mq"
	"github.com/tide-run/tide/mq/admin"
	"github.com/tide-run/tide/mq/message"
)

func TestMaxMessageSize(t *testing.T) {
	srv := start(t, mq.Options{})
	createTopic(t, srv, "big", 1)
	p := newProducer(t, srv)
	// Incompressible 5 MiB (the client zlib-compresses bodies over 4 KiB).
	body := make([]byte, 5<<20)
	x := uint32(1)
	for i := range body {
		x = x*1664525 + 1013904223
		body[i] = byte(x >> 24)
	}
	_, err := p.SendSync(context.Background(), primitive.NewMessage("big", body))
	if err == nil || !strings.Contains(err.Error(), "CODE: 13") {
		t.Fatalf("5 MiB send: %v, want CODE: 13 (MESSAGE_ILLEGAL)", err)
	}
	if _, err := p.SendSync(context.Background(), primitive.NewMessage("big", body[:1<<20])); err != nil {
		t.Fatalf("1 MiB send: %v", err)
	}
}

func TestCompressedBodyPassesThrough(t *testing.T) {
	srv := start(t, mq.Options{})
	createTopic(t, srv, "zip", 1)
	p := newProducer(t, srv)
	body := bytes.Repeat([]byte("compress me "), 10000) // 120 KB: the client zlib-compresses it
	if _, err := p.SendSync(context.Background(), primitive.NewMessage("zip", body)); err != nil {
		t.Fatal(err)
	}
	ac, err := admin.Dial(context.Background(), srv.NameServerAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer ac.Close()
	msgs, _, err := ac.Pull(context.Background(), "raw", "zip", 0, 0, 1)
	if err != nil || len(msgs) != 1 {
		t.Fatalf("%v %d", err, len(msgs))
	}
	if msgs[0].SysFlag&message.FlagCompressed == 0 || len(msgs[0].Body) >= len(body) {
		t.Fatalf("stored sysFlag %#x body %d bytes: not the compressed form", msgs[0].SysFlag, len(msgs[0].Body))
	}
	var got []byte
	col := make(chan []byte, 1)
	c := newPushConsumer(t, srv, "g-zip", consumer.WithConsumeFromWhere(consumer.ConsumeFromFirstOffset))
	c.Subscribe("zip", consumer.MessageSelector{}, func(_ context.Context, ms ...*primitive.MessageExt) (consumer.ConsumeResult, error) {
		col <- ms[0].Body
		return consumer.ConsumeSuccess, nil
	})
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	defer c.Shutdown()
	select {
	case got = <-col:
	case <-time.After(20 * time.Second):
		t.Fatal("no message")
	}
	if !bytes.Equal(got, body) {
		t.Fatal("consumer got a different body")
	}
}

func TestAsyncOnewayBatchKeysProperties(t *testing.T) {
	srv := start(t, mq.Options{})
	createTopic(t, srv, "kinds", 2)
	p := newProducer(t, srv)
	done := make(chan error, 1)
	m := primitive.NewMessage("kinds", []byte("async")).WithKeys([]string{"k-a", "k-b"}).WithTag("T")
	m.WithProperty("color", "blue")
	if err := p.SendAsync(context.Background(), func(_ context.Context, r *primitive.SendResult, err error) { done <- err }, m); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if err := p.SendOneWay(context.Background(), primitive.NewMessage("kinds", []byte("oneway"))); err != nil {
		t.Fatal(err)
	}
	var batch []*primitive.Message
	for i := 0; i < 10; i++ {
		batch = append(batch, primitive.NewMessage("kinds", []byte(fmt.Sprintf("batch-%d", i))))
	}
	r, err := p.SendSync(context.Background(), batch...)
	if err != nil || r.Status != primitive.SendOK {
		t.Fatalf("batch: %v", err)
	}
	if n := len(strings.Split(r.OffsetMsgID, ",")); n != 10 {
		t.Fatalf("batch answered %d offset ids", n)
	}
	col := newCollector()
	var props map[string]string
	c := newPushConsumer(t, srv, "g-kinds", consumer.WithConsumeFromWhere(consumer.ConsumeFromFirstOffset))
	c.Subscribe("kinds", consumer.MessageSelector{}, func(ctx context.Context, ms ...*primitive.MessageExt) (consumer.ConsumeResult, error) {
		for _, m := range ms {
			if string(m.Body) == "async" {
				col.mu.Lock()
				props = m.GetProperties()
				col.mu.Unlock()
			}
		}
		return col.fn(ctx, ms...)
	})
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	defer c.Shutdown()
	waitFor(t, 20*time.Second, "12 messages", func() bool { return col.count() == 12 })
	col.mu.Lock()
	defer col.mu.Unlock()
	if props["KEYS"] != "k-a k-b" || props["TAGS"] != "T" || props["color"] != "blue" || props["UNIQ_KEY"] == "" {
		t.Fatalf("properties %v", props)
	}
}
