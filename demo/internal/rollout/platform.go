package rollout

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/tide-run/tide/controlplane/client"
	"github.com/tide-run/tide/server"
)

// Find says how a demo finds a running tide or starts one.
type Find struct {
	// Demo names the demo in errors and progress ("barrage demo").
	Demo string
	// Server is the API URL tried first; Token its bearer token, if any.
	Server, Token string
	// NameServers are the RocketMQ name servers the user gave; empty: DefaultNameServer for a tide that was
	// found, the started tide's own otherwise.
	NameServers       []string
	DefaultNameServer string
	// Platform configures a started tide; nil: server.DefaultOptions() with DataDir.
	Platform *server.Options
	DataDir  string
	Logger   *slog.Logger
	Progress io.Writer
	// NotImplemented wraps the error for a started tide that runs no RocketMQ.
	NotImplemented error
}

// Platform is the tide a demo runs against.
type Platform struct {
	Client      *client.Client
	NameServers []string
	// Started is the tide the demo started in its own process (nil when it found one); see Stop.
	Started *server.Server
}

// FindOrStart uses the tide answering /readyz at f.Server within 2 s, or starts one in this process and waits
// (up to a minute) until it is ready, printing its endpoints.
func FindOrStart(ctx context.Context, f Find) (*Platform, error) {
	progress := f.Progress
	if progress == nil {
		progress = io.Discard
	}
	c, err := client.New(f.Server, nil)
	if err != nil {
		return nil, fmt.Errorf("%s: server %q: %w", f.Demo, f.Server, err)
	}
	if f.Token != "" {
		c.SetToken(f.Token)
	}
	p := &Platform{Client: c, NameServers: f.NameServers}
	pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	readyErr := c.Ready(pctx)
	cancel()
	if readyErr == nil {
		fmt.Fprintf(progress, "using the tide at %s\n", f.Server)
		if len(p.NameServers) == 0 {
			p.NameServers = []string{f.DefaultNameServer}
		}
		return p, nil
	}
	srv, err := start(ctx, f, progress)
	if err != nil {
		return nil, err
	}
	p.Started = srv
	if p.Client, err = client.New(srv.APIURL(), nil); err != nil {
		p.Stop(io.Discard)
		return nil, err
	}
	p.Client.SetToken(srv.Access().Token)
	if len(p.NameServers) == 0 {
		for _, e := range srv.Endpoints() {
			if e.Name == "rocketmq name server" {
				p.NameServers = []string{e.URL}
			}
		}
		if len(p.NameServers) == 0 {
			p.Stop(io.Discard)
			return nil, fmt.Errorf("%w: it runs no RocketMQ (no \"rocketmq name server\" endpoint)", f.NotImplemented)
		}
	}
	return p, nil
}

// Stop shuts down the tide the demo started (nothing when it found one), within 30 s.
func (p *Platform) Stop(progress io.Writer) error {
	if p.Started == nil {
		return nil
	}
	fmt.Fprintln(progress, "stopping the tide the demo started")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return p.Started.Shutdown(ctx)
}

// start starts tide in this process and waits for /readyz.
func start(ctx context.Context, f Find, progress io.Writer) (*server.Server, error) {
	po := server.DefaultOptions()
	po.DataDir = f.DataDir
	if f.Platform != nil {
		po = *f.Platform
	}
	if po.Logger == nil {
		po.Logger = f.Logger
	}
	fmt.Fprintf(progress, "no tide answers at %s; starting one in this process (data dir %s)\n", f.Server, po.DataDir)
	srv, err := server.New(po)
	if err != nil {
		return nil, fmt.Errorf("%s: start tide: %w", f.Demo, err)
	}
	if err := srv.Start(ctx); err != nil {
		return nil, fmt.Errorf("%s: start tide: %w", f.Demo, err)
	}
	stop := func() {
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}
	deadline := time.Now().Add(time.Minute)
	for !srv.Ready() {
		if time.Now().After(deadline) {
			err := srv.API().CheckReady()
			stop()
			return nil, fmt.Errorf("%s: tide not ready after 1m: %w", f.Demo, err)
		}
		select {
		case <-ctx.Done():
			stop()
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	for _, e := range srv.Endpoints() {
		fmt.Fprintf(progress, "  %s: %s\n", e.Name, e.URL)
	}
	return srv, nil
}
