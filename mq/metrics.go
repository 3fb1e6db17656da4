package mq

import (
	"errors"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tide-run/tide/mq/internal/broker"
	"github.com/tide-run/tide/mq/mqmeta"
	"github.com/tide-run/tide/mq/remoting"
)

// The embedded broker's Prometheus metrics (docs/observability.md). Names and labels follow Apache RocketMQ 5's
// broker metrics (BrokerMetricsConstant, RemotingMetricsConstant, DefaultStoreMetricsConstant) where Apache has
// the metric, so dashboards and alerts written for Apache fit; what Apache lacks is tide_mq_*. Each series carries
// Apache's node labels (cluster, node_type, node_id). Latencies are milliseconds where Apache's are (rpc latency),
// seconds elsewhere (Prometheus' convention).
//
// Cost: counting happens on the broker's paths only after RegisterMetrics (atomic adds on per-series entries, one
// clock read per request for rpc latency); lag, in-flight messages, connections and storage are computed when
// Prometheus scrapes, from the broker's own tables.

// MaxQueueLagSeries caps the per-queue lag series (tide_mq_consumer_queue_lag_messages) of one scrape; the
// per-topic lag (rocketmq_consumer_lag_messages) is always complete.
const MaxQueueLagSeries = 2000

// ErrMetricsAfterStart: RegisterMetrics was called after Start.
var ErrMetricsAfterStart = errors.New("mq: RegisterMetrics must be called before Start")

type metrics struct {
	counters *broker.Counters
	rpc      *prometheus.HistogramVec
	flush    prometheus.Histogram
	// observers caches rpc's children by (request code, response code, long poll): WithLabelValues hashes its
	// labels on every call, a sync.Map of a packed key is cheaper on the request path.
	observers sync.Map // uint64 -> prometheus.Observer
}

// RegisterMetrics registers the broker's collectors on reg (one registry per server: nothing is registered
// globally). Call it before Start; the broker counts traffic only when it was called.
func (s *Server) RegisterMetrics(reg prometheus.Registerer) error {
	if s.ready.Load() || s.broker != nil {
		return ErrMetricsAfterStart
	}
	node := prometheus.Labels{"cluster": "DefaultCluster", "node_type": "broker", "node_id": "broker-a"}
	m := &metrics{
		counters: &broker.Counters{},
		rpc: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "rocketmq_rpc_latency",
			Help:        "Time from a request's arrival to its response being queued, in milliseconds (Apache RocketMQ 5's remoting rpc latency).",
			ConstLabels: node, Buckets: []float64{1, 3, 5, 10, 100, 1000, 3000}},
			[]string{"protocol_type", "request_code", "response_code", "is_long_polling"}),
		flush: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "tide_mq_flush_duration_seconds",
			Help:    "Duration of each fsync of the commit log.",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1}}),
	}
	for _, c := range []prometheus.Collector{m.rpc, m.flush, &collector{s: s, m: m, node: node}} {
		if err := reg.Register(c); err != nil {
			return err
		}
	}
	s.metrics = m
	return nil
}

// onReply observes one answered broker request (remoting.ServerOptions.OnReply).
func (m *metrics) onReply(req, resp *remoting.Command, elapsed time.Duration) {
	long := req.Code == remoting.PullMessage && isLongPoll(req)
	key := uint64(uint16(req.Code))<<17 | uint64(uint16(resp.Code))<<1
	if long {
		key |= 1
	}
	o, ok := m.observers.Load(key)
	if !ok {
		o, _ = m.observers.LoadOrStore(key, m.rpc.WithLabelValues("remoting", requestCodeName(req.Code),
			responseCodeName(resp.Code), strconv.FormatBool(long)))
	}
	o.(prometheus.Observer).Observe(float64(elapsed) / float64(time.Millisecond))
}

func (m *metrics) onFlush(d time.Duration, _ int64) { m.flush.Observe(d.Seconds()) }

// isLongPoll reports whether a pull may be suspended (sysFlag's suspend bit), as Apache's is_long_polling label.
func isLongPoll(req *remoting.Command) bool {
	f, err := strconv.ParseInt(req.ExtFields["sysFlag"], 10, 32)
	return err == nil && f&2 != 0
}

// requestCodeName is Apache's request_code label (RequestCode's constant, lower case); codes tide does not serve
// are "other", so a peer sending arbitrary codes cannot add series.
func requestCodeName(code int16) string {
	if n, ok := requestCodeNames[code]; ok {
		return n
	}
	return "other"
}

var requestCodeNames = map[int16]string{
	remoting.SendMessage: "send_message", remoting.PullMessage: "pull_message", remoting.QueryMessage: "query_message",
	remoting.QueryConsumerOffset: "query_consumer_offset", remoting.UpdateConsumerOffset: "update_consumer_offset",
	remoting.UpdateAndCreateTopic: "update_and_create_topic", remoting.GetAllTopicConfig: "get_all_topic_config",
	remoting.SearchOffsetByTimestamp: "search_offset_by_timestamp", remoting.GetMaxOffset: "get_max_offset",
	remoting.GetMinOffset: "get_min_offset", remoting.ViewMessageByID: "view_message_by_id",
	remoting.HeartBeat: "heart_beat", remoting.UnregisterClient: "unregister_client",
	remoting.ConsumerSendMsgBack: "consumer_send_msg_back", remoting.EndTransaction: "end_transaction",
	remoting.GetConsumerListByGroup: "get_consumer_list_by_group", remoting.LockBatchMQ: "lock_batch_mq",
	remoting.UnlockBatchMQ: "unlock_batch_mq", remoting.CheckClientConfig: "check_client_config",
	remoting.UpdateAndCreateSubscription:   "update_and_create_subscriptiongroup",
	remoting.GetAllSubscriptionGroupConfig: "get_all_subscriptiongroup_config",
	remoting.DeleteSubscriptionGroup:       "delete_subscriptiongroup", remoting.GetConsumeStats: "get_consume_stats",
	remoting.DeleteTopicInBroker: "delete_topic_in_broker", remoting.InvokeBrokerToResetOffset: "invoke_broker_to_reset_offset",
	remoting.SendBatchMessage: "send_batch_message", remoting.SendReplyMessage: "send_reply_message",
	remoting.SendReplyMessageV2: "send_reply_message_v2", remoting.SendMessageV2: "send_message_v2",
}

func responseCodeName(code int16) string {
	if n, ok := responseCodeNames[code]; ok {
		return n
	}
	return "other"
}

var responseCodeNames = map[int16]string{
	remoting.Success: "success", remoting.SystemError: "system_error", remoting.SystemBusy: "system_busy",
	remoting.RequestCodeNotSupported: "request_code_not_supported", remoting.FlushDiskTimeout: "flush_disk_timeout",
	remoting.MessageIllegal: "message_illegal", remoting.ServiceNotAvailable: "service_not_available",
	remoting.NoPermission: "no_permission", remoting.TopicNotExist: "topic_not_exist",
	remoting.PullNotFound: "pull_not_found", remoting.PullRetryImmediately: "pull_retry_immediately",
	remoting.PullOffsetMoved: "pull_offset_moved", remoting.QueryNotFound: "query_not_found",
	remoting.SubscriptionParseFailed: "subscription_parse_failed", remoting.SubscriptionNotExist: "subscription_not_exist",
}

// collector computes the scrape-time metrics from the broker's counters and tables.
type collector struct {
	s    *Server
	m    *metrics
	node prometheus.Labels
	d    descs
	once sync.Once
}

type descs struct {
	msgsIn, msgsOut, bytesIn, bytesOut, size, dlq, lag, queueLag, inflight, ready, prodConns, consConns,
	storage, flushBehind, reserve, conns, connEvents *prometheus.Desc
}

func (c *collector) descs() *descs {
	c.once.Do(func() {
		n := func(name, help string, labels ...string) *prometheus.Desc {
			return prometheus.NewDesc(name, help, labels, c.node)
		}
		c.d = descs{
			msgsIn:      n("rocketmq_messages_in_total", "Messages produced, by topic and message type.", "topic", "message_type"),
			bytesIn:     n("rocketmq_throughput_in_total", "Message body bytes produced.", "topic", "message_type"),
			size:        n("rocketmq_message_size", "Size of produced message bodies, in bytes.", "topic", "message_type"),
			msgsOut:     n("rocketmq_messages_out_total", "Messages pulled by consumers, by topic and consumer group.", "topic", "consumer_group"),
			bytesOut:    n("rocketmq_throughput_out_total", "Bytes pulled by consumers (stored messages).", "topic", "consumer_group"),
			dlq:         n("rocketmq_send_to_dlq_messages_total", "Messages moved to a group's dead-letter queue, by original topic.", "topic", "consumer_group"),
			lag:         n("rocketmq_consumer_lag_messages", "Messages not yet consumed (committed) by a group, per topic.", "topic", "consumer_group", "is_retry", "is_system"),
			queueLag:    n("tide_mq_consumer_queue_lag_messages", "Messages not yet consumed by a group, per topic queue (at most 2000 series).", "topic", "consumer_group", "queue_id"),
			inflight:    n("rocketmq_consumer_inflight_messages", "Messages pulled by a group's consumers but not yet committed.", "topic", "consumer_group", "is_retry", "is_system"),
			ready:       n("rocketmq_consumer_ready_messages", "Messages stored but not yet pulled by a group.", "topic", "consumer_group", "is_retry", "is_system"),
			prodConns:   n("rocketmq_producer_connections", "Connections of registered producers."),
			consConns:   n("rocketmq_consumer_connections", "Connections of a consumer group's consumers.", "consumer_group"),
			storage:     n("rocketmq_storage_size", "Bytes of the commit log on disk.", "storage_type", "storage_medium"),
			flushBehind: n("rocketmq_storage_flush_behind_bytes", "Commit-log bytes written but not yet fsynced."),
			reserve:     n("rocketmq_storage_message_reserve_time", "Age of the oldest stored message, in milliseconds."),
			conns:       prometheus.NewDesc("tide_mq_connections", "Connections open now, by listener.", []string{"listener"}, nil),
			connEvents:  prometheus.NewDesc("tide_mq_connections_closed_total", "Connections refused or closed by the server's defences, by listener and reason.", []string{"listener", "reason"}, nil),
		}
	})
	return &c.d
}

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	d := c.descs()
	for _, x := range []*prometheus.Desc{d.msgsIn, d.bytesIn, d.size, d.msgsOut, d.bytesOut, d.dlq, d.lag, d.queueLag,
		d.inflight, d.ready, d.prodConns, d.consConns, d.storage, d.flushBehind, d.reserve, d.conns, d.connEvents} {
		ch <- x
	}
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	if !c.s.ready.Load() {
		return // not started, or shut down: nothing to read
	}
	d := c.descs()
	counter := func(desc *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(desc, prometheus.CounterValue, float64(v), labels...)
	}
	gauge := func(desc *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(desc, prometheus.GaugeValue, v, labels...)
	}
	cs := c.m.counters
	cs.RangeIn(func(topic string, typ broker.MessageType, st *broker.InStats) {
		t := typ.String()
		n := st.Messages.Load()
		bytes := st.Bytes.Load()
		counter(d.msgsIn, n, topic, t)
		counter(d.bytesIn, bytes, topic, t)
		buckets := make(map[float64]uint64, len(broker.SizeBuckets))
		var cum uint64
		for i, ub := range broker.SizeBuckets {
			cum += st.Sizes[i].Load()
			buckets[float64(ub)] = cum
		}
		ch <- prometheus.MustNewConstHistogram(d.size, n, float64(bytes), buckets, topic, t)
	})
	cs.RangeOut(func(topic, group string, st *broker.OutStats) {
		counter(d.msgsOut, st.Messages.Load(), topic, group)
		counter(d.bytesOut, st.Bytes.Load(), topic, group)
	})
	cs.RangeDLQ(func(topic, group string, n uint64) { counter(d.dlq, n, topic, group) })

	c.collectLag(ch, d)

	prod, cons := c.s.broker.Connections()
	gauge(d.prodConns, float64(prod))
	for g, n := range cons {
		gauge(d.consConns, float64(n), g)
	}

	st := c.s.st.Stats()
	gauge(d.storage, float64(st.Bytes), "local", "disk")
	gauge(d.flushBehind, float64(max(st.WriteOffset-st.FlushedOffset, 0)))
	if st.WriteOffset > st.MinOffset {
		if m, _, err := c.s.st.ReadMessage(st.MinOffset); err == nil && m.StoreTimestamp > 0 {
			gauge(d.reserve, float64(max(c.s.now().UnixMilli()-m.StoreTimestamp, 0)))
		}
	}
	for _, l := range []struct {
		name string
		st   remoting.ServerStats
	}{{"namesrv", c.s.nsSrv.Stats()}, {"broker", c.s.brSrv.Stats()}} {
		gauge(d.conns, float64(l.st.Open), l.name)
		for _, r := range []struct {
			reason string
			n      uint64
		}{{"refused", l.st.Refused}, {"idle", l.st.IdleClosed}, {"frame_timeout", l.st.FrameTimeouts}, {"bad_frame", l.st.BadFrames}} {
			counter(d.connEvents, r.n, l.name, r.reason)
		}
	}
}

// collectLag reports, per consumer group and topic, the lag (max offset - committed offset), and where the
// group has pulled, the messages in flight (pulled - committed) and ready (max - pulled), from the broker's
// offset tables at scrape time.
func (c *collector) collectLag(ch chan<- prometheus.Metric, d *descs) {
	b := c.s.broker
	pulled := b.PulledOffsets()
	queueSeries := 0
	for group := range b.GroupConfigs() {
		type agg struct{ lag, inflight, ready int64 }
		per := map[string]*agg{}
		for _, q := range b.ConsumeStats(group, "") {
			a := per[q.Topic]
			if a == nil {
				a = &agg{}
				per[q.Topic] = a
			}
			a.lag += max(q.Lag, 0)
			if queueSeries < MaxQueueLagSeries {
				queueSeries++
				ch <- prometheus.MustNewConstMetric(d.queueLag, prometheus.GaugeValue, float64(max(q.Lag, 0)), q.Topic, group, strconv.Itoa(int(q.QueueID)))
			}
			if off, ok := pulled[group][q.Topic][q.QueueID]; ok {
				committed := max(q.ConsumerOffset, 0)
				a.inflight += max(off-committed, 0)
				a.ready += max(q.BrokerOffset-max(off, committed), 0)
			} else {
				a.ready += max(q.Lag, 0)
			}
		}
		for topic, a := range per {
			retry := strconv.FormatBool(strings.HasPrefix(topic, mqmeta.RetryPrefix))
			system := strconv.FormatBool(mqmeta.IsSystemTopic(topic) || isSystemGroup(group))
			ch <- prometheus.MustNewConstMetric(d.lag, prometheus.GaugeValue, float64(a.lag), topic, group, retry, system)
			ch <- prometheus.MustNewConstMetric(d.inflight, prometheus.GaugeValue, float64(a.inflight), topic, group, retry, system)
			ch <- prometheus.MustNewConstMetric(d.ready, prometheus.GaugeValue, float64(a.ready), topic, group, retry, system)
		}
	}
}

// isSystemGroup: the broker's own groups (Apache's MixAll system consumer groups start with CID_RMQ_SYS_ or are
// TOOLS_CONSUMER and friends).
func isSystemGroup(g string) bool {
	return strings.HasPrefix(g, "CID_RMQ_SYS_") || g == "TOOLS_CONSUMER" || g == "FILTERSRV_CONSUMER" ||
		g == "__MONITOR_CONSUMER" || g == "CID_ONS-HTTP-PROXY" || g == "CID_ONSAPI_PERMISSION" ||
		g == "CID_ONSAPI_OWNER" || g == "CID_ONSAPI_PULL" || g == "SELF_TEST_C_GROUP"
}
