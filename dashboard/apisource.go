package dashboard

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"k8s.io/utils/clock"
)

// Kind names one resource collection of the control-plane API.
type Kind struct {
	Group    string // "" for the core group (/api/v1)
	Version  string
	Resource string // the plural, lower case: "services"
	Kind     string // "Service"
}

// DefaultKinds are the collections the dashboard shows: Knative Serving's Services and Revisions, Eventing's
// Brokers and Triggers, and RocketMQSources (both API groups tide accepts).
func DefaultKinds() []Kind {
	return []Kind{
		{"serving.knative.dev", "v1", "services", "Service"},
		{"serving.knative.dev", "v1", "revisions", "Revision"},
		{"eventing.knative.dev", "v1", "brokers", "Broker"},
		{"eventing.knative.dev", "v1", "triggers", "Trigger"},
		{"sources.knative.dev", "v1alpha1", "rocketmqsources", "RocketMQSource"},
		{"sources.eventing.knative.dev", "v1alpha1", "rocketmqsources", "RocketMQSource"}, // the 2020 spelling
	}
}

// path returns the collection path in namespace ns ("" = all namespaces).
func (k Kind) path(ns string) string {
	prefix := "/apis/" + k.Group + "/" + k.Version
	if k.Group == "" {
		prefix = "/api/" + k.Version
	}
	if ns == "" {
		return prefix + "/" + k.Resource
	}
	return prefix + "/namespaces/" + url.PathEscape(ns) + "/" + k.Resource
}

// APIOptions configures APIResources. Zero values take the documented defaults.
type APIOptions struct {
	// BaseURL of the control-plane API, e.g. "http://127.0.0.1:8090". Required.
	BaseURL string
	// Kinds to list and watch. Default DefaultKinds().
	Kinds []Kind
	// Namespaces to watch; "" means all namespaces (path /apis/{group}/{version}/{plural}). Default [""]: all.
	Namespaces []string
	// Token, when set, is sent as "Authorization: Bearer" (the API's token, where it requires one).
	Token string
	// Client for the requests. It must not have a Timeout (watches are long); requests end with Shutdown.
	// Default: a client with a 5 s dial and response-header timeout.
	Client *http.Client
	// Clock paces reconnects. Default the real clock.
	Clock clock.Clock
	// RetryInterval is the first wait before relisting after a failure; it doubles up to 16x. Default 1 s.
	RetryInterval time.Duration
	// Logger, default slog.Default(); records carry component=dashboard.
	Logger *slog.Logger
}

// APIResources is a ResourceSource that keeps a cache of the control-plane API: for each kind and namespace it
// lists, then follows the watch stream (`?watch=true`, one JSON event per line), and relists after any error. A
// collection the API does not serve (404) is shown as empty, not as an error, and is retried at the slow interval.
type APIResources struct {
	opts   APIOptions
	log    *slog.Logger
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu    sync.Mutex                     // guards cache and errs
	cache map[string]map[string]Resource // collection key -> "ns/name" -> resource
	errs  map[string]error               // collection key -> last list/watch error, nil once healthy
}

// ErrNoBaseURL is returned by NewAPIResources without APIOptions.BaseURL.
var ErrNoBaseURL = errors.New("dashboard: APIOptions.BaseURL is required")

// errNotServed marks a 404 on a collection: that kind is not installed.
var errNotServed = errors.New("collection not served")

// NewAPIResources validates opts and returns a source that starts watching on Start.
func NewAPIResources(opts APIOptions) (*APIResources, error) {
	if opts.BaseURL == "" {
		return nil, ErrNoBaseURL
	}
	u, err := url.Parse(opts.BaseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("dashboard: APIOptions.BaseURL %q: want http://host:port", opts.BaseURL)
	}
	opts.BaseURL = strings.TrimRight(opts.BaseURL, "/")
	if opts.Kinds == nil {
		opts.Kinds = DefaultKinds()
	}
	if opts.Namespaces == nil {
		opts.Namespaces = []string{""}
	}
	if opts.Client == nil {
		opts.Client = &http.Client{Transport: &http.Transport{
			Proxy:                 nil, // the API is local; never send it through an environment proxy
			ResponseHeaderTimeout: 5 * time.Second,
		}}
	}
	if opts.Clock == nil {
		opts.Clock = clock.RealClock{}
	}
	if opts.RetryInterval <= 0 {
		opts.RetryInterval = time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	return &APIResources{
		opts: opts, log: opts.Logger.With("component", "dashboard"),
		cache: map[string]map[string]Resource{}, errs: map[string]error{},
	}, nil
}

// Start begins one list-and-watch loop per kind and namespace; it returns at once.
func (a *APIResources) Start(ctx context.Context) error {
	ctx, a.cancel = context.WithCancel(context.WithoutCancel(ctx))
	for _, k := range a.opts.Kinds {
		for _, ns := range a.opts.Namespaces {
			a.wg.Add(1)
			go func() {
				defer a.wg.Done()
				a.follow(ctx, k, ns)
			}()
		}
	}
	return nil
}

// Shutdown stops the watches and waits for their goroutines, or for ctx.
func (a *APIResources) Shutdown(ctx context.Context) error {
	if a.cancel != nil {
		a.cancel()
	}
	done := make(chan struct{})
	go func() { a.wg.Wait(); close(done) }()
	select {
	case <-done:
		// A watch cancelled while dialing leaves a fresh connection in the pool that never carries a request; the
		// API server's graceful Shutdown would wait 5 s for it (net/http treats a new connection as busy that long).
		a.opts.Client.CloseIdleConnections()
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Resources returns the cached objects, sorted, and the first collection error if any collection is failing.
func (a *APIResources) Resources(context.Context) ([]Resource, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	// The same object can be served under two groups (RocketMQSource's 2020 group is an alias of the current one):
	// show it once, from the kind listed first in opts.Kinds.
	rank := map[string]int{}
	for i, k := range a.opts.Kinds {
		av := k.Version
		if k.Group != "" {
			av = k.Group + "/" + k.Version
		}
		if _, ok := rank[k.Kind+"\x00"+av]; !ok {
			rank[k.Kind+"\x00"+av] = i
		}
	}
	type ident struct{ kind, ns, name string }
	best := map[ident]Resource{}
	for _, coll := range a.cache {
		for _, r := range coll {
			id := ident{r.Kind, r.Namespace, r.Name}
			if have, ok := best[id]; !ok || rank[r.Kind+"\x00"+r.APIVersion] < rank[have.Kind+"\x00"+have.APIVersion] {
				best[id] = r
			}
		}
	}
	out := make([]Resource, 0, len(best))
	for _, r := range best {
		out = append(out, r)
	}
	sortResources(out)
	var errs []error
	for _, k := range a.opts.Kinds {
		for _, ns := range a.opts.Namespaces {
			if err := a.errs[k.path(ns)]; err != nil {
				errs = append(errs, err)
			}
		}
	}
	return out, errors.Join(errs...)
}

// follow lists and watches one collection until ctx ends. Invariant: after a successful list the cache for this
// collection equals that list; watch events then apply on top of it.
func (a *APIResources) follow(ctx context.Context, k Kind, ns string) {
	key := k.path(ns)
	wait := a.opts.RetryInterval
	for ctx.Err() == nil {
		rv, err := a.list(ctx, k, ns)
		if err == nil {
			a.setErr(key, nil)
			wait = a.opts.RetryInterval
			err = a.watch(ctx, k, ns, rv)
		}
		if ctx.Err() != nil {
			return
		}
		delay := wait
		switch {
		case errors.Is(err, errNotServed):
			a.setErr(key, nil)
			a.replace(key, nil)
			delay = 16 * a.opts.RetryInterval
		case err != nil:
			a.setErr(key, err)
			wait = min(2*wait, 16*a.opts.RetryInterval)
		}
		select {
		case <-a.opts.Clock.After(delay):
		case <-ctx.Done():
			return
		}
	}
}

func (a *APIResources) setErr(key string, err error) {
	a.mu.Lock()
	prev := a.errs[key]
	a.errs[key] = err
	a.mu.Unlock()
	if err != nil && (prev == nil || prev.Error() != err.Error()) {
		a.log.Warn("resource watch failing; retrying", "collection", key, "err", err)
	}
}

func (a *APIResources) replace(key string, rs map[string]Resource) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if rs == nil {
		delete(a.cache, key)
		return
	}
	a.cache[key] = rs
}

// list fetches the collection into the cache and returns its resourceVersion (may be "").
func (a *APIResources) list(ctx context.Context, k Kind, ns string) (string, error) {
	body, err := a.get(ctx, k.path(ns))
	if err != nil {
		return "", err
	}
	defer body.Close()
	var l struct {
		Metadata struct {
			ResourceVersion string `json:"resourceVersion"`
		} `json:"metadata"`
		Items []json.RawMessage `json:"items"`
	}
	if err := json.NewDecoder(io.LimitReader(body, 64<<20)).Decode(&l); err != nil {
		return "", fmt.Errorf("list %s: decode: %w", k.path(ns), err)
	}
	rs := make(map[string]Resource, len(l.Items))
	for _, raw := range l.Items {
		r, err := Summarize(raw, k.Kind)
		if err != nil {
			a.log.Warn("skipping malformed list item", "collection", k.path(ns), "err", err)
			continue
		}
		rs[r.Namespace+"/"+r.Name] = r
	}
	a.replace(k.path(ns), rs)
	return l.Metadata.ResourceVersion, nil
}

// watch follows the watch stream, applying events, until it ends or fails.
func (a *APIResources) watch(ctx context.Context, k Kind, ns, rv string) error {
	p := k.path(ns) + "?watch=true"
	if rv != "" {
		p += "&resourceVersion=" + url.QueryEscape(rv)
	}
	body, err := a.get(ctx, p)
	if err != nil {
		return err
	}
	defer body.Close()
	err = decodeWatch(body, func(typ string, r Resource) {
		a.apply(k.path(ns), typ, r)
	}, k.Kind)
	if err != nil {
		return fmt.Errorf("watch %s: %w", k.path(ns), err)
	}
	return nil
}

// ErrWatchEvent is returned by decodeWatch for a stream element that is not a watch event.
var ErrWatchEvent = errors.New("dashboard: malformed watch event")

// decodeWatch reads watch events ({"type":..., "object":{...}}, one JSON value after another) from r and calls fn
// for each ADDED, MODIFIED or DELETED one. It returns nil at a clean end of stream, and an error for a malformed
// event or an ERROR event (after which the caller relists, as a Kubernetes client does).
func decodeWatch(r io.Reader, fn func(typ string, res Resource), kind string) error {
	dec := json.NewDecoder(r)
	for {
		var ev struct {
			Type   string          `json:"type"`
			Object json.RawMessage `json:"object"`
		}
		if err := dec.Decode(&ev); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return fmt.Errorf("%w: %w", ErrWatchEvent, err)
		}
		switch ev.Type {
		case "ADDED", "MODIFIED", "DELETED":
			res, err := Summarize(ev.Object, kind)
			if err != nil {
				return fmt.Errorf("%w: %s object: %w", ErrWatchEvent, ev.Type, err)
			}
			fn(ev.Type, res)
		case "BOOKMARK":
		case "ERROR":
			return fmt.Errorf("%w: server sent ERROR: %s", ErrWatchEvent, truncate(string(ev.Object), 200))
		default:
			return fmt.Errorf("%w: type %q", ErrWatchEvent, ev.Type)
		}
	}
}

func (a *APIResources) apply(key, typ string, r Resource) {
	a.mu.Lock()
	defer a.mu.Unlock()
	coll := a.cache[key]
	if coll == nil {
		coll = map[string]Resource{}
		a.cache[key] = coll
	}
	if typ == "DELETED" {
		delete(coll, r.Namespace+"/"+r.Name)
		return
	}
	coll[r.Namespace+"/"+r.Name] = r
}

func (a *APIResources) get(ctx context.Context, path string) (io.ReadCloser, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, a.opts.BaseURL+path, nil)
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", path, err)
	}
	req.Header.Set("Accept", "application/json")
	if a.opts.Token != "" {
		req.Header.Set("Authorization", "Bearer "+a.opts.Token)
	}
	resp, err := a.opts.Client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", path, err)
	}
	if resp.StatusCode == http.StatusNotFound {
		resp.Body.Close()
		return nil, fmt.Errorf("GET %s: %w", path, errNotServed)
	}
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		resp.Body.Close()
		return nil, fmt.Errorf("GET %s: %s: %s", path, resp.Status, truncate(strings.TrimSpace(string(msg)), 200))
	}
	return resp.Body, nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
