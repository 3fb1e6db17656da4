package admin_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/tide-run/tide/mq/admin"
	"github.com/tide-run/tide/mq/message"
)

// TestGroupReader reads a topic as a group with a tag filter, stops at --max, commits, and a second reader of the
// same group starts after what the first one handled; GroupLag agrees with what is left.
func TestGroupReader(t *testing.T) {
	ctx := context.Background()
	_, c := startWithClient(t)
	if err := c.CreateTopic(ctx, "rd", 2); err != nil {
		t.Fatal(err)
	}
	for i := range 6 {
		tag := "keep"
		if i%3 == 2 {
			tag = "drop"
		}
		if _, err := c.Send(ctx, admin.SendRequest{Topic: "rd", Body: []byte(fmt.Sprint(i)), Tag: tag, QueueID: int32(i % 2)}); err != nil {
			t.Fatal(err)
		}
	}
	filter, err := admin.ParseTagExpr("keep")
	if err != nil {
		t.Fatal(err)
	}
	read := func(maxMsgs int) []string {
		t.Helper()
		r := &admin.GroupReader{Client: c, Group: "g-rd", Topic: "rd", Expr: "keep", Filter: filter, RequestTimeout: 5 * time.Second}
		if err := r.Init(ctx, true); err != nil {
			t.Fatal(err)
		}
		var got []string
		n, err := r.Run(ctx, maxMsgs, 200*time.Millisecond, func(ms []*message.Message) error {
			for _, m := range ms {
				got = append(got, string(m.Body))
			}
			return nil
		})
		if err != nil || n != len(got) {
			t.Fatalf("run: %d %v (got %v)", n, err, got)
		}
		if err := r.Commit(ctx); err != nil {
			t.Fatal(err)
		}
		return got
	}
	first := read(2)
	rest := read(0)
	if len(first) != 2 || len(first)+len(rest) != 4 {
		t.Fatalf("first %v, rest %v: want the 4 'keep' messages once, 2 then 2", first, rest)
	}
	seen := map[string]bool{}
	for _, b := range append(first, rest...) {
		if seen[b] || b == "2" || b == "5" {
			t.Fatalf("message %s handled twice or not filtered: %v %v", b, first, rest)
		}
		seen[b] = true
	}
	l, err := c.GroupLag(ctx, "g-rd")
	if err != nil || l.TotalLag != 0 || len(l.Queues) != 2 || len(l.Topics) != 1 || l.Topics[0] != "rd" {
		t.Fatalf("lag after reading everything: %+v %v", l, err)
	}
	if _, err := admin.ParseTagExpr("a || *"); err == nil {
		t.Fatal("a wildcard inside a tag list was accepted")
	}
}
