package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/tide-run/tide/controlplane/client"
	"github.com/tide-run/tide/server"
)

const (
	defaultServer = client.DefaultServer
	// ServerEnv names the environment variable that overrides the default API address.
	ServerEnv = "TIDE_SERVER"
)

// globals are the persistent flags and streams shared by the resource commands.
type globals struct {
	in        io.Reader
	server    string
	namespace string
	token     string
}

func (g *globals) client() (*client.Client, error) {
	srv := g.server
	if srv == "" {
		srv = os.Getenv(ServerEnv)
	}
	c, err := client.New(srv, nil)
	if err != nil {
		return nil, err
	}
	tok := g.token
	if tok == "" {
		tok = os.Getenv(server.TokenEnv)
	}
	if tok != "" {
		c.SetToken(tok)
	} else if local := localToken(c.Server()); local != "" {
		c.SetFallbackToken(local)
	}
	return c, nil
}

// localToken is the token of the tide whose data dir is $TIDE_DATA_DIR or ./.tide, when the API is on this
// machine (a loopback address) and the file is private to this user (mode 0600); else "". It is sent only to a
// loopback API, and dropped if that API refuses it (another tide).
func localToken(apiURL string) string {
	u, err := url.Parse(apiURL)
	if err != nil || !server.IsLoopbackHost(u.Hostname()) {
		return ""
	}
	dir := server.DefaultOptions().DataDir
	tok, err := server.ReadTokenFile(filepath.Join(dir, server.TokenFile))
	if err != nil {
		return ""
	}
	return tok
}

// clientFor connects to the API and resolves a kind name as the user typed it (ksvc, services.serving.knative.dev, ...).
func (g *globals) clientFor(ctx context.Context, kindName string) (*client.Client, client.Kind, error) {
	c, err := g.client()
	if err != nil {
		return nil, client.Kind{}, err
	}
	k, err := c.ResolveKind(ctx, kindName)
	if err != nil {
		return nil, client.Kind{}, err
	}
	return c, k, nil
}

func (g *globals) ns() string {
	if g.namespace == "" {
		return "default"
	}
	return g.namespace
}

// silentError ends a command with exit code 1 when the details were already printed (apply, delete -f).
type silentError struct{ n int }

func (e silentError) Error() string { return fmt.Sprintf("%d errors", e.n) }

// formatError renders an error the way kubectl does: API errors as `Error from server (Reason): message`, others
// as `error: message`.
func formatError(err error) string {
	var s silentError
	if errors.As(err, &s) {
		return ""
	}
	var se *client.StatusError
	if errors.As(err, &se) {
		prefix := ""
		if msg := err.Error(); msg != se.Error() {
			prefix = strings.TrimSuffix(msg, se.Error())
		}
		return fmt.Sprintf("Error from server (%s): %s%s", se.Status.Reason, prefix, se.Status.Message)
	}
	return "error: " + err.Error()
}

// splitKindName accepts kubectl's KIND/NAME spelling: ["ksvc/hello"] becomes ["ksvc", "hello"]. Other argument
// lists are returned unchanged.
func splitKindName(args []string) []string {
	if len(args) >= 1 {
		if k, n, ok := strings.Cut(args[0], "/"); ok && k != "" && n != "" {
			return append([]string{k, n}, args[1:]...)
		}
	}
	return args
}
