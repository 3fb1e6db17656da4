package gateway

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/types"
)

// TestBodyStreamsWhileTheAnswerStarts: an instance that starts its answer before it has read the request's body
// (here: a first line at once, the body's length once it has it). The gateway must keep streaming the body to the
// instance after the answer's head went out: net/http's server, unless told the exchange is full duplex, discards
// and closes the rest of a request body when the handler writes its head, and http.Transport then fails reading
// the body it is sending and closes the instance's connection under the answer. That cut the barrage page's
// streamed Send in CI (the page answers its first line as soon as it has decoded the JSON, while the transport is
// still on the body's last read).
func TestBodyStreamsWhileTheAnswerStarts(t *testing.T) {
	inst := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc := http.NewResponseController(w)
		_ = rc.EnableFullDuplex() // the instance reads its body after answering
		w.Header().Set("Content-Type", "application/x-ndjson")
		fmt.Fprintln(w, "started")
		_ = rc.Flush()
		n, err := io.Copy(io.Discard, r.Body)
		fmt.Fprintf(w, "got %d %v\n", n, err)
	}))
	defer inst.Close()
	gw := New(Options{})
	srv := serve(t, gw)
	gw.AddBackend(types.NamespacedName{Namespace: "default", Name: "raw-00001"}, &scriptedInstance{addr: inst.Listener.Addr().String()})
	if err := gw.SetRoute("default", "raw", []Target{{Revision: "raw-00001", Percent: 100}}); err != nil {
		t.Fatal(err)
	}

	c, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	// The head and half of the body; the other half only once the answer has started.
	fmt.Fprintf(c, "POST /send HTTP/1.1\r\nHost: %s\r\nContent-Length: 10\r\n\r\n12345", rawHost)
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	body := bufio.NewReader(resp.Body)
	if line, err := body.ReadString('\n'); err != nil || line != "started\n" {
		t.Fatalf("first line %q, %v", line, err)
	}
	fmt.Fprint(c, "67890")
	rest, err := io.ReadAll(body)
	if err != nil || strings.TrimSpace(string(rest)) != "got 10 <nil>" {
		t.Fatalf("rest of the answer %q, %v: the body did not reach the instance whole, or the answer was cut", rest, err)
	}
}
