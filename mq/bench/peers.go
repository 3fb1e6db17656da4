package bench

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/apache/rocketmq-client-go/v2"
	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/apache/rocketmq-client-go/v2/producer"
	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/tide-run/tide/mq"
	"github.com/tide-run/tide/mq/admin"
	"github.com/tide-run/tide/mq/mqmeta"
)

// peer is one messaging system under test: a server started in this process and a client of it.
type peer interface {
	// prepare creates the topic (stream) the phases use.
	prepare(topic string) error
	// send sends one message synchronously for sender w: it returns once the server acknowledged it as stored.
	// Sender w uses client connection w mod the peer's connection count.
	send(ctx context.Context, w int, topic string, body []byte) error
	// subscribe delivers every message of topic stored from now on to fn until stop is called.
	subscribe(topic string, fn func(body []byte)) (stop func(), err error)
	close()
}

// rocketPeer is tide's embedded broker driven by the official RocketMQ Go client: one started in this process
// (srv), or a `tide broker` process reached through its name server (srv nil, ns set).
type rocketPeer struct {
	srv   *mq.Server
	ns    string
	prods []rocketmq.Producer // one connection each: the client shares one connection per instance name
	n     int
}

func newRocketPeer(dir string, sync bool, conns int) (*rocketPeer, error) {
	mode := mq.FlushAsync
	if sync {
		mode = mq.FlushSync
	}
	srv, err := mq.New(mq.Options{DataDir: dir, FlushMode: mode, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		return nil, err
	}
	if err := srv.Start(context.Background()); err != nil {
		return nil, err
	}
	r := &rocketPeer{srv: srv, ns: srv.NameServerAddr()}
	if err := r.startProducers(conns); err != nil {
		return nil, err
	}
	return r, nil
}

// newRemoteRocketPeer drives the broker behind the name server at ns, which runs in another process.
func newRemoteRocketPeer(ns string, conns int) (*rocketPeer, error) {
	r := &rocketPeer{ns: ns}
	if err := r.startProducers(conns); err != nil {
		return nil, err
	}
	return r, nil
}

func (r *rocketPeer) startProducers(conns int) error {
	for i := 0; i < conns; i++ {
		p, err := rocketmq.NewProducer(producer.WithNameServer([]string{r.ns}), producer.WithRetry(0),
			producer.WithInstanceName(fmt.Sprintf("tide-bench-%d-%d", time.Now().UnixNano(), i)), producer.WithSendMsgTimeout(10*time.Second))
		if err == nil {
			err = p.Start()
		}
		if err != nil {
			r.close()
			return err
		}
		r.prods = append(r.prods, p)
	}
	return nil
}

func (r *rocketPeer) prepare(topic string) error {
	// 8 queues: enough for 32 senders to spread over, as a RocketMQ deployment would configure.
	if r.srv != nil {
		return r.srv.CreateTopic(mqmeta.TopicConfig{TopicName: topic, ReadQueueNums: 8, WriteQueueNums: 8, Perm: mqmeta.PermRW})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := admin.Dial(ctx, r.ns)
	if err != nil {
		return err
	}
	defer c.Close()
	return c.CreateTopic(ctx, topic, 8)
}

func (r *rocketPeer) send(ctx context.Context, w int, topic string, body []byte) error {
	res, err := r.prods[w%len(r.prods)].SendSync(ctx, primitive.NewMessage(topic, body))
	if err != nil {
		return err
	}
	if res.Status != primitive.SendOK {
		return fmt.Errorf("send status %d", res.Status)
	}
	return nil
}

func (r *rocketPeer) subscribe(topic string, fn func([]byte)) (func(), error) {
	r.n++
	c, err := rocketmq.NewPushConsumer(consumer.WithNameServer([]string{r.ns}),
		consumer.WithGroupName(fmt.Sprintf("bench-%s-%d", topic, r.n)), consumer.WithConsumeFromWhere(consumer.ConsumeFromFirstOffset),
		consumer.WithInstance(fmt.Sprintf("tide-bench-c-%d", time.Now().UnixNano())))
	if err != nil {
		return nil, err
	}
	err = c.Subscribe(topic, consumer.MessageSelector{}, func(_ context.Context, msgs ...*primitive.MessageExt) (consumer.ConsumeResult, error) {
		for _, m := range msgs {
			fn(m.Body)
		}
		return consumer.ConsumeSuccess, nil
	})
	if err == nil {
		err = c.Start()
	}
	if err != nil {
		return nil, err
	}
	return func() { _ = c.Shutdown() }, nil
}

func (r *rocketPeer) close() {
	for _, p := range r.prods {
		_ = p.Shutdown()
	}
	if r.srv == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = r.srv.Shutdown(ctx)
}

// jetPeer is an embedded nats-server with JetStream file storage, driven by the nats.go client.
type jetPeer struct {
	srv *natsserver.Server
	ncs []*nats.Conn
	jss []nats.JetStreamContext // one per connection; jss[0] also creates streams and subscribes
}

// newJetPeer matches the broker's durability: sync mode fsyncs every write (SyncAlways), async mode fsyncs on the
// broker's flush interval (500 ms) instead of JetStream's default 2 minutes.
func newJetPeer(dir string, sync bool, conns int) (*jetPeer, error) {
	opts := &natsserver.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: filepath.Join(dir, "jetstream"),
		NoLog: true, NoSigs: true, SyncInterval: 500 * time.Millisecond, SyncAlways: sync, HTTPPort: 0}
	srv, err := natsserver.NewServer(opts)
	if err != nil {
		return nil, err
	}
	go srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		srv.Shutdown()
		return nil, fmt.Errorf("nats-server not ready within 10s")
	}
	j := &jetPeer{srv: srv}
	for i := 0; i < conns; i++ {
		nc, err := nats.Connect(srv.ClientURL())
		if err != nil {
			j.close()
			return nil, err
		}
		j.ncs = append(j.ncs, nc)
		js, err := nc.JetStream(nats.MaxWait(10 * time.Second))
		if err != nil {
			j.close()
			return nil, err
		}
		j.jss = append(j.jss, js)
	}
	return j, nil
}

func streamName(topic string) string { return "S_" + strings.ReplaceAll(topic, ".", "_") }

func (j *jetPeer) prepare(topic string) error {
	_, err := j.jss[0].AddStream(&nats.StreamConfig{Name: streamName(topic), Subjects: []string{topic}, Storage: nats.FileStorage})
	return err
}

func (j *jetPeer) send(ctx context.Context, w int, topic string, body []byte) error {
	_, err := j.jss[w%len(j.jss)].Publish(topic, body, nats.Context(ctx))
	return err
}

func (j *jetPeer) subscribe(topic string, fn func([]byte)) (func(), error) {
	sub, err := j.jss[0].Subscribe(topic, func(m *nats.Msg) { fn(m.Data) }, nats.DeliverAll(), nats.AckNone())
	if err != nil {
		return nil, err
	}
	return func() { _ = sub.Unsubscribe() }, nil
}

func (j *jetPeer) close() {
	for _, nc := range j.ncs {
		nc.Close()
	}
	j.srv.Shutdown()
	j.srv.WaitForShutdown()
}

// remotingPeer is tide's broker with the sends made by tide's own remoting client (mq/admin: one write per frame)
// instead of the official client (several small writes per frame), to separate the broker's cost from the
// client's. Consumption still uses the official push consumer.
type remotingPeer struct {
	*rocketPeer
	adms []*admin.Client
	q    atomic.Uint32
}

func newRemotingPeer(dir string, sync bool, conns int) (*remotingPeer, error) {
	rp, err := newRocketPeer(dir, sync, 1) // the official producer only warms routes; sends go through adms
	if err != nil {
		return nil, err
	}
	r := &remotingPeer{rocketPeer: rp}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for i := 0; i < conns; i++ {
		adm, err := admin.Dial(ctx, rp.srv.NameServerAddr())
		if err != nil {
			r.close()
			return nil, err
		}
		r.adms = append(r.adms, adm)
	}
	return r, nil
}

func (r *remotingPeer) send(ctx context.Context, w int, topic string, body []byte) error {
	_, err := r.adms[w%len(r.adms)].Send(ctx, admin.SendRequest{Topic: topic, Body: body, QueueID: int32(r.q.Add(1) % 8), ProducerGroup: "tide-bench"})
	return err
}

func (r *remotingPeer) close() {
	for _, a := range r.adms {
		_ = a.Close()
	}
	r.rocketPeer.close()
}
