package cli

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tide-run/tide/server"
	"github.com/tide-run/tide/server/servertest"
)

const secretDoc = `apiVersion: v1
kind: Secret
metadata: {name: db}
stringData: {password: hunter2}
`

// startTideWith is startTide with options (token required, TLS).
func startTideWith(t *testing.T, opts server.Options) *tideEnv {
	t.Helper()
	srv := servertest.Start(t, opts) // not RunServer: the callers wait for readiness themselves, or need not
	return &tideEnv{t: t, dir: srv.Options().DataDir, srv: srv, url: srv.APIURL()}
}

func runWith(e *tideEnv, stdin string, args ...string) (string, string, int) {
	var out, errOut bytes.Buffer
	code := Main(append([]string{"--server", e.url}, args...), strings.NewReader(stdin), &out, &errOut)
	return out.String(), errOut.String(), code
}

// TestCLIWithRequiredToken: against a tide that requires its token, the CLI without one gets a message saying
// what to do; with --token or $TIDE_TOKEN it applies, gets and sees Secrets whole.
func TestCLIWithRequiredToken(t *testing.T) {
	t.Setenv(server.TokenEnv, "")
	t.Setenv(server.DataDirEnv, t.TempDir()) // no token file for the CLI to find
	e := startTideWith(t, server.Options{APIPort: 0, DataDir: t.TempDir(), RequireToken: true})
	token := e.srv.Access().Token
	if !e.srv.Access().TokenRequired || token == "" {
		t.Fatalf("access %+v", e.srv.Access())
	}
	fi, err := os.Stat(filepath.Join(e.dir, server.TokenFile))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("token file: %v %v", fi, err)
	}

	_, errOut, code := runWith(e, "", "get", "ksvc")
	if code != 1 || !strings.Contains(errOut, "Error from server (Unauthorized)") || !strings.Contains(errOut, "--token") {
		t.Fatalf("without token: exit %d %s", code, errOut)
	}
	_, errOut, code = runWith(e, "", "--token", "wrong", "get", "ksvc")
	if code != 1 || !strings.Contains(errOut, "Unauthorized") {
		t.Fatalf("wrong token: exit %d %s", code, errOut)
	}
	if out, errOut, code := runWith(e, secretDoc, "--token", token, "apply", "-f", "-"); code != 0 || !strings.Contains(out, "created") {
		t.Fatalf("apply with --token: %d %s %s", code, out, errOut)
	}
	t.Setenv(server.TokenEnv, token)
	out, errOut, code := runWith(e, "", "get", "secret", "db", "-o", "json")
	if code != 0 || !strings.Contains(out, `"password": "aHVudGVyMg=="`) {
		t.Fatalf("get with $TIDE_TOKEN: %d %s %s", code, out, errOut)
	}
}

// TestCLIOnLoopbackWithoutToken: the default tide (loopback, token not required) serves the CLI without a token
// (Secrets without values); the CLI finds the token in $TIDE_DATA_DIR's token file and then sees
// them; a token file of another tide is dropped after the 401 and the command still works.
func TestCLIOnLoopbackWithoutToken(t *testing.T) {
	t.Setenv(server.TokenEnv, "")
	t.Setenv(server.DataDirEnv, t.TempDir())
	e := startTideWith(t, server.Options{APIPort: 0, DataDir: t.TempDir()})
	if out, errOut, code := runWith(e, secretDoc, "apply", "-f", "-"); code != 0 || !strings.Contains(out, "created") {
		t.Fatalf("anonymous apply: %d %s %s", code, out, errOut)
	}
	out, errOut, code := runWith(e, "", "get", "secret", "db", "-o", "json")
	if code != 0 || strings.Contains(out, "aHVudGVyMg") || !strings.Contains(out, "tide.run/redacted") {
		t.Fatalf("anonymous get: %d %s %s", code, out, errOut)
	}
	// Re-applying the document (the CLI reads the redacted object first) still works and changes nothing.
	if out, errOut, code := runWith(e, secretDoc, "apply", "-f", "-"); code != 0 || !strings.Contains(out, "unchanged") {
		t.Fatalf("anonymous re-apply: %d %s %s", code, out, errOut)
	}

	t.Setenv(server.DataDirEnv, e.dir) // the CLI is run where that tide's data dir is the default
	out, errOut, code = runWith(e, "", "get", "secret", "db", "-o", "json")
	if code != 0 || !strings.Contains(out, "aHVudGVyMg") {
		t.Fatalf("get with the data dir's token: %d %s %s", code, out, errOut)
	}

	other := t.TempDir()
	if err := os.WriteFile(filepath.Join(other, server.TokenFile), []byte("another-tides-token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv(server.DataDirEnv, other)
	if out, errOut, code := runWith(e, "", "get", "secret", "db"); code != 0 || !strings.Contains(out, "db") {
		t.Fatalf("with another tide's token file: %d %s %s", code, out, errOut)
	}
	// A token file others can read is not used.
	if err := os.WriteFile(filepath.Join(other, server.TokenFile), []byte(e.srv.Access().Token+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(other, server.TokenFile), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, errOut, code := runWith(e, "", "get", "secret", "db", "-o", "json"); code != 0 || strings.Contains(out, "aHVudGVyMg") {
		t.Fatalf("with a world-readable token file: %d %s %s", code, out, errOut)
	}
}

// TestCLIOverTLS: tide up --tls-cert-file/--tls-key-file serves https; the CLI trusts it with
// --certificate-authority and authenticates with the token; tide's own dashboard watch keeps working.
func TestCLIOverTLS(t *testing.T) {
	t.Setenv(server.TokenEnv, "")
	t.Setenv(server.DataDirEnv, t.TempDir())
	dir := t.TempDir()
	certFile, keyFile := selfSigned(t, dir)
	e := startTideWith(t, server.Options{APIPort: 0, DataDir: t.TempDir(), RequireToken: true,
		TLSCertFile: certFile, TLSKeyFile: keyFile})
	if !strings.HasPrefix(e.url, "https://") {
		t.Fatalf("api url %s", e.url)
	}
	e.url = strings.Replace(e.url, "127.0.0.1", "localhost", 1) // a name in the certificate
	token := e.srv.Access().Token
	if _, errOut, code := runWith(e, "", "--token", token, "get", "ksvc"); code != 1 || !strings.Contains(errOut, "certificate") {
		t.Fatalf("without the CA: %d %s", code, errOut)
	}
	if out, errOut, code := runWith(e, secretDoc, "--certificate-authority", certFile, "--token", token, "apply", "-f", "-"); code != 0 {
		t.Fatalf("apply over TLS: %d %s %s", code, out, errOut)
	}
	eventually(t, 10*time.Second, func() error {
		if !e.srv.Ready() {
			return fmt.Errorf("not ready: %v", e.srv.API().CheckReady())
		}
		return nil
	})
	if err := e.srv.Dashboard().Subsystem().Ready(); err != nil {
		t.Fatalf("dashboard: %v", err)
	}
}

// selfSigned writes a self-signed certificate for localhost and 127.0.0.1 (its own CA), as `openssl req -x509`
// would for docs/security.md's example.
func selfSigned(t *testing.T, dir string) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "tide"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true, IsCA: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "api.crt"), filepath.Join(dir, "api.key")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

// TestUpPrintsAccess: tide up prints the token once (the start that created it), the way to reach an API that
// requires it, and the --insecure-no-auth warning at every start.
func TestUpPrintsAccess(t *testing.T) {
	dir := t.TempDir()
	show := func(o server.Options) (string, string) {
		t.Helper()
		o.DataDir, o.APIPort, o.Logger = dir, 0, slog.New(slog.NewTextHandler(io.Discard, nil))
		srv, err := server.New(o)
		if err != nil {
			t.Fatal(err)
		}
		defer srv.Shutdown(context.Background())
		var out, errOut bytes.Buffer
		printAccess(&out, &errOut, srv)
		return out.String(), errOut.String()
	}
	out, errOut := show(server.Options{Host: "127.0.0.1"})
	tok, err := server.ReadTokenFile(filepath.Join(dir, server.TokenFile))
	if err != nil || !strings.Contains(out, "api token: "+tok) || strings.Contains(out, "requires") || errOut != "" {
		t.Fatalf("first start: %q %q %v", out, errOut, err)
	}
	out, _ = show(server.Options{Host: "127.0.0.1"})
	if strings.Contains(out, tok) {
		t.Fatalf("second start printed the token again: %q", out)
	}
	// Beyond loopback the embedded broker needs ACL too (or --insecure-no-auth).
	aclFile := filepath.Join(t.TempDir(), "plain_acl.yml")
	if err := os.WriteFile(aclFile, []byte("accounts:\n  - accessKey: app\n    secretKey: app-secret-key\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out, _ = show(server.Options{Host: "0.0.0.0", ACLFile: aclFile})
	if !strings.Contains(out, "api requires the token in "+filepath.Join(dir, server.TokenFile)) || strings.Contains(out, tok) {
		t.Fatalf("non-loopback start: %q", out)
	}
	for i := 0; i < 2; i++ {
		out, errOut = show(server.Options{Host: "0.0.0.0", InsecureNoAuth: true})
		if !strings.Contains(errOut, "WARNING: --insecure-no-auth") || strings.Contains(out, "requires") {
			t.Fatalf("insecure start %d: %q %q", i, out, errOut)
		}
	}
}
