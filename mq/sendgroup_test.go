package mq_test

import (
	"bufio"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/tide-run/tide/mq"
	"github.com/tide-run/tide/mq/remoting"
)

// Sends that arrive together on one connection are stored as a group (one commit-log write). This writes many
// SEND_MESSAGE frames, a oneway send and a GET_MAX_OFFSET in one TCP write, so the broker reads them together:
// every send is acknowledged with its own queue offset in arrival order, the oneway one is stored unanswered, and
// the request after them sees all of them (a group is stored before the connection's next request is served).
func TestSendsArrivingTogetherAreStoredInOrder(t *testing.T) {
	for _, mode := range []mq.FlushMode{mq.FlushAsync, mq.FlushSync} {
		t.Run(mode.String(), func(t *testing.T) {
			srv := start(t, mq.Options{FlushMode: mode})
			createTopic(t, srv, "grouped", 1)
			nc, err := net.Dial("tcp", srv.BrokerAddr())
			if err != nil {
				t.Fatal(err)
			}
			defer nc.Close()
			const n = 150 // more than one group's worth (64)
			var buf []byte
			for i := range n {
				req := remoting.NewRequest(remoting.SendMessage, map[string]string{"producerGroup": "pg", "topic": "grouped",
					"defaultTopic": "TBW102", "defaultTopicQueueNums": "4", "queueId": "0", "sysFlag": "0",
					"bornTimestamp": "0", "flag": "0", "properties": "KEYS\x01k" + strconv.Itoa(i) + "\x02"}, make([]byte, 1024))
				req.Opaque = int32(i + 1)
				if i == n-1 {
					req.Flag |= remoting.FlagOneway
				}
				buf = append(buf, req.Encode()...)
			}
			maxReq := remoting.NewRequest(remoting.GetMaxOffset, map[string]string{"topic": "grouped", "queueId": "0"}, nil)
			maxReq.Opaque = n + 1
			buf = append(buf, maxReq.Encode()...)
			if _, err := nc.Write(buf); err != nil {
				t.Fatal(err)
			}
			_ = nc.SetReadDeadline(time.Now().Add(10 * time.Second))
			r := bufio.NewReader(nc)
			seen := map[int32]bool{}
			for len(seen) < n { // n-1 sends answered + the max offset
				frame, err := remoting.ReadFrame(r)
				if err != nil {
					t.Fatalf("after %d responses: %v", len(seen), err)
				}
				resp, err := remoting.Decode(frame)
				if err != nil {
					t.Fatal(err)
				}
				if resp.Code != remoting.Success {
					t.Fatalf("opaque %d: code %d %s", resp.Opaque, resp.Code, resp.Remark)
				}
				seen[resp.Opaque] = true
				switch {
				case resp.Opaque == n+1:
					if got := resp.ExtFields["offset"]; got != strconv.Itoa(n) {
						t.Fatalf("max offset after %d sends = %s, want %d", n, got, n)
					}
				case resp.Opaque >= 1 && resp.Opaque < n:
					if got, want := resp.ExtFields["queueOffset"], strconv.Itoa(int(resp.Opaque-1)); got != want {
						t.Fatalf("send %d: queueOffset %s, want %s (arrival order)", resp.Opaque, got, want)
					}
				default:
					t.Fatalf("unexpected response opaque %d (the oneway send is not answered)", resp.Opaque)
				}
			}
		})
	}
}
