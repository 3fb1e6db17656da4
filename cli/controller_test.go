package cli

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestControllerRocketMQSourceUsageErrors: without an adapter image or a reachable cluster configuration the
// controller exits 2 with a message saying what to set, before touching any API server. (Its reconciling is tested
// against a real kube-apiserver in eventing/kubecontroller.)
func TestControllerRocketMQSourceUsageErrors(t *testing.T) {
	t.Setenv("TIDE_ADAPTER_IMAGE", "")
	t.Setenv("KUBERNETES_SERVICE_HOST", "") // not in a pod
	t.Setenv("HOME", t.TempDir())           // no ~/.kube/config
	t.Setenv("KUBECONFIG", "")
	missing := filepath.Join(t.TempDir(), "nope.yaml")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"controller", "rocketmqsource"}, "--adapter-image (or TIDE_ADAPTER_IMAGE) is required"},
		{[]string{"controller", "rocketmqsource", "--adapter-image", "x/tide:1"}, "no Kubernetes configuration"},
		{[]string{"controller", "rocketmqsource", "--adapter-image", "x/tide:1", "--kubeconfig", missing}, "nope.yaml"},
	} {
		var out, errOut bytes.Buffer
		root := NewRootCommand(strings.NewReader(""), &out, &errOut)
		root.SetArgs(tc.args)
		err := root.Execute()
		var ee *exitError
		if !errors.As(err, &ee) || ee.code != 2 || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("tide %s: %v, want exit 2 with %q", strings.Join(tc.args, " "), err, tc.want)
		}
	}
	if _, err := os.Stat(missing); err == nil {
		t.Error("the controller created the missing kubeconfig")
	}
}
