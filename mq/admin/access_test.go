package admin_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tide-run/tide/mq"
	"github.com/tide-run/tide/mq/admin"
	"github.com/tide-run/tide/mq/mqmeta"
	"github.com/tide-run/tide/mq/mqtest"
)

// TestCredentialsAndAccessCheck: with ACL on, a Client dialled under WithCredentials signs everything (an admin
// account creates topics and deletes groups; an ordinary one is refused admin requests with Apache's text), and
// CheckConsumerAccess tells a consumer's keys apart without consuming: it commits no offset.
func TestCredentialsAndAccessCheck(t *testing.T) {
	ctx := context.Background()
	aclFile := filepath.Join(t.TempDir(), "acl.yml")
	if err := os.WriteFile(aclFile, []byte(`
accounts:
  - {accessKey: ops-admin, secretKey: ops-secret, admin: true}
  - {accessKey: reader-app, secretKey: reader-secret, defaultGroupPerm: DENY, topicPerms: [orders=SUB], groupPerms: [readers=SUB]}
`), 0o600); err != nil {
		t.Fatal(err)
	}
	srv := mqtest.RunServer(t, mq.Options{ACLFile: aclFile})
	ns := []string{srv.NameServerAddr()}
	opsCtx := admin.WithCredentials(ctx, admin.Credentials{AccessKey: "ops-admin", SecretKey: "ops-secret"})
	readerCtx := admin.WithCredentials(ctx, admin.Credentials{AccessKey: "reader-app", SecretKey: "reader-secret"})

	ops, err := admin.Dial(opsCtx, ns[0])
	if err != nil {
		t.Fatal(err)
	}
	defer ops.Close()
	if err := ops.CreateTopic(ctx, "orders", 2); err != nil { // ctx without credentials: the connection signs
		t.Fatal(err)
	}
	if _, err := ops.Send(ctx, admin.SendRequest{Topic: "orders", Body: []byte("one")}); err != nil {
		t.Fatal(err)
	}
	reader, err := admin.Dial(readerCtx, ns[0])
	if err != nil {
		t.Fatal(err)
	}
	defer reader.Close()
	if err := reader.CreateTopic(ctx, "more", 1); !errors.Is(err, admin.ErrResponse) ||
		!strings.Contains(err.Error(), "Need admin permission for request code=17, but accessKey=reader-app is not") {
		t.Fatalf("non-admin create: %v", err)
	}

	if err := admin.CheckConsumerAccess(readerCtx, ns, "readers", []string{"orders"}); err != nil {
		t.Fatalf("allowed consumer: %v", err)
	}
	for name, tc := range map[string]struct {
		ctx   context.Context
		group string
		want  string
	}{
		"wrong secret": {admin.WithCredentials(ctx, admin.Credentials{AccessKey: "reader-app", SecretKey: "nope-nope"}), "readers", "Check signature failed for accessKey=reader-app"},
		"no keys":      {ctx, "readers", "No accessKey is configured"},
		"other group":  {readerCtx, "writers", "No default permission for group:writers"},
	} {
		err := admin.CheckConsumerAccess(tc.ctx, ns, tc.group, []string{"orders"})
		if !errors.Is(err, admin.ErrAccessDenied) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", name, err, tc.want)
		}
	}
	// Not its business: an unknown topic, an unreachable name server.
	if err := admin.CheckConsumerAccess(ctx, ns, "readers", []string{"no-such-topic"}); err != nil {
		t.Fatalf("unknown topic: %v", err)
	}
	if err := admin.CheckConsumerAccess(ctx, []string{"127.0.0.1:1"}, "readers", []string{"orders"}); err != nil {
		t.Fatalf("unreachable name server: %v", err)
	}
	// The check consumed nothing: the group has no committed offset.
	if offs := srv.GroupOffsets("readers"); len(offs) != 0 {
		t.Fatalf("offsets after the access check: %v", offs)
	}

	// DeleteGroup signs under WithCredentials.
	if err := ops.CreateGroup(ctx, mqmeta.GroupConfig{GroupName: "readers"}); err != nil {
		t.Fatal(err)
	}
	if err := admin.DeleteGroup(ctx, ns, "readers"); err == nil || !strings.Contains(err.Error(), "No accessKey is configured") {
		t.Fatalf("unsigned delete: %v", err)
	}
	if err := admin.DeleteGroup(opsCtx, ns, "readers"); err != nil {
		t.Fatal(err)
	}
}
