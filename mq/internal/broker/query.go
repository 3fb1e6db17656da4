package broker

import (
	"slices"
	"sort"
	"strconv"

	"github.com/tide-run/tide/mq/mqmeta"
	"github.com/tide-run/tide/mq/remoting"
)

// handleQueryMessage answers QUERY_MESSAGE (12) as Java's QueryMessageProcessor does: ext fields topic, key, maxNum,
// beginTimestamp, endTimestamp and _UNIQUE_KEY_QUERY; the answer carries indexLastUpdateTimestamp and
// indexLastUpdatePhyoffset and, as its body, the matching stored messages one after another (the layout of a pull
// body): the newest maxNum matches in commit-log order; nothing found is 22 QUERY_NOT_FOUND with Java's remark.
func (b *Broker) handleQueryMessage(req *remoting.Command) *remoting.Command {
	f := req.ReadFields()
	topic, key := f.String("topic"), f.String("key")
	maxNum := int(f.OptInt32("maxNum", mqmeta.DefaultQueryMaxNum))
	begin, end := f.OptInt64("beginTimestamp", 0), f.OptInt64("endTimestamp", 1<<62)
	uniq := f.OptBool(mqmeta.UniqueKeyQueryFlag, false)
	if f.Err != nil {
		return remoting.Errorf(req, remoting.SystemError, "query message: %v", f.Err)
	}
	if uniq {
		maxNum = mqmeta.DefaultQueryMaxNum // as Java: the broker's default, whatever the client asked
	}
	msgs, st, err := b.st.QueryMessage(topic, key, maxNum, begin, end, uniq)
	if err != nil && len(msgs) == 0 {
		return remoting.Errorf(req, remoting.SystemError, "query message: %v", err)
	}
	if len(msgs) == 0 {
		resp := remoting.Errorf(req, remoting.QueryNotFound, "can not find message, maybe time range not correct")
		return resp
	}
	n := 0
	for _, m := range msgs {
		n += len(m)
	}
	body := make([]byte, 0, n)
	for _, m := range msgs {
		body = append(body, m...)
	}
	resp := remoting.NewResponse(req, remoting.Success, "")
	resp.SetExt("indexLastUpdateTimestamp", strconv.FormatInt(st.LastTimestamp, 10))
	resp.SetExt("indexLastUpdatePhyoffset", strconv.FormatInt(st.LastPos, 10))
	resp.Body = body
	return resp
}

// ensureTraceTopic creates RMQ_SYS_TRACE_TOPIC (one queue) as Java's broker does with traceTopicEnable=true, so the
// official clients' trace dispatchers find a route at once: the Go client v2.1.2's has no fallback to TBW102 and
// drops its records while the route is missing.
func (b *Broker) ensureTraceTopic() error {
	_, _, err := b.cfg.ensureTopic(mqmeta.TopicConfig{TopicName: mqmeta.TraceTopic, ReadQueueNums: 1, WriteQueueNums: 1, Perm: mqmeta.PermRW})
	return err
}

// queryTopicConsumeByWho is QUERY_TOPIC_CONSUME_BY_WHO (300), which mqadmin's queryMsgByUniqueKey and queryMsgById
// ask after printing a message ("message track": which groups consume its topic).
const queryTopicConsumeByWho int16 = 300

// handleTopicConsumeByWho answers the groups that consume topic, as Java's broker does: groups with a consumer
// connected that subscribes to it, and groups with offsets stored for it. Body: {"groupList":[...]}.
func (b *Broker) handleTopicConsumeByWho(req *remoting.Command) *remoting.Command {
	f := req.ReadFields()
	topic := f.String("topic")
	if f.Err != nil {
		return remoting.Errorf(req, remoting.SystemError, "query topic consume by who: %v", f.Err)
	}
	set := map[string]bool{}
	for g, topics := range b.cfg.offsetGroups() {
		if slices.Contains(topics, topic) {
			set[g] = true
		}
	}
	b.clients.mu.Lock()
	for name, g := range b.clients.groups {
		if g.subs[topic] != nil {
			set[name] = true
		}
	}
	b.clients.mu.Unlock()
	groups := make([]string, 0, len(set))
	for g := range set {
		groups = append(groups, g)
	}
	sort.Strings(groups)
	return jsonResponse(req, map[string][]string{"groupList": groups})
}
