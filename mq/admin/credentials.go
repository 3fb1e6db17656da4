package admin

import (
	"context"

	"github.com/tide-run/tide/mq/acl"
	"github.com/tide-run/tide/mq/remoting"
)

// Credentials sign requests for a broker with RocketMQ ACL (mq/acl; Apache's plain ACL). Admin requests (create or
// delete topics and groups) need an admin account.
type Credentials = acl.Credentials

type credsKey struct{}

// WithCredentials returns a context under which every connection this package opens (Dial, DeleteGroup,
// MasterBrokers) signs its requests with creds. Empty credentials sign nothing. Carrying them in the context keeps
// the package's functions usable unchanged by callers that pass them along (the eventing bus's DeleteGroup hook).
func WithCredentials(ctx context.Context, creds Credentials) context.Context {
	if creds.Empty() {
		return ctx
	}
	return context.WithValue(ctx, credsKey{}, creds)
}

// dial connects to addr and, when ctx carries credentials, signs every request on that connection. A Client made
// by Dial keeps signing after ctx ends: the credentials belong to the connection.
func dial(ctx context.Context, addr string) (*remoting.Client, error) {
	c, err := remoting.Dial(ctx, addr)
	if err != nil {
		return nil, err
	}
	if creds, ok := ctx.Value(credsKey{}).(Credentials); ok {
		c.Sign = func(cmd *remoting.Command) { cmd.ExtFields = creds.Sign(cmd.ExtFields, cmd.Body) }
	}
	return c, nil
}
