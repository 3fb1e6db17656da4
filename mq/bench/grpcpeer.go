package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"sync"
	"time"

	rmq "github.com/apache/rocketmq-clients/golang/v5"

	"github.com/tide-run/tide/internal/apachetest"
	"github.com/tide-run/tide/mq"
	"github.com/tide-run/tide/mq/admin"
	"github.com/tide-run/tide/mq/mqmeta"
)

// The RocketMQ 5 peers: the official Go 5.x client (github.com/apache/rocketmq-clients/golang/v5, gRPC) against
// tide's gRPC endpoint and against Apache's proxy, with the same phases as the 4.x peers: synchronous sends from
// Options.Senders goroutines over Options.Connections producers, and a push consumer for produce-to-consume
// latency. Topics are NORMAL topics (message.type=NORMAL, as `tide mq topic create --type normal` and mqadmin's
// `updateTopic -a +message.type=NORMAL` make them) with 8 queues.
const (
	// PeerRocketMQ5 is tide's embedded broker through its gRPC endpoint.
	PeerRocketMQ5 = "rocketmq5"
	// PeerApache5 is Apache RocketMQ 5.5.0 (as PeerApache) through its proxy's gRPC endpoint. Not run by default:
	// it needs a JDK and Maven.
	PeerApache5 = "apache5"
)

// benchTopics are the topics runPeer's phases use; the 5.x producers declare them at start (a 5.x producer's
// Start waits for its settings to be synced with the endpoints of its declared topics).
var benchTopics = []string{"bench-peak", "bench-send-only", "bench-half"}

type grpc5Peer struct {
	srv      *mq.Server          // tide in this process (rocketmq5), or nil
	cluster  *apachetest.Cluster // Apache (apache5), or nil
	endpoint string              // the gRPC endpoint
	ns       string              // the name server, to create topics over the remoting protocol
	prods    []rmq.Producer
	n        int
	// ready and idle: Apache's start-up, as apachePeer measures it.
	ready time.Duration
	idle  rss
}

func newTide5Peer(dir string, sync bool, conns int) (*grpc5Peer, error) {
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
	g := &grpc5Peer{srv: srv, endpoint: srv.GRPCAddr(), ns: srv.NameServerAddr()}
	if err := g.start(conns); err != nil {
		g.close()
		return nil, err
	}
	return g, nil
}

func newApache5Peer(dir string, sync bool, conns int, idleWait time.Duration) (*grpc5Peer, error) {
	opts := apachetest.Options{JavaOpts: apacheJavaOpts}
	if sync {
		opts.BrokerConf = []string{"flushDiskType=SYNC_FLUSH"}
	}
	t0 := time.Now()
	c, err := apachetest.Launch(filepath.Join(dir, "apache"), 4*time.Minute, opts)
	if err != nil {
		return nil, fmt.Errorf("starting Apache RocketMQ: %w", err)
	}
	g := &grpc5Peer{cluster: c, endpoint: c.GRPC, ns: c.NameServer, ready: time.Since(t0)}
	time.Sleep(idleWait)
	if g.idle, err = clusterRSS(c); err != nil {
		g.close()
		return nil, err
	}
	if err := g.start(conns); err != nil {
		g.close()
		return nil, err
	}
	if err := warmUpPeer(g, "bench-warmup", apacheWarmUp); err != nil {
		g.close()
		return nil, err
	}
	return g, nil
}

// start creates the bench topics and starts conns producers declaring them (one gRPC connection each: every
// 5.x client has its own). Apache registers a new topic with its name server in the background, so a producer
// whose route query finds no topic yet is started again until the deadline.
func (g *grpc5Peer) start(conns int) error {
	for _, t := range benchTopics {
		if err := g.prepare(t); err != nil {
			return fmt.Errorf("creating %s: %w", t, err)
		}
	}
	deadline := time.Now().Add(60 * time.Second)
	for i := 0; i < conns; i++ {
		for {
			p, err := rmq.NewProducer(&rmq.Config{Endpoint: g.endpoint}, rmq.WithTopics(benchTopics...), rmq.WithMaxAttempts(1))
			if err != nil {
				return err
			}
			if err = p.Start(); err == nil {
				g.prods = append(g.prods, p)
				break
			}
			_ = p.GracefulStop()
			if time.Now().After(deadline) {
				return fmt.Errorf("starting a 5.x producer on %s: %w", g.endpoint, err)
			}
			time.Sleep(500 * time.Millisecond)
		}
	}
	return nil
}

// prepare creates a NORMAL topic with 8 queues (for Apache, through its broker, then waits until the proxy routes it).
func (g *grpc5Peer) prepare(topic string) error {
	if g.srv != nil {
		return g.srv.CreateTopic(mqmeta.TopicConfig{TopicName: topic, ReadQueueNums: 8, WriteQueueNums: 8, Perm: mqmeta.PermRW,
			Attributes: map[string]string{mqmeta.AttrMessageType: mqmeta.MessageTypeNormal}})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := admin.Dial(ctx, g.ns)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.CreateTopicWithAttributes(ctx, topic, 8, "+"+mqmeta.AttrMessageType+"="+mqmeta.MessageTypeNormal); err != nil {
		return err
	}
	if len(g.prods) == 0 {
		return nil // start's producers wait for the route themselves
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, err := g.prods[0].Send(sctx, &rmq.Message{Topic: topic, Body: []byte("route probe")})
		cancel()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("topic %s has no route on %s after 60 s: %w", topic, g.endpoint, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func (g *grpc5Peer) send(ctx context.Context, w int, topic string, body []byte) error {
	rs, err := g.prods[w%len(g.prods)].Send(ctx, &rmq.Message{Topic: topic, Body: body})
	if err != nil {
		return err
	}
	if len(rs) != 1 {
		return fmt.Errorf("%d send receipts for one message", len(rs))
	}
	return nil
}

// subscribe attaches a push consumer in a group of its own (the 5.x push consumer receives with long polling and
// acks each message after the listener returns). The group is created first: Apache's proxy refuses a 5.x
// consumer's settings for a group that does not exist ("group not found").
func (g *grpc5Peer) subscribe(topic string, fn func([]byte)) (func(), error) {
	g.n++
	group := fmt.Sprintf("bench5-%s-%d-%d", topic, g.n, time.Now().UnixNano())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	adm, err := admin.Dial(ctx, g.ns)
	if err != nil {
		return nil, err
	}
	err = adm.CreateGroup(ctx, mqmeta.GroupConfig{GroupName: group, ConsumeEnable: true, RetryQueueNums: 1, RetryMaxTimes: 16})
	_ = adm.Close()
	if err != nil {
		return nil, fmt.Errorf("creating group %s: %w", group, err)
	}
	c, err := rmq.NewPushConsumer(&rmq.Config{Endpoint: g.endpoint, ConsumerGroup: group},
		rmq.WithPushSubscriptionExpressions(map[string]*rmq.FilterExpression{topic: rmq.SUB_ALL}),
		rmq.WithPushAwaitDuration(5*time.Second),
		rmq.WithPushMessageListener(&rmq.FuncMessageListener{Consume: func(mv *rmq.MessageView) rmq.ConsumerResult {
			fn(mv.GetBody())
			return rmq.SUCCESS
		}}))
	if err != nil {
		return nil, err
	}
	if err := c.Start(); err != nil {
		return nil, err
	}
	// The 5.x push consumer's GracefulStop waits for its in-flight receives, long polls of up to 20-30 s: stop in
	// the background; closing the peer ends those polls.
	return func() { go func() { _ = c.GracefulStop() }() }, nil
}

// startup reports Apache's ready time, its idle resident memory and its resident memory now (apache5 only).
func (g *grpc5Peer) startup() (time.Duration, rss, rss) {
	if g.cluster == nil {
		return 0, rss{}, rss{}
	}
	now, _ := clusterRSS(g.cluster)
	return g.ready, g.idle, now
}

func (g *grpc5Peer) close() {
	for _, p := range g.prods {
		_ = p.GracefulStop()
	}
	if g.srv != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = g.srv.Shutdown(ctx)
	}
	if g.cluster != nil {
		_ = g.cluster.Stop()
	}
}

// warmUpPeer sends from 32 senders to a topic of its own for d: a JVM's JIT compiles the hot paths during the
// first seconds under load, and a short phase would otherwise measure the compiler competing for the cores.
func warmUpPeer(p peer, topic string, d time.Duration) error {
	if err := p.prepare(topic); err != nil {
		return err
	}
	body := make([]byte, 1024)
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		sent int
		last error
	)
	for w := range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				err := p.send(ctx, w, topic, body)
				mu.Lock()
				if err == nil {
					sent++
				} else if ctx.Err() == nil {
					last = err
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if sent == 0 && last != nil {
		return errors.Join(errors.New("warm-up: every send failed"), last)
	}
	return nil
}
