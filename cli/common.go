package cli

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
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
	caFile    string
}

// CAFileEnv names the environment variable with the CA certificate (PEM) of an API served over HTTPS.
const CAFileEnv = "TIDE_CA_FILE"

func (g *globals) client() (*client.Client, error) {
	srv := g.server
	if srv == "" {
		srv = os.Getenv(ServerEnv)
	}
	hc, err := g.httpClient()
	if err != nil {
		return nil, err
	}
	c, err := client.New(srv, hc)
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

// httpClient trusts the CA in --certificate-authority (or $TIDE_CA_FILE) besides the system's; nil without one.
func (g *globals) httpClient() (*http.Client, error) {
	file := g.caFile
	if file == "" {
		file = os.Getenv(CAFileEnv)
	}
	if file == "" {
		return nil, nil
	}
	pemBytes, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("--certificate-authority: %w", err)
	}
	pool, err := x509.SystemCertPool()
	if err != nil {
		pool = x509.NewCertPool()
	}
	if !pool.AppendCertsFromPEM(pemBytes) {
		return nil, fmt.Errorf("--certificate-authority %s: no PEM certificate in it", file)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	return &http.Client{Transport: tr}, nil
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
