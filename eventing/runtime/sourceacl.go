package runtime

import (
	"context"
	"time"

	"github.com/tide-run/tide/eventing/rocketmqsource"
	"github.com/tide-run/tide/mq/admin"
)

// accessCheckTimeout bounds the credential check before a RocketMQSource's adapter starts.
const accessCheckTimeout = 5 * time.Second

// checkSourceAccess asks the brokers whether the source's credentials may consume its topics as its group
// (admin.CheckConsumerAccess: a pull that consumes nothing), before the adapter starts. The official Go client's
// push consumer starts even when every heartbeat and pull is refused by ACL, and never reports it, so without
// this a source with wrong keys would look Deployed and deliver nothing. Only an ACL refusal is reported; other
// failures are left to the adapter's start, which classifies them (TopicNotFound, NameServerUnreachable).
func (r *Runtime) checkSourceAccess(ctx context.Context, cfg rocketmqsource.Config) error {
	ctx = admin.WithCredentials(ctx, admin.Credentials{AccessKey: cfg.AccessKey, SecretKey: cfg.SecretKey})
	ctx, cancel := context.WithTimeout(ctx, accessCheckTimeout)
	defer cancel()
	topics := make([]string, 0, len(cfg.Topics))
	for _, t := range cfg.Topics {
		topics = append(topics, withNamespace(cfg.Namespace, t))
	}
	return admin.CheckConsumerAccess(ctx, cfg.NameServers, withNamespace(cfg.Namespace, cfg.ConsumerGroup), topics)
}

// withNamespace is the RocketMQ client's resource naming under a namespace ("ns%name").
func withNamespace(ns, name string) string {
	if ns == "" {
		return name
	}
	return ns + "%" + name
}
