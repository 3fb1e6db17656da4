package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"

	"github.com/tide-run/tide/mq/mqmeta"
	"github.com/tide-run/tide/mq/remoting"
)

// ErrNoBroker means the name servers list no master broker to send a request to.
var ErrNoBroker = errors.New("admin: the name servers list no master broker")

// DeleteGroup deletes a consumer group from a cluster the way `mqadmin deleteSubGroup -c` does: its subscription
// config and consumer offsets on every master broker the name servers know (DELETE_SUBSCRIPTIONGROUP, 207, with
// cleanOffset=true), then its retry topic %RETRY%<group> (DELETE_TOPIC_IN_BROKER, 215, on the brokers of the
// topic's route, and DELETE_TOPIC_IN_NAMESRV, 216, on every name server, best effort). It works against tide's broker and an
// Apache RocketMQ cluster alike (brokers without cleanOffset support drop only the config). Stop the group's
// consumers first: a running consumer's heartbeat re-creates the config. The first name server that answers is
// asked for the cluster and the route. It returns nil only if every step succeeded; otherwise the failures,
// joined, after trying every step.
//
// mqadmin also deletes %DLQ%<group>; DeleteGroup leaves it, since it may hold messages parked for inspection.
func DeleteGroup(ctx context.Context, nameServers []string, group string) error {
	if group == "" {
		return fmt.Errorf("admin: delete group: group: empty")
	}
	ns, masters, err := masterBrokers(ctx, nameServers)
	if err != nil {
		return fmt.Errorf("admin: delete group %s: %w", group, err)
	}
	var errs []error
	for _, addr := range masters {
		if err := invokeAt(ctx, addr, remoting.NewRequest(remoting.DeleteSubscriptionGroup,
			map[string]string{"groupName": group, "cleanOffset": "true"}, nil)); err != nil {
			errs = append(errs, fmt.Errorf("broker %s: %w", addr, err))
		}
	}
	if err := deleteRetryTopic(ctx, ns, nameServers, mqmeta.RetryPrefix+group); err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return fmt.Errorf("admin: delete group %s: %w", group, errors.Join(errs...))
	}
	return nil
}

// deleteRetryTopic deletes topic on the brokers of its route (asked at ns) and on every name server. No route
// means there is nothing to delete. (tide's name server creates a missing %RETRY% topic when its route is asked
// for; deleting it right after leaves it gone all the same.)
func deleteRetryTopic(ctx context.Context, ns string, nameServers []string, topic string) error {
	c, err := dial(ctx, ns)
	if err != nil {
		return fmt.Errorf("route of %s: %w", topic, err)
	}
	resp, err := c.Invoke(ctx, remoting.NewRequest(remoting.GetRouteInfoByTopic, map[string]string{"topic": topic}, nil))
	c.Close()
	switch {
	case err != nil:
		return fmt.Errorf("route of %s: %w", topic, err)
	case resp.Code == remoting.TopicNotExist:
		return nil
	case resp.Code != remoting.Success:
		return fmt.Errorf("route of %s: %w: code %d: %s", topic, ErrResponse, resp.Code, resp.Remark)
	}
	var route struct {
		BrokerDatas []struct {
			BrokerAddrs map[string]string `json:"brokerAddrs"`
		} `json:"brokerDatas"`
	}
	if err := json.Unmarshal(QuoteNumericKeys(resp.Body), &route); err != nil {
		return fmt.Errorf("route of %s: %w", topic, err)
	}
	var errs []error
	for _, bd := range route.BrokerDatas {
		if addr := bd.BrokerAddrs["0"]; addr != "" {
			if err := invokeAt(ctx, addr, remoting.NewRequest(remoting.DeleteTopicInBroker, map[string]string{"topic": topic}, nil)); err != nil {
				errs = append(errs, fmt.Errorf("delete %s on broker %s: %w", topic, addr, err))
			}
		}
	}
	for _, addr := range nameServers {
		// Best effort: brokers re-register their whole topic table with every name server periodically (30 s on
		// Apache RocketMQ; tide's routes are live), so a name server that misses this forgets the topic then. A
		// dead name server in the list must not make the deletion fail.
		_ = invokeAt(ctx, addr, remoting.NewRequest(remoting.DeleteTopicInNameSrv, map[string]string{"topic": topic}, nil))
	}
	return errors.Join(errs...)
}

// invokeAt sends one request to addr on a connection of its own and wants SUCCESS back.
func invokeAt(ctx context.Context, addr string, req *remoting.Command) error {
	c, err := dial(ctx, addr)
	if err != nil {
		return err
	}
	defer c.Close()
	resp, err := c.Invoke(ctx, req)
	if err != nil {
		return err
	}
	if resp.Code != remoting.Success {
		return fmt.Errorf("%w: code %d: %s", ErrResponse, resp.Code, resp.Remark)
	}
	return nil
}

// MasterBrokers returns the address of every master broker (broker id 0) in the name servers' cluster info
// (GET_BROKER_CLUSTER_INFO, 106), sorted. Name servers are asked in order until one answers.
func MasterBrokers(ctx context.Context, nameServers []string) ([]string, error) {
	_, masters, err := masterBrokers(ctx, nameServers)
	return masters, err
}

// masterBrokers is MasterBrokers, also returning the name server that answered.
func masterBrokers(ctx context.Context, nameServers []string) (string, []string, error) {
	if len(nameServers) == 0 {
		return "", nil, fmt.Errorf("admin: no name server address")
	}
	var errs []error
	for _, ns := range nameServers {
		body, err := clusterInfo(ctx, ns)
		if err != nil {
			errs = append(errs, fmt.Errorf("name server %s: %w", ns, err))
			continue
		}
		masters, err := parseMasters(body)
		if err != nil {
			return "", nil, fmt.Errorf("name server %s: %w", ns, err)
		}
		if len(masters) == 0 {
			return "", nil, fmt.Errorf("name server %s: %w", ns, ErrNoBroker)
		}
		return ns, masters, nil
	}
	return "", nil, errors.Join(errs...)
}

func clusterInfo(ctx context.Context, addr string) ([]byte, error) {
	c, err := dial(ctx, addr)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	resp, err := c.Invoke(ctx, remoting.NewRequest(remoting.GetBrokerClusterInfo, nil, nil))
	if err != nil {
		return nil, err
	}
	if resp.Code != remoting.Success {
		return nil, fmt.Errorf("%w: code %d: %s", ErrResponse, resp.Code, resp.Remark)
	}
	return resp.Body, nil
}

// parseMasters reads the master addresses from a cluster info body. Java's name server writes it with fastjson,
// whose map keys of integer type come out bare ({"brokerAddrs":{0:"10.0.0.1:10911"}}), which is not JSON; tide's
// name server quotes them. Both are accepted.
func parseMasters(body []byte) ([]string, error) {
	var info struct {
		BrokerAddrTable map[string]struct {
			BrokerAddrs map[string]string `json:"brokerAddrs"`
		} `json:"brokerAddrTable"`
	}
	if err := json.Unmarshal(QuoteNumericKeys(body), &info); err != nil {
		return nil, fmt.Errorf("cluster info: %w", err)
	}
	var out []string
	for _, b := range info.BrokerAddrTable {
		if addr := b.BrokerAddrs["0"]; addr != "" {
			out = append(out, addr)
		}
	}
	sort.Strings(out)
	return out, nil
}

// QuoteNumericKeys rewrites object keys written as bare numbers ({0:"a"}, fastjson's form for integer map keys)
// as JSON strings ({"0":"a"}). Valid JSON comes back unchanged (the same slice); other input never panics and
// comes back with at most such keys quoted.
func QuoteNumericKeys(b []byte) []byte {
	var (
		out       []byte // nil until the first rewrite
		copied    int    // b[:copied] is already in out
		stack     []byte // open containers, '{' or '['
		inString  bool
		escaped   bool
		expectKey bool // the next token, if it is a value-looking token, sits where an object key belongs
	)
	for i := 0; i < len(b); i++ {
		c := b[i]
		if inString {
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
			}
			continue
		}
		switch c {
		case '"':
			inString, expectKey = true, false
		case '{':
			stack, expectKey = append(stack, '{'), true
		case '[':
			stack, expectKey = append(stack, '['), false
		case '}', ']':
			if len(stack) > 0 {
				stack = stack[:len(stack)-1]
			}
			expectKey = false
		case ',':
			expectKey = len(stack) > 0 && stack[len(stack)-1] == '{'
		case ' ', '\t', '\n', '\r':
			// whitespace keeps the position's meaning
		default:
			if expectKey && (c == '-' || c >= '0' && c <= '9') {
				j := i + 1
				for j < len(b) && (b[j] >= '0' && b[j] <= '9' || b[j] == '.' || b[j] == '-' || b[j] == '+' || b[j] == 'e' || b[j] == 'E') {
					j++
				}
				out = append(out, b[copied:i]...)
				out = append(out, '"')
				out = append(out, b[i:j]...)
				out = append(out, '"')
				copied = j
				i = j - 1
			}
			expectKey = false
		}
	}
	if out == nil {
		return b
	}
	return append(out, b[copied:]...)
}
