package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/tide-run/tide/controlplane/client"
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
}

func (g *globals) client() (*client.Client, error) {
	server := g.server
	if server == "" {
		server = os.Getenv(ServerEnv)
	}
	return client.New(server, nil)
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
