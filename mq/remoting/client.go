package remoting

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"sync"
	"time"
)

// Client is a minimal remoting client (admin tools, tests): one connection, concurrent Invoke calls matched by
// opaque. Broker-initiated requests are passed to OnRequest when set, otherwise dropped.
type Client struct {
	nc        net.Conn
	wmu       sync.Mutex
	mu        sync.Mutex // guards pending, nextOp, err
	pending   map[int32]chan *Command
	nextOp    int32
	err       error
	OnRequest func(*Command)
	// Sign, when set, is called on every request just before it is encoded (ACL signing, mq/acl); set it before
	// the first Invoke.
	Sign func(*Command)
	done chan struct{}
}

// Dial connects to addr.
func Dial(ctx context.Context, addr string) (*Client, error) { return DialWith(ctx, addr, nil, nil) }

// DialWith connects to addr with OnRequest and Sign set before the connection starts reading, so a request the
// peer sends at once (a broker's NOTIFY_CONSUMER_IDS_CHANGED) cannot race with setting them.
func DialWith(ctx context.Context, addr string, onRequest func(*Command), sign func(*Command)) (*Client, error) {
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("remoting: dial %s: %w", addr, err)
	}
	c := &Client{nc: nc, pending: map[int32]chan *Command{}, done: make(chan struct{}), OnRequest: onRequest, Sign: sign}
	go c.readLoop()
	return c, nil
}

func (c *Client) readLoop() {
	defer close(c.done)
	r := bufio.NewReader(c.nc)
	for {
		frame, err := ReadFrame(r)
		if err == nil {
			var cmd *Command
			cmd, err = Decode(frame)
			if err == nil {
				if !cmd.IsResponse() {
					if c.OnRequest != nil {
						c.OnRequest(cmd)
					}
					continue
				}
				c.mu.Lock()
				ch := c.pending[cmd.Opaque]
				delete(c.pending, cmd.Opaque)
				c.mu.Unlock()
				if ch != nil {
					ch <- cmd
				}
				continue
			}
		}
		c.mu.Lock()
		c.err = fmt.Errorf("remoting: connection lost: %w", err)
		for op, ch := range c.pending {
			close(ch)
			delete(c.pending, op)
		}
		c.mu.Unlock()
		return
	}
}

// Invoke sends req and waits for its response.
func (c *Client) Invoke(ctx context.Context, req *Command) (*Command, error) {
	ch := make(chan *Command, 1)
	c.mu.Lock()
	if c.err != nil {
		err := c.err
		c.mu.Unlock()
		return nil, err
	}
	c.nextOp++
	req.Opaque = c.nextOp
	c.pending[req.Opaque] = ch
	c.mu.Unlock()
	if c.Sign != nil {
		c.Sign(req)
	}
	if err := c.WriteRaw(req.Encode()); err != nil {
		return nil, err
	}
	select {
	case resp, ok := <-ch:
		if !ok {
			c.mu.Lock()
			err := c.err
			c.mu.Unlock()
			return nil, err
		}
		return resp, nil
	case <-ctx.Done():
		c.mu.Lock()
		delete(c.pending, req.Opaque)
		c.mu.Unlock()
		return nil, ctx.Err()
	}
}

// WriteRaw writes bytes as they are (tests use it to send garbage).
func (c *Client) WriteRaw(b []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_ = c.nc.SetWriteDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.nc.Write(b); err != nil {
		return fmt.Errorf("remoting: write: %w", err)
	}
	return nil
}

// Done is closed when the connection has ended.
func (c *Client) Done() <-chan struct{} { return c.done }

// Close closes the connection.
func (c *Client) Close() error { return c.nc.Close() }
