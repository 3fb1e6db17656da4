package fooddelivery_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	servingv1 "knative.dev/serving/pkg/apis/serving/v1"

	"github.com/tide-run/tide/demo/fooddelivery"
	foodbundle "github.com/tide-run/tide/examples/food-delivery"
	"github.com/tide-run/tide/serving/process"
)

// The bundle's Knative Service runs under tide's process runtime as it is: the ko:// image is built from this
// repository, each instance gets $PORT and K_REVISION, the httpGet /healthz readiness probe passes, two instances
// store orders into one SQLite file, and scaling to zero stops them cleanly (SIGTERM after draining).
func TestOrderServiceRunsUnderTideServing(t *testing.T) {
	raw, err := foodbundle.Read("ksvc-order-service.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var svc servingv1.Service
	decodeStrict(t, "ksvc-order-service.yaml", raw, &svc)
	svc.SetDefaults(context.Background())
	rev := *svc.Spec.Template.Spec.DeepCopy()
	db := filepath.Join(t.TempDir(), "orders.db")
	// The one change: the database goes to the test's directory instead of ./.tide under the working directory.
	rev.Containers[0].Env = append(rev.Containers[0].Env,
		corev1.EnvVar{Name: "ORDER_DB", Value: db}, corev1.EnvVar{Name: "ORDER_WORK_MS", Value: "1"})
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	quiet := slog.New(slog.DiscardHandler)
	builder, err := process.NewBuilder(process.BuilderOptions{CacheDir: t.TempDir(), Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	pool, err := process.New(process.Options{Builder: builder, Logger: quiet, Spec: process.Spec{
		Namespace: "default", Service: "order-service", Configuration: "order-service",
		Revision: "order-service-00001", Dir: root, RevisionSpec: rev}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		pool.Close(ctx)
	})
	pool.SetScale(2)
	deadline := time.Now().Add(120 * time.Second) // includes building the program
	for pool.ReadyCount() < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("instances not ready: %+v", pool.Status())
		}
		time.Sleep(20 * time.Millisecond)
	}

	client := &http.Client{Timeout: 10 * time.Second}
	post := func(addr, id, money string) int {
		body := fmt.Sprintf(`{"orderId":%q,"orderStatus":"completed","userPhoneNo":"152122131323","prodId":"2141412","prodName":"test","chargeMoney":%q,"chargeTime":"1584932320","finishTime":"1584932320"}`, id, money)
		req, _ := http.NewRequest(http.MethodPost, "http://"+addr+"/", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Ce-Specversion", "1.0")
		req.Header.Set("Ce-Id", "ev-"+id)
		req.Header.Set("Ce-Source", "/apis/v1/namespaces/default/rocketmqsources/orders#orders")
		req.Header.Set("Ce-Type", "dev.knative.rocketmq.event")
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("order %s to %s: %v", id, addr, err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for i, inst := range pool.Instances() {
		for n := 0; n < 20; n++ {
			if code := post(inst.Addr, fmt.Sprintf("srv-%d-%02d", i, n), "30.0"); code != http.StatusAccepted {
				t.Fatalf("order to instance %s: %d", inst.ID, code)
			}
		}
		if code := post(inst.Addr, fmt.Sprintf("bad-%d", i), "free"); code != http.StatusBadRequest {
			t.Fatalf("malformed order: %d, want 400", code)
		}
	}

	pool.SetScale(0)
	for pool.Status().Actual != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("instances did not stop: %+v", pool.Status())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if st := pool.Status(); st.Failed {
		t.Fatalf("pool failed: %+v", st)
	}

	store, err := fooddelivery.OpenStore(context.Background(), fooddelivery.StoreOptions{Path: db, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	orders, err := store.Orders(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	instances := map[string]bool{}
	for _, o := range orders {
		instances[o.Instance] = true
		if !strings.HasPrefix(o.Instance, "order-service-00001/") {
			t.Fatalf("instance %q does not carry K_REVISION", o.Instance)
		}
	}
	if len(orders) != 40 || len(instances) != 2 {
		var b bytes.Buffer
		for _, l := range pool.Logs(50, "") {
			fmt.Fprintln(&b, l)
		}
		t.Fatalf("%d orders from %d instances, want 40 from 2; logs:\n%s", len(orders), len(instances), b.String())
	}
}
