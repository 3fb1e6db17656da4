package api

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/dynamic/dynamicinformer"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"

	"github.com/tide-run/tide/controlplane/registry"
	"github.com/tide-run/tide/controlplane/store"
)

// TestInformerListWatchBookmarksAndGone: a client-go informer (client-go 1.35 starts with the watch-list protocol:
// sendInitialEvents, then the k8s.io/initial-events-end bookmark) syncs against tide and follows changes; when its
// watch breaks and the store's history has moved past its resourceVersion, the re-watch gets 410 Gone and the
// informer lists again, ending with every object.
func TestInformerListWatchBookmarksAndGone(t *testing.T) {
	reg := registry.NewDefault()
	st, err := store.Open(store.Options{Path: filepath.Join(t.TempDir(), "db"), WatchHistory: 2, ClusterScoped: func(gk string) bool {
		k, err := reg.ForGroupKind(gk)
		return err == nil && !k.Namespaced
	}})
	if err != nil {
		t.Fatal(err)
	}
	api, err := New(Options{Registry: reg, Store: st})
	if err != nil {
		t.Fatal(err)
	}
	var gone, initialEvents atomic.Int32
	var holdMu sync.Mutex
	hold := make(chan struct{})
	close(hold) // open
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		if q.Get("watch") == "true" {
			holdMu.Lock()
			h := hold
			holdMu.Unlock()
			<-h
			if q.Get("sendInitialEvents") == "true" {
				initialEvents.Add(1)
			}
		}
		rec := &statusRecorder{ResponseWriter: w}
		api.ServeHTTP(rec, r)
		if rec.code == http.StatusGone {
			gone.Add(1)
		}
	}))
	t.Cleanup(func() { hs.Close(); _ = st.Close() })

	create := func(name string) {
		t.Helper()
		u := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "v1", "kind": "ConfigMap",
			"metadata": map[string]any{"name": name, "namespace": "default"}, "data": map[string]any{"k": name}}}
		if _, err := st.Create(u); err != nil {
			t.Fatal(err)
		}
	}
	create("a")

	dyn, err := dynamic.NewForConfig(&rest.Config{Host: hs.URL})
	if err != nil {
		t.Fatal(err)
	}
	gvr := schema.GroupVersionResource{Version: "v1", Resource: "configmaps"}
	factory := dynamicinformer.NewFilteredDynamicSharedInformerFactory(dyn, 0, "default", nil)
	inf := factory.ForResource(gvr).Informer()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	factory.Start(ctx.Done())
	syncCtx, syncCancel := context.WithTimeout(ctx, 30*time.Second)
	defer syncCancel()
	if !cache.WaitForCacheSync(syncCtx.Done(), inf.HasSynced) {
		t.Fatal("the informer did not sync (no initial-events-end bookmark?)")
	}
	if initialEvents.Load() == 0 {
		t.Errorf("the informer did not use the watch-list protocol (sendInitialEvents)")
	}
	names := func() string {
		var out []string
		for _, o := range inf.GetStore().List() {
			out = append(out, o.(*unstructured.Unstructured).GetName())
		}
		sort.Strings(out)
		return strings.Join(out, ",")
	}
	waitFor := func(want string) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for names() != want {
			if time.Now().After(deadline) {
				t.Fatalf("informer has %q, want %q", names(), want)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitFor("a")
	create("b")
	waitFor("a,b")

	// Break the watch and hold the re-watch while the history moves past the informer's resourceVersion.
	holdMu.Lock()
	hold = make(chan struct{})
	holdMu.Unlock()
	hs.CloseClientConnections()
	for i := range 6 {
		create(fmt.Sprintf("c%d", i))
	}
	holdMu.Lock()
	close(hold)
	holdMu.Unlock()
	waitFor("a,b,c0,c1,c2,c3,c4,c5")
	if gone.Load() == 0 {
		t.Errorf("no 410 Gone was served: the informer's re-watch did not start from an expired resourceVersion")
	}
}

type statusRecorder struct {
	http.ResponseWriter
	code int
}

func (r *statusRecorder) WriteHeader(code int) { r.code = code; r.ResponseWriter.WriteHeader(code) }

func (r *statusRecorder) Flush() {
	if f, ok := r.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}
