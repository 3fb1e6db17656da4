package grpcproxy

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"

	v2 "github.com/apache/rocketmq-clients/golang/v5/protocol/v2"

	"github.com/tide-run/tide/mq/message"
)

// Commands the server sends a client on its Telemetry stream and whose answers come back on it, matched by nonce:
// a thread-stack dump (Apache relays mqadmin's consumer running info this way) and message verification
// (consumeMessageDirectly).

// ErrNoClient reports a client id with no Telemetry stream here.
var ErrNoClient = errors.New("grpcproxy: no such connected client")

type pendingTable struct {
	mu sync.Mutex
	m  map[string]chan *v2.TelemetryCommand
}

func (p *pendingTable) add() (string, chan *v2.TelemetryCommand) {
	var b [12]byte
	_, _ = rand.Read(b[:])
	nonce := hex.EncodeToString(b[:])
	ch := make(chan *v2.TelemetryCommand, 1)
	p.mu.Lock()
	if p.m == nil {
		p.m = map[string]chan *v2.TelemetryCommand{}
	}
	p.m[nonce] = ch
	p.mu.Unlock()
	return nonce, ch
}

func (p *pendingTable) remove(nonce string) {
	p.mu.Lock()
	delete(p.m, nonce)
	p.mu.Unlock()
}

// answer hands a client's answer to whoever waits for its nonce; answers nobody waits for are dropped.
func (p *pendingTable) answer(nonce string, cmd *v2.TelemetryCommand) {
	p.mu.Lock()
	ch := p.m[nonce]
	delete(p.m, nonce)
	p.mu.Unlock()
	if ch != nil {
		ch <- cmd
	}
}

func (s *Server) ask(ctx context.Context, clientID string, build func(nonce string) *v2.TelemetryCommand) (*v2.TelemetryCommand, error) {
	c := s.clients.get(clientID, false)
	if c == nil {
		return nil, fmt.Errorf("%w: %s", ErrNoClient, clientID)
	}
	nonce, ch := s.pending.add()
	defer s.pending.remove(nonce)
	if err := c.send(build(nonce)); err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrNoClient, clientID, err)
	}
	select {
	case ans := <-ch:
		return ans, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("client %s did not answer: %w", clientID, ctx.Err())
	}
}

// ThreadStack asks a connected 5.x client for its goroutine or thread dump.
func (s *Server) ThreadStack(ctx context.Context, clientID string) (string, error) {
	ans, err := s.ask(ctx, clientID, func(nonce string) *v2.TelemetryCommand {
		return &v2.TelemetryCommand{Command: &v2.TelemetryCommand_PrintThreadStackTraceCommand{
			PrintThreadStackTraceCommand: &v2.PrintThreadStackTraceCommand{Nonce: nonce}}}
	})
	if err != nil {
		return "", err
	}
	if code := ans.GetStatus().GetCode(); code != v2.Code_OK {
		return "", fmt.Errorf("client %s: %s %s", clientID, code, ans.GetStatus().GetMessage())
	}
	return ans.GetThreadStackTrace().GetThreadStackTrace(), nil
}

// VerifyMessage asks a connected 5.x consumer to consume m directly and returns the status it answered (OK,
// FAILED_TO_CONSUME_MESSAGE, NOT_IMPLEMENTED...).
func (s *Server) VerifyMessage(ctx context.Context, clientID string, m *message.Message) (*v2.Status, error) {
	pm := s.toV2(m, "", 0, 0)
	ans, err := s.ask(ctx, clientID, func(nonce string) *v2.TelemetryCommand {
		return &v2.TelemetryCommand{Command: &v2.TelemetryCommand_VerifyMessageCommand{
			VerifyMessageCommand: &v2.VerifyMessageCommand{Nonce: nonce, Message: pm}}}
	})
	if err != nil {
		return nil, err
	}
	return ans.GetStatus(), nil
}

// Clients lists the ids of clients with a Telemetry stream.
func (s *Server) Clients() []string {
	s.clients.mu.Lock()
	defer s.clients.mu.Unlock()
	var out []string
	for id, c := range s.clients.clients {
		c.mu.Lock()
		if c.stream != nil {
			out = append(out, id)
		}
		c.mu.Unlock()
	}
	return out
}
