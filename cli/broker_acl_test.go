package cli

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tide-run/tide/mq/admin"
)

// TestBrokerACLFlags: --host beyond loopback needs --acl or --insecure-no-auth (exit 2 with advice), a bad ACL
// file is exit 2 naming the file and field, and with --acl the broker refuses unsigned admin requests and serves
// an admin account's.
func TestBrokerACLFlags(t *testing.T) {
	var out, errOut bytes.Buffer
	code := Main([]string{"broker", "--host", "0.0.0.0", "--namesrv-port", "0", "--broker-port", "0", "--grpc-port", "0", "--data-dir", t.TempDir()},
		strings.NewReader(""), &out, &errOut)
	if code != 2 || !strings.Contains(errOut.String(), "--acl") || !strings.Contains(errOut.String(), "--insecure-no-auth") {
		t.Fatalf("0.0.0.0 without ACL: exit %d stderr %q", code, errOut.String())
	}

	bad := filepath.Join(t.TempDir(), "bad.yml")
	if err := os.WriteFile(bad, []byte("accounts:\n- accessKey: tide-admin\n  secretKey: admin-secret\n  defaultTopicPerm: PUBLISH\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	errOut.Reset()
	code = Main([]string{"broker", "--acl", bad, "--namesrv-port", "0", "--broker-port", "0", "--grpc-port", "0", "--data-dir", t.TempDir()},
		strings.NewReader(""), &out, &errOut)
	if code != 2 || !strings.Contains(errOut.String(), bad) || !strings.Contains(errOut.String(), "accounts[0].defaultTopicPerm") {
		t.Fatalf("bad ACL file: exit %d stderr %q", code, errOut.String())
	}

	good := filepath.Join(t.TempDir(), "acl.yml")
	if err := os.WriteFile(good, []byte("accounts:\n- accessKey: tide-admin\n  secretKey: admin-secret\n  admin: true\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var sout, serr syncBuffer
	root := NewRootCommand(strings.NewReader(""), &sout, &serr)
	root.SetArgs([]string{"broker", "--acl", good, "--namesrv-port", "0", "--broker-port", "0", "--grpc-port", "0", "--data-dir", t.TempDir()})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- root.ExecuteContext(ctx) }()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(sout.String(), "broker ") {
		if time.Now().After(deadline) {
			t.Fatalf("no endpoints printed; stderr %s", serr.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	var ns string
	for _, line := range strings.Split(sout.String(), "\n") {
		if rest, ok := strings.CutPrefix(line, "name server "); ok {
			ns = rest
		}
	}
	c, err := admin.Dial(ctx, ns)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.CreateTopic(ctx, "unsigned", 1); !errors.Is(err, admin.ErrResponse) || !strings.Contains(err.Error(), "No accessKey is configured") {
		t.Fatalf("unsigned create: %v", err)
	}
	c.Close()
	c, err = admin.Dial(admin.WithCredentials(ctx, admin.Credentials{AccessKey: "tide-admin", SecretKey: "admin-secret"}), ns)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.CreateTopic(ctx, "signed", 1); err != nil {
		t.Fatal(err)
	}
	c.Close()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("broker exited with %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("broker did not stop")
	}
}
