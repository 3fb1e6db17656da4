package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/tide-run/tide/mq/remoting"
)

// ErrAccessDenied means a broker's ACL refused a request (Apache's AclException, code 1).
var ErrAccessDenied = errors.New("RocketMQ ACL refused the request")

// aclRemarkPrefix starts the remark of an ACL refusal from Apache RocketMQ's broker and tide's.
const aclRemarkPrefix = "org.apache.rocketmq.acl.common.AclException"

// CheckConsumerAccess asks every master broker of each topic's route whether group may consume topic with the
// credentials in ctx (WithCredentials), without consuming anything: one PULL_MESSAGE of at most one message from
// queue 0 at offset 0, without the commit-offset flag and without suspending. Brokers check ACL before anything
// else, and a pull needs what a push consumer needs (the signature, SUB on the topic and on the group), so an ACL
// refusal here is the refusal the consumer's heartbeats and pulls would meet, which the official Go client never
// reports to its caller. It returns an error wrapping ErrAccessDenied with the broker's text for the first
// refusal; any other outcome (an unknown topic, an unreachable server, a pull answer) is not its business and
// returns nil, so the caller's own start-up reports those.
func CheckConsumerAccess(ctx context.Context, nameServers []string, group string, topics []string) error {
	if len(nameServers) == 0 {
		return nil
	}
	for _, topic := range topics {
		addrs, err := routeBrokers(ctx, nameServers[0], topic)
		if err != nil {
			continue
		}
		for _, addr := range addrs {
			c, err := dial(ctx, addr)
			if err != nil {
				continue
			}
			resp, err := c.Invoke(ctx, remoting.NewRequest(remoting.PullMessage, map[string]string{
				"consumerGroup": group, "topic": topic, "queueId": "0", "queueOffset": "0", "maxMsgNums": "1",
				"sysFlag": "0", "commitOffset": "0", "suspendTimeoutMillis": "0", "subscription": "*",
				"subVersion": "0", "expressionType": "TAG"}, nil))
			c.Close()
			if err == nil && resp.Code == remoting.SystemError && strings.HasPrefix(resp.Remark, aclRemarkPrefix) {
				return fmt.Errorf("%w: broker %s: consuming %s as group %s: %s", ErrAccessDenied, addr, topic, group, resp.Remark)
			}
		}
	}
	return nil
}

// routeBrokers returns the master broker addresses of topic's route, asked at the name server ns.
func routeBrokers(ctx context.Context, ns, topic string) ([]string, error) {
	c, err := dial(ctx, ns)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	resp, err := c.Invoke(ctx, remoting.NewRequest(remoting.GetRouteInfoByTopic, map[string]string{"topic": topic}, nil))
	if err != nil {
		return nil, err
	}
	if resp.Code != remoting.Success {
		return nil, fmt.Errorf("%w: code %d: %s", ErrResponse, resp.Code, resp.Remark)
	}
	var route struct {
		BrokerDatas []struct {
			BrokerAddrs map[string]string `json:"brokerAddrs"`
		} `json:"brokerDatas"`
	}
	if err := json.Unmarshal(QuoteNumericKeys(resp.Body), &route); err != nil {
		return nil, err
	}
	var out []string
	for _, bd := range route.BrokerDatas {
		if a := bd.BrokerAddrs["0"]; a != "" {
			out = append(out, a)
		}
	}
	return out, nil
}
