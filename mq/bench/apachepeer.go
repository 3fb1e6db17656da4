package bench

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"github.com/apache/rocketmq-client-go/v2/primitive"

	"github.com/tide-run/tide/internal/apachetest"
)

// PeerApache is Apache RocketMQ itself (5.5.0 from Maven Central, a name server and a proxy in local mode with the
// broker in its JVM; test/apache/rocketmq), driven by the same official Go client as PeerRocketMQ, with the same
// flush policy. Not run by default: it needs a JDK and Maven.
const PeerApache = "apache"

// apachePeer is a rocketPeer against a running Apache cluster, which it stops on close.
type apachePeer struct {
	*rocketPeer
	cluster *apachetest.Cluster
	// ready is how long the cluster took from exec of the script to its broker registered with the name server;
	// idle its JVMs' resident memory idleWait later, before any load.
	ready time.Duration
	idle  rss
}

func newApachePeer(dir string, sync bool, conns int, idleWait time.Duration) (*apachePeer, error) {
	opts := apachetest.Options{JavaOpts: apacheJavaOpts}
	if sync {
		opts.BrokerConf = []string{"flushDiskType=SYNC_FLUSH"}
	}
	t0 := time.Now()
	c, err := apachetest.Launch(filepath.Join(dir, "apache"), 4*time.Minute, opts)
	if err != nil {
		return nil, fmt.Errorf("starting Apache RocketMQ: %w", err)
	}
	ready := time.Since(t0)
	time.Sleep(idleWait)
	idle, err := clusterRSS(c)
	if err != nil {
		_ = c.Stop()
		return nil, err
	}
	r, err := newRemoteRocketPeer(c.NameServer, conns)
	if err != nil {
		_ = c.Stop()
		return nil, err
	}
	a := &apachePeer{rocketPeer: r, cluster: c, ready: ready, idle: idle}
	if err := warmUpPeer(a, "bench-warmup", apacheWarmUp); err != nil {
		a.close()
		return nil, err
	}
	return a, nil
}

// apacheWarmUp is how long Apache is loaded before it is measured (warmUpPeer).
const apacheWarmUp = 20 * time.Second

// apacheJavaOpts: a 1 GiB heap and the full JIT (the test defaults are small and C1-only, tuned for start-up);
// Apache's own scripts default to 8 GiB, which this 2-core machine's benchmarks do not need.
var apacheJavaOpts = []string{"-Xms1g", "-Xmx1g", "-XX:MaxDirectMemorySize=1g"}

// prepare creates the topic and waits until the name server routes it: Apache's broker registers a new topic with
// the name server in the background, and a send before that fails with "route info not found".
func (a *apachePeer) prepare(topic string) error {
	if err := a.rocketPeer.prepare(topic); err != nil {
		return err
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, err := a.prods[0].SendSync(ctx, primitive.NewMessage(topic, []byte("route probe")))
		cancel()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("topic %s has no route on Apache after 60 s: %w", topic, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// clusterRSS sums the resident memory of the cluster's JVMs.
func clusterRSS(c *apachetest.Cluster) (rss, error) {
	pids, err := c.PIDs()
	if err != nil {
		return rss{}, err
	}
	var sum rss
	for _, pid := range pids {
		r, err := vmRSS(pid)
		if err != nil {
			return rss{}, err
		}
		sum.total, sum.anon, sum.file = sum.total+r.total, sum.anon+r.anon, sum.file+r.file
	}
	return sum, nil
}

// startup reports the cluster's ready time, its idle resident memory and its resident memory now.
func (a *apachePeer) startup() (time.Duration, rss, rss) {
	now, _ := clusterRSS(a.cluster)
	return a.ready, a.idle, now
}

func (a *apachePeer) close() {
	a.rocketPeer.close()
	_ = a.cluster.Stop()
}
