package simulator

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/apache/rocketmq-client-go/v2"
	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/apache/rocketmq-client-go/v2/producer"
)

// Message is one order message to produce.
type Message struct {
	Topic string
	Tag   string // the order's status, so RocketMQ tag filters can select by status
	Key   string // the orderId, so the message can be looked up by key
	Body  []byte
}

// Sender produces messages. RocketMQSender is the real one; a Sender must be safe for concurrent use.
type Sender interface {
	// Send returns once the broker has stored the message, with its message id.
	Send(ctx context.Context, m Message) (msgID string, err error)
}

// ErrSendStatus is returned when the broker answered with a status other than SEND_OK.
var ErrSendStatus = errors.New("broker did not confirm the send")

// RocketMQOptions configure NewRocketMQSender.
type RocketMQOptions struct {
	// NameServers are host:port addresses. Host names are resolved here, because the client accepts only literal IPs.
	NameServers []string
	// Group is the producer group. Default "food-delivery-simulator".
	Group string
	// InstanceName separates this producer's client instance from any other RocketMQ client in the same process
	// (the official client shares one instance per name otherwise). Default: Group plus the start time.
	InstanceName string
	// Retries is the client's own retry count per send. Default 2.
	Retries int
	// SendTimeout per attempt. Default 3s.
	SendTimeout time.Duration
	// AccessKey and SecretKey for an ACL-enabled broker; empty for none.
	AccessKey, SecretKey string
}

// RocketMQSender produces with the official RocketMQ Go client.
type RocketMQSender struct {
	p rocketmq.Producer
}

// NewRocketMQSender starts a producer.
func NewRocketMQSender(ctx context.Context, opts RocketMQOptions) (*RocketMQSender, error) {
	if len(opts.NameServers) == 0 {
		return nil, errors.New("simulator: at least one name server is required")
	}
	addrs, err := ResolveNameServers(ctx, opts.NameServers)
	if err != nil {
		return nil, err
	}
	if opts.Group == "" {
		opts.Group = "food-delivery-simulator"
	}
	if opts.InstanceName == "" {
		opts.InstanceName = fmt.Sprintf("%s-%d", opts.Group, time.Now().UnixNano())
	}
	if opts.Retries <= 0 {
		opts.Retries = 2
	}
	if opts.SendTimeout <= 0 {
		opts.SendTimeout = 3 * time.Second
	}
	popts := []producer.Option{
		producer.WithNsResolver(primitive.NewPassthroughResolver(addrs)),
		producer.WithGroupName(opts.Group),
		producer.WithInstanceName(opts.InstanceName),
		producer.WithRetry(opts.Retries),
		producer.WithSendMsgTimeout(opts.SendTimeout),
	}
	if opts.AccessKey != "" {
		popts = append(popts, producer.WithCredentials(primitive.Credentials{AccessKey: opts.AccessKey, SecretKey: opts.SecretKey}))
	}
	p, err := rocketmq.NewProducer(popts...)
	if err != nil {
		return nil, fmt.Errorf("simulator: new producer: %w", err)
	}
	if err := p.Start(); err != nil {
		return nil, fmt.Errorf("simulator: start producer (name servers %s): %w", strings.Join(addrs, ";"), err)
	}
	return &RocketMQSender{p: p}, nil
}

// Send produces m synchronously.
func (r *RocketMQSender) Send(ctx context.Context, m Message) (string, error) {
	msg := primitive.NewMessage(m.Topic, m.Body)
	if m.Tag != "" {
		msg.WithTag(m.Tag)
	}
	if m.Key != "" {
		msg.WithKeys([]string{m.Key})
	}
	res, err := r.p.SendSync(ctx, msg)
	if err != nil {
		return "", fmt.Errorf("simulator: send to %s: %w", m.Topic, err)
	}
	if res.Status != primitive.SendOK {
		return res.MsgID, fmt.Errorf("%w: status %d for %s", ErrSendStatus, res.Status, res.MsgID)
	}
	return res.MsgID, nil
}

// Close shuts the producer down.
func (r *RocketMQSender) Close() error { return r.p.Shutdown() }

// ResolveNameServers turns host:port addresses into ip:port, preferring IPv4, because the official client rejects
// host names.
func ResolveNameServers(ctx context.Context, servers []string) ([]string, error) {
	var out []string
	for _, s := range servers {
		for _, one := range strings.Split(s, ";") {
			one = strings.TrimSpace(one)
			if one == "" {
				continue
			}
			host, port, err := net.SplitHostPort(one)
			if err != nil {
				return nil, fmt.Errorf("simulator: name server %q: want host:port: %w", one, err)
			}
			if net.ParseIP(host) == nil {
				ips, err := net.DefaultResolver.LookupIP(ctx, "ip", host)
				if err != nil || len(ips) == 0 {
					return nil, fmt.Errorf("simulator: name server %q: cannot resolve %s: %w", one, host, err)
				}
				host = ips[0].String()
				for _, ip := range ips {
					if ip.To4() != nil {
						host = ip.String()
						break
					}
				}
			}
			out = append(out, net.JoinHostPort(host, port))
		}
	}
	if len(out) == 0 {
		return nil, errors.New("simulator: no name server address given")
	}
	return out, nil
}
