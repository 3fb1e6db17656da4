package broker

import (
	"encoding/json"
	"errors"
	"sort"
	"strconv"

	"github.com/tide-run/tide/mq/mqmeta"
	"github.com/tide-run/tide/mq/remoting"
)

func (b *Broker) handleQueryOffset(req *remoting.Command) *remoting.Command {
	f := req.ReadFields()
	group, topic, q := f.String("consumerGroup"), f.String("topic"), f.Int32("queueId")
	if f.Err != nil {
		return remoting.Errorf(req, remoting.SystemError, "%v", f.Err)
	}
	off, ok := b.cfg.offset(topic, group, q)
	if !ok {
		// Java: a group with no offset starts at 0 while the queue still holds its first message.
		if b.opts.DisableZeroOffsetForNewGroups || b.st.MinOffset(topic, q) > 0 {
			return remoting.Errorf(req, remoting.QueryNotFound, "Not found, V3_0_6_SNAPSHOT maybe this group consumer boot first")
		}
		off = 0
	}
	resp := remoting.NewResponse(req, remoting.Success, "")
	resp.SetExt("offset", strconv.FormatInt(off, 10))
	return resp
}

func (b *Broker) handleUpdateOffset(req *remoting.Command) *remoting.Command {
	f := req.ReadFields()
	group, topic, q, off := f.String("consumerGroup"), f.String("topic"), f.Int32("queueId"), f.Int64("commitOffset")
	if f.Err != nil {
		return remoting.Errorf(req, remoting.SystemError, "%v", f.Err)
	}
	if off >= 0 {
		b.cfg.setOffset(topic, group, q, off)
	}
	return remoting.NewResponse(req, remoting.Success, "")
}

func (b *Broker) handleMinMaxOffset(req *remoting.Command) *remoting.Command {
	f := req.ReadFields()
	topic, q := f.String("topic"), f.Int32("queueId")
	if f.Err != nil {
		return remoting.Errorf(req, remoting.SystemError, "%v", f.Err)
	}
	off := b.st.MaxOffset(topic, q)
	if req.Code == remoting.GetMinOffset {
		off = b.st.MinOffset(topic, q)
	}
	resp := remoting.NewResponse(req, remoting.Success, "")
	resp.SetExt("offset", strconv.FormatInt(off, 10))
	return resp
}

func (b *Broker) handleSearchOffset(req *remoting.Command) *remoting.Command {
	f := req.ReadFields()
	topic, q, ts := f.String("topic"), f.Int32("queueId"), f.Int64("timestamp")
	if f.Err != nil {
		return remoting.Errorf(req, remoting.SystemError, "%v", f.Err)
	}
	off, err := b.st.OffsetByTime(topic, q, ts)
	if err != nil {
		return remoting.Errorf(req, remoting.SystemError, "%v", err)
	}
	resp := remoting.NewResponse(req, remoting.Success, "")
	resp.SetExt("offset", strconv.FormatInt(off, 10))
	return resp
}

func (b *Broker) handleViewMessage(req *remoting.Command) *remoting.Command {
	f := req.ReadFields()
	off := f.Int64("offset")
	if f.Err != nil {
		return remoting.Errorf(req, remoting.SystemError, "%v", f.Err)
	}
	m, raw, err := b.st.ReadMessage(off)
	if err != nil || m.PhysicalOffset != off {
		// Java's remark; a position inside a record (or one retention removed) finds nothing.
		return remoting.Errorf(req, remoting.SystemError, "can not find message by the offset, %d", off)
	}
	resp := remoting.NewResponse(req, remoting.Success, "")
	resp.Body = raw
	return resp
}

func (b *Broker) handleCreateTopic(req *remoting.Command) *remoting.Command {
	f := req.ReadFields()
	t := mqmeta.TopicConfig{TopicName: f.String("topic"), ReadQueueNums: int(f.OptInt32("readQueueNums", 8)),
		WriteQueueNums: int(f.OptInt32("writeQueueNums", 8)), Perm: int(f.OptInt32("perm", mqmeta.PermRW)),
		Order: f.OptBool("order", false), TopicSysFlag: int(f.OptInt32("topicSysFlag", 0))}
	mod := f.OptString("attributes")
	if f.Err != nil {
		return remoting.Errorf(req, remoting.SystemError, "create topic: %v", f.Err)
	}
	var fail *remoting.Command
	if t.Attributes, fail = b.topicAttributes(req, t.TopicName, mod); fail != nil {
		return fail
	}
	if err := b.CreateTopic(t); err != nil {
		return remoting.Errorf(req, remoting.SystemError, "create topic: %v", err)
	}
	return remoting.NewResponse(req, remoting.Success, "")
}

func (b *Broker) handleDeleteTopic(req *remoting.Command) *remoting.Command {
	f := req.ReadFields()
	name := f.String("topic")
	if f.Err != nil {
		return remoting.Errorf(req, remoting.SystemError, "delete topic: %v", f.Err)
	}
	// Deleting a topic that does not exist succeeds, as on Apache's broker: deletion is idempotent, and clients
	// (mqadmin deleteSubscriptionGroup, the orphan sweep) delete a group's %RETRY% topic whether or not it was made.
	if err := b.DeleteTopic(name); err != nil && !errors.Is(err, errTopicNotExist) {
		return remoting.Errorf(req, remoting.SystemError, "delete topic: %v", err)
	}
	return remoting.NewResponse(req, remoting.Success, "")
}

func jsonResponse(req *remoting.Command, v any) *remoting.Command {
	body, err := json.Marshal(v)
	if err != nil {
		return remoting.Errorf(req, remoting.SystemError, "encode: %v", err)
	}
	resp := remoting.NewResponse(req, remoting.Success, "")
	resp.Body = body
	return resp
}

func (b *Broker) handleAllTopics(req *remoting.Command) *remoting.Command {
	return jsonResponse(req, map[string]any{"topicConfigTable": b.cfg.allTopics(), "dataVersion": map[string]int64{"counter": 0}})
}

func (b *Broker) handleCreateGroup(req *remoting.Command) *remoting.Command {
	g := mqmeta.GroupConfig{ConsumeEnable: true, ConsumeBroadcastEnable: true, RetryQueueNums: 1, RetryMaxTimes: 16}
	if err := json.Unmarshal(req.Body, &g); err != nil {
		return remoting.Errorf(req, remoting.SystemError, "group config body: %v", err)
	}
	if g.GroupName == "" {
		return remoting.Errorf(req, remoting.SystemError, "group config body: groupName: missing")
	}
	if err := b.cfg.putGroup(g); err != nil {
		return remoting.Errorf(req, remoting.SystemError, "%v", err)
	}
	return remoting.NewResponse(req, remoting.Success, "")
}

func (b *Broker) handleAllGroups(req *remoting.Command) *remoting.Command {
	return jsonResponse(req, map[string]any{"subscriptionGroupTable": b.cfg.allGroups(), "dataVersion": map[string]int64{"counter": 0}})
}

// handleDeleteGroup answers DELETE_SUBSCRIPTIONGROUP (207) as Java's AdminBrokerProcessor does: the group's
// subscription config goes; with cleanOffset (a RocketMQ 5.x header field, default false) its consumer offsets on every
// topic go too. An unknown group is not an error (SUCCESS either way).
func (b *Broker) handleDeleteGroup(req *remoting.Command) *remoting.Command {
	f := req.ReadFields()
	name := f.String("groupName")
	clean := f.OptBool("cleanOffset", false)
	if f.Err != nil {
		return remoting.Errorf(req, remoting.SystemError, "delete group: %v", f.Err)
	}
	if err := b.DeleteGroup(name, clean); err != nil {
		return remoting.Errorf(req, remoting.SystemError, "delete group %s: %v", name, err)
	}
	return remoting.NewResponse(req, remoting.Success, "")
}

// DeleteGroup removes a subscription group's config and, with cleanOffset, its consumer offsets, persisting both
// at once. Consumers of the group that are still connected are not told; their next heartbeat re-creates the
// config (as on Java), so callers stop the group's consumers first.
func (b *Broker) DeleteGroup(name string, cleanOffset bool) error {
	if _, err := b.cfg.deleteGroup(name); err != nil {
		return err
	}
	b.opts.Counters.ForgetGroup(name)
	if cleanOffset && b.cfg.deleteGroupOffsets(name) {
		return b.cfg.persistOffsets(true)
	}
	return nil
}

// GroupConfigs returns the subscription group configs (what GET_ALL_SUBSCRIPTIONGROUP_CONFIG lists).
func (b *Broker) GroupConfigs() map[string]mqmeta.GroupConfig { return b.cfg.allGroups() }

// GroupOffsets returns a group's committed offsets, topic -> queue -> offset.
func (b *Broker) GroupOffsets(group string) map[string]map[int32]int64 {
	return b.cfg.groupOffsets(group)
}

// ConsumeStats lists a group's offsets and lag per queue, for every topic it has offsets on (or just topic).
func (b *Broker) ConsumeStats(group, topic string) []mqmeta.QueueStat {
	offs := b.cfg.groupOffsets(group)
	if topic != "" {
		if _, ok := offs[topic]; !ok {
			offs = map[string]map[int32]int64{topic: {}}
		} else {
			offs = map[string]map[int32]int64{topic: offs[topic]}
		}
	}
	var out []mqmeta.QueueStat
	for tp, qs := range offs {
		t, ok := b.cfg.topic(tp)
		if !ok {
			continue
		}
		for q := 0; q < max(t.ReadQueueNums, t.WriteQueueNums); q++ {
			qs2 := mqmeta.QueueStat{Topic: tp, BrokerName: b.opts.BrokerName, QueueID: int32(q), BrokerOffset: b.st.MaxOffset(tp, int32(q))}
			if off, ok := qs[int32(q)]; ok {
				qs2.ConsumerOffset = off
			} else {
				qs2.ConsumerOffset = -1
			}
			if qs2.ConsumerOffset >= 0 {
				qs2.Lag = qs2.BrokerOffset - qs2.ConsumerOffset
			} else {
				qs2.Lag = qs2.BrokerOffset - b.st.MinOffset(tp, int32(q))
			}
			out = append(out, qs2)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Topic != out[j].Topic {
			return out[i].Topic < out[j].Topic
		}
		return out[i].QueueID < out[j].QueueID
	})
	return out
}

func (b *Broker) handleConsumeStats(req *remoting.Command) *remoting.Command {
	f := req.ReadFields()
	group := f.String("consumerGroup")
	topic := f.OptString("topic")
	if f.Err != nil {
		return remoting.Errorf(req, remoting.SystemError, "%v", f.Err)
	}
	return bodyResponse(req, consumeStatsBody(b.ConsumeStats(group, topic)))
}

// ResetOffset sets a group's offsets on topic to the first message stored at or after ts (ms); ts 0 means the
// earliest offset and ts -1 the latest. It returns the new offsets and tells running consumers to switch.
func (b *Broker) ResetOffset(group, topic string, ts int64) ([]mqmeta.QueueStat, error) {
	t, ok := b.cfg.topic(topic)
	if !ok {
		return nil, errTopicNotExist
	}
	var out []mqmeta.QueueStat
	for q := int32(0); int(q) < max(t.ReadQueueNums, t.WriteQueueNums); q++ {
		var off int64
		switch {
		case ts == 0:
			off = b.st.MinOffset(topic, q)
		case ts < 0:
			off = b.st.MaxOffset(topic, q)
		default:
			var err error
			if off, err = b.st.OffsetByTime(topic, q, ts); err != nil {
				return nil, err
			}
		}
		b.cfg.setOffset(topic, group, q, off)
		out = append(out, mqmeta.QueueStat{Topic: topic, BrokerName: b.opts.BrokerName, QueueID: q, BrokerOffset: b.st.MaxOffset(topic, q), ConsumerOffset: off})
	}
	b.pushReset(group, topic, ts, out)
	return out, b.cfg.persistOffsets(true)
}

// pushReset tells the group's running consumers to adopt the new offsets (RESET_CONSUMER_CLIENT_OFFSET, 220), in
// the gson layout the Go client parses: {"offsetTable":[[{"topic":..,"brokerName":..,"queueId":..},offset],...]}.
// The Go client pauses the group for 10 s while it switches.
func (b *Broker) pushReset(group, topic string, ts int64, offsets []mqmeta.QueueStat) {
	if len(offsets) == 0 {
		return
	}
	body := []byte(`{"offsetTable":[`)
	for i, o := range offsets {
		if i > 0 {
			body = append(body, ',')
		}
		mq, _ := json.Marshal(mqJSON{Topic: o.Topic, BrokerName: o.BrokerName, QueueID: o.QueueID})
		body = append(body, '[')
		body = append(body, mq...)
		body = append(body, ',')
		body = strconv.AppendInt(body, o.ConsumerOffset, 10)
		body = append(body, ']')
	}
	body = append(body, "]}"...)
	for _, c := range b.clients.groupConns(group) {
		go func() {
			_ = c.Send(remoting.NewRequest(remoting.ResetConsumerClientOffset, map[string]string{
				"topic": topic, "group": group, "timestamp": strconv.FormatInt(ts, 10), "isForce": "true"}, body))
		}()
	}
}

func (b *Broker) handleResetOffset(req *remoting.Command) *remoting.Command {
	f := req.ReadFields()
	topic, group, ts := f.String("topic"), f.String("group"), f.Int64("timestamp")
	if f.Err != nil {
		return remoting.Errorf(req, remoting.SystemError, "reset offset: %v", f.Err)
	}
	out, err := b.ResetOffset(group, topic, ts)
	if err != nil {
		return remoting.Errorf(req, remoting.SystemError, "reset offset: topic %s: %v", topic, err)
	}
	return bodyResponse(req, resetOffsetBody(out))
}
