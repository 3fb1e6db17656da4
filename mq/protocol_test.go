package mq_test

import (
	"context"
	"encoding/binary"
	"strings"
	"testing"
	"time"

	"github.com/tide-run/tide/mq"
	"github.com/tide-run/tide/mq/remoting"
)

func dial(t *testing.T, addr string) *remoting.Client {
	t.Helper()
	c, err := remoting.Dial(context.Background(), addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func invoke(t *testing.T, c *remoting.Client, req *remoting.Command) *remoting.Command {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := c.Invoke(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

func TestUnknownCodeKeepsConnection(t *testing.T) {
	srv := start(t, mq.Options{})
	for _, addr := range []string{srv.BrokerAddr(), srv.NameServerAddr()} {
		c := dial(t, addr)
		resp := invoke(t, c, remoting.NewRequest(9999, nil, nil))
		if resp.Code != remoting.RequestCodeNotSupported || !strings.Contains(resp.Remark, "not supported") {
			t.Fatalf("%s: code %d remark %q", addr, resp.Code, resp.Remark)
		}
		// Same connection still served.
		resp = invoke(t, c, remoting.NewRequest(remoting.GetRouteInfoByTopic, map[string]string{"topic": "TBW102"}, nil))
		if addr == srv.NameServerAddr() && resp.Code != remoting.Success {
			t.Fatalf("route after unknown code: %d %s", resp.Code, resp.Remark)
		}
	}
}

func TestBadFramesCloseOnlyThatConnection(t *testing.T) {
	srv := start(t, mq.Options{})
	good := dial(t, srv.BrokerAddr())

	// Wrong type in ext fields: answered with an error, connection kept.
	c := dial(t, srv.BrokerAddr())
	hdr := []byte(`{"code":30,"opaque":7,"flag":0,"extFields":{"topic":1}}`)
	frame := binary.BigEndian.AppendUint32(nil, uint32(4+len(hdr)))
	frame = binary.BigEndian.AppendUint32(frame, uint32(len(hdr)))
	frame = append(frame, hdr...)
	if err := c.WriteRaw(frame); err != nil {
		t.Fatal(err)
	}
	r := invoke(t, c, remoting.NewRequest(remoting.GetMaxOffset, map[string]string{"topic": "TBW102", "queueId": "0"}, nil))
	if r.Code != remoting.Success {
		t.Fatalf("connection not usable after a bad header: %d %s", r.Code, r.Remark)
	}
	// Missing field: a clear error naming it.
	r = invoke(t, c, remoting.NewRequest(remoting.GetMaxOffset, map[string]string{"queueId": "x"}, nil))
	if r.Code != remoting.SystemError || !strings.Contains(r.Remark, "extFields.topic") {
		t.Fatalf("missing field: %d %q", r.Code, r.Remark)
	}

	for name, raw := range map[string][]byte{
		"oversized":        binary.BigEndian.AppendUint32(nil, remoting.MaxFrameSize+10),
		"garbage":          []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"),
		"truncated header": append(binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint32(nil, 8), 100), "abcd"...),
	} {
		bad := dial(t, srv.BrokerAddr())
		if err := bad.WriteRaw(raw); err != nil {
			t.Fatal(err)
		}
		select {
		case <-bad.Done():
		case <-time.After(5 * time.Second):
			t.Fatalf("%s: connection not closed", name)
		}
		r := invoke(t, good, remoting.NewRequest(remoting.GetMaxOffset, map[string]string{"topic": "TBW102", "queueId": "0"}, nil))
		if r.Code != remoting.Success {
			t.Fatalf("%s: other client affected: %d", name, r.Code)
		}
	}
}

func TestRouteJSONIsCompact(t *testing.T) {
	srv := start(t, mq.Options{})
	c := dial(t, srv.NameServerAddr())
	createTopic(t, srv, "routed", 3)
	r := invoke(t, c, remoting.NewRequest(remoting.GetRouteInfoByTopic, map[string]string{"topic": "routed"}, nil))
	want := `{"orderTopicConf":"","queueDatas":[{"brokerName":"broker-a","readQueueNums":3,"writeQueueNums":3,"perm":6,"topicSysFlag":0}],"brokerDatas":[{"cluster":"DefaultCluster","brokerName":"broker-a","brokerAddrs":{"0":"` + srv.BrokerAddr() + `"}}],"filterServerTable":{}}`
	if string(r.Body) != want {
		t.Fatalf("route\n got %s\nwant %s", r.Body, want)
	}
	r = invoke(t, c, remoting.NewRequest(remoting.GetRouteInfoByTopic, map[string]string{"topic": "nope"}, nil))
	if r.Code != remoting.TopicNotExist {
		t.Fatalf("unknown topic: %d", r.Code)
	}
	r = invoke(t, c, remoting.NewRequest(remoting.GetRouteInfoByTopic, map[string]string{"topic": "%RETRY%g1"}, nil))
	if r.Code != remoting.Success {
		t.Fatalf("retry route: %d", r.Code)
	}
}
