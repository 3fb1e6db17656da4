package bench

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/tide-run/tide/mq/internal/namesrv"
	"github.com/tide-run/tide/mq/mqmeta"
	"github.com/tide-run/tide/mq/remoting"
)

// nullPeer measures the official client alone: a name server and a "broker" that answers every send at once with a
// canned success, storing nothing. Its peak rate is the most any broker could reach with that client on this
// machine at that moment (the client's own CPU and system calls are the whole cost), which is what a ratio against
// JetStream has to be read against. It has no consumer, so it skips the consumer phase.
type nullPeer struct {
	*rocketPeer
	nsSrv, brSrv *remoting.Server
	offset       atomic.Int64
}

// errNoConsumer: the null peer stores nothing, so there is nothing to consume.
var errNoConsumer = errors.New("bench: the null broker stores nothing to consume")

// nullBroker is the name server's view of the null broker: every topic has 8 read-write queues.
type nullBroker struct{ addr string }

func (n nullBroker) BrokerName() string   { return "null-broker" }
func (n nullBroker) ClusterName() string  { return "null-cluster" }
func (n nullBroker) Addr() string         { return n.addr }
func (n nullBroker) TopicNames() []string { return nil }
func (n nullBroker) TopicRoute(string) (namesrv.Route, bool) {
	return namesrv.Route{ReadQueueNums: 8, WriteQueueNums: 8, Perm: mqmeta.PermRW}, true
}

func newNullPeer(conns int) (*nullPeer, error) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	nsLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	brLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		nsLn.Close()
		return nil, err
	}
	ns := namesrv.New(log)
	ns.Register(nullBroker{addr: brLn.Addr().String()})
	p := &nullPeer{}
	p.nsSrv = remoting.NewServer(nsLn, ns.Handle, remoting.ServerOptions{Logger: log})
	p.brSrv = remoting.NewServer(brLn, p.handle, remoting.ServerOptions{Logger: log})
	go p.nsSrv.Serve()
	go p.brSrv.Serve()
	p.rocketPeer = &rocketPeer{ns: nsLn.Addr().String()}
	if err := p.startProducers(conns); err != nil {
		p.close()
		return nil, err
	}
	return p, nil
}

// handle answers sends as tide's broker would (the same extension fields) and everything else with success.
func (p *nullPeer) handle(_ *remoting.Conn, req *remoting.Command) *remoting.Command {
	resp := remoting.NewResponse(req, remoting.Success, "")
	switch req.Code {
	case remoting.SendMessage, remoting.SendMessageV2:
		resp.SetExt("msgId", "7F00000100002A9F000000000000BEEF")
		resp.SetExt("queueId", "0")
		resp.SetExt("queueOffset", strconv.FormatInt(p.offset.Add(1), 10))
		resp.SetExt("MSG_REGION", "DefaultRegion")
		resp.SetExt("TRACE_ON", "true")
	}
	return resp
}

func (p *nullPeer) prepare(string) error { return nil }

func (p *nullPeer) subscribe(string, func([]byte)) (func(), error) { return nil, errNoConsumer }

func (p *nullPeer) close() {
	if p.rocketPeer != nil {
		p.rocketPeer.close() // producers only: rocketPeer.srv is nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = p.brSrv.Shutdown(ctx)
	_ = p.nsSrv.Shutdown(ctx)
}
