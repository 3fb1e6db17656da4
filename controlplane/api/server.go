package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/utils/ptr"

	"github.com/tide-run/tide/controlplane/discovery"
	"github.com/tide-run/tide/controlplane/registry"
	"github.com/tide-run/tide/controlplane/store"
)

// MaxBodyBytes bounds a request body (Kubernetes' limit for one object is in the same range).
const MaxBodyBytes = 3 << 20

// KindsPath is the discovery path listing every registered kind as JSON (a discovery.List).
const KindsPath = discovery.Path

// Options configures the API handler.
type Options struct {
	Registry *registry.Registry // required
	Store    *store.Store       // required
	Logger   *slog.Logger       // default slog.Default(); the API adds component=api
	// Access: who may call the API and what a browser on another site may not do (guard.go). The zero value
	// answers to loopback names only, knows no token (every caller is anonymous), and grants no cross-origin
	// browser request.
	Access Access
}

// Server is the API's http.Handler. checks is guarded by mu.
type Server struct {
	reg *registry.Registry
	st  *store.Store
	log *slog.Logger
	mux *http.ServeMux
	// access is fixed at New; guard reads it without a lock.
	access Access

	mu     sync.Mutex
	checks []readyCheck

	fms fieldManagers // server-side apply (apply.go)
}

type readyCheck struct {
	name string
	fn   func() error
}

// New builds the handler.
func New(opts Options) (*Server, error) {
	if opts.Registry == nil || opts.Store == nil {
		return nil, errors.New("api: Registry and Store are required")
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	s := &Server{reg: opts.Registry, st: opts.Store, log: opts.Logger.With("component", "api"), mux: http.NewServeMux(),
		access: opts.Access}
	s.mux.HandleFunc("/api/", s.serveResource)
	s.mux.HandleFunc("/apis/", s.serveResource)
	s.mux.HandleFunc("GET /readyz", s.serveReadyz)
	s.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok\n") })
	s.mux.HandleFunc("GET /livez", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok\n") })
	s.mux.HandleFunc("GET "+KindsPath, s.serveKinds)
	s.mountKubernetes()
	s.AddReadyCheck("store", opts.Store.Ping)
	return s, nil
}

// ServeHTTP implements http.Handler: every request passes the guard (Access) before any handler sees it.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r = s.guard(w, r); r != nil {
		s.mux.ServeHTTP(w, r)
	}
}

// Handle mounts an extra handler (e.g. the dashboard at "/"); patterns follow net/http.ServeMux.
func (s *Server) Handle(pattern string, h http.Handler) { s.mux.Handle(pattern, h) }

// AddReadyCheck registers a readiness check; /readyz is 200 only when every check returns nil.
func (s *Server) AddReadyCheck(name string, fn func() error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.checks = append(s.checks, readyCheck{name, fn})
}

// CheckReady runs every readiness check and returns the failures joined (nil when ready).
func (s *Server) CheckReady() error {
	s.mu.Lock()
	checks := append([]readyCheck(nil), s.checks...)
	s.mu.Unlock()
	var errs []error
	for _, c := range checks {
		if err := c.fn(); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", c.name, err))
		}
	}
	return errors.Join(errs...)
}

func (s *Server) serveReadyz(w http.ResponseWriter, r *http.Request) {
	// Where the API requires its token, anonymous probes learn pass or fail per check, not the errors' text.
	detail := !s.access.RequireToken || PrincipalOf(r).Authenticated
	s.mu.Lock()
	checks := append([]readyCheck(nil), s.checks...)
	s.mu.Unlock()
	var b strings.Builder
	ok := true
	for _, c := range checks {
		if err := c.fn(); err != nil {
			ok = false
			if detail {
				fmt.Fprintf(&b, "[-]%s failed: %v\n", c.name, err)
			} else {
				fmt.Fprintf(&b, "[-]%s failed: reason withheld\n", c.name)
			}
		} else {
			fmt.Fprintf(&b, "[+]%s ok\n", c.name)
		}
	}
	if ok {
		b.WriteString("readyz check passed\n")
	} else {
		b.WriteString("readyz check failed\n")
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	_, _ = io.WriteString(w, b.String())
}

// KindInfoOf converts a registry kind to its entry of the discovery list.
func KindInfoOf(k registry.Kind) discovery.Kind {
	return discovery.Kind{Group: k.Group, Version: k.Version, Kind: k.Kind, Plural: k.Plural, Singular: k.Singular,
		ShortNames: k.ShortNames, Namespaced: k.Namespaced, ActedOn: k.ActedOn, Strict: k.Strict(), Columns: k.Columns,
		Categories: k.Categories}
}

func (s *Server) serveKinds(w http.ResponseWriter, _ *http.Request) {
	var out discovery.List
	for _, k := range s.reg.Kinds() {
		out.Kinds = append(out.Kinds, KindInfoOf(k))
	}
	writeJSON(w, http.StatusOK, out)
}

// route is a parsed resource path.
type route struct {
	kind      registry.Kind
	namespace string // "" for cluster-scoped kinds or across all namespaces
	name      string
	status    bool
}

func (s *Server) parse(u *url.URL) (route, *apiError) {
	var rest []string
	var group, version string
	path := u.Path
	// Split the escaped path and decode each segment, so that an encoded "/" (%2F) stays inside the name it was
	// sent in and is refused there, instead of shifting the path's segments.
	parts := strings.Split(strings.Trim(u.EscapedPath(), "/"), "/")
	for i, p := range parts {
		d, err := url.PathUnescape(p)
		if err != nil {
			return route{}, badRequest(fmt.Sprintf("invalid path segment %q: %v", p, err))
		}
		parts[i] = d
	}
	switch {
	case len(parts) >= 3 && parts[0] == "api":
		version, rest = parts[1], parts[2:]
	case len(parts) >= 4 && parts[0] == "apis":
		group, version, rest = parts[1], parts[2], parts[3:]
	default:
		return route{}, notFoundPath(path)
	}
	var rt route
	if len(rest) >= 3 && rest[0] == "namespaces" {
		rt.namespace, rest = rest[1], rest[2:]
		if aerr := validNamespace(rt.namespace); aerr != nil {
			return route{}, aerr
		}
	}
	if len(rest) == 0 || len(rest) > 3 || (len(rest) == 3 && rest[2] != "status") {
		return route{}, notFoundPath(path)
	}
	k, err := s.reg.ForResource(group, version, rest[0])
	if err != nil {
		return route{}, notFoundPath(path)
	}
	rt.kind = k
	if len(rest) >= 2 {
		rt.name = rest[1]
		if aerr := validName(rt.name); aerr != nil {
			return route{}, aerr
		}
	}
	rt.status = len(rest) == 3
	if !k.Namespaced && rt.namespace != "" {
		return route{}, notFoundPath(path)
	}
	return rt, nil
}

func (s *Server) serveResource(w http.ResponseWriter, r *http.Request) {
	if s.serveDiscoveryPath(w, r) {
		return
	}
	rt, aerr := s.parse(r.URL)
	if aerr != nil {
		writeError(w, aerr)
		return
	}
	var err *apiError
	switch {
	case r.Method == http.MethodGet && rt.name == "" && isWatch(r.URL.Query()):
		err = s.watch(w, r, rt)
	case r.Method == http.MethodGet && rt.name == "":
		err = s.list(w, r, rt)
	case r.Method == http.MethodGet:
		err = s.get(w, r, rt)
	case r.Method == http.MethodPost && rt.name == "":
		err = s.create(w, r, rt)
	case r.Method == http.MethodPut && rt.name != "" && rt.status:
		err = s.updateStatus(w, r, rt)
	case r.Method == http.MethodPut && rt.name != "":
		err = s.update(w, r, rt)
	case r.Method == http.MethodPatch && rt.name != "":
		err = s.patch(w, r, rt)
	case r.Method == http.MethodDelete && rt.name != "" && !rt.status:
		err = s.delete(w, r, rt)
	default:
		err = &apiError{code: http.StatusMethodNotAllowed, reason: "MethodNotAllowed",
			message: fmt.Sprintf("the server does not allow this method on the requested resource: %s %s", r.Method, r.URL.Path)}
	}
	if err != nil {
		if err.code >= 500 {
			s.log.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err.message)
		} else {
			s.log.Debug("request refused", "method", r.Method, "path", r.URL.Path, "code", err.code, "reason", err.reason)
		}
		writeError(w, err)
		return
	}
	if r.Method != http.MethodGet {
		s.log.Debug("request", "method", r.Method, "path", r.URL.Path)
	}
}

func isWatch(q url.Values) bool { v := q.Get("watch"); return v == "true" || v == "1" }

func resourceName(k registry.Kind) string {
	if k.Group == "" {
		return k.Plural
	}
	return k.Plural + "." + k.Group
}

func (s *Server) get(w http.ResponseWriter, r *http.Request, rt route) *apiError {
	if rt.kind.Namespaced && rt.namespace == "" {
		return notFoundPath("")
	}
	obj, err := s.st.Get(rt.kind.StorageGroupKind(), rt.namespace, rt.name)
	if err != nil {
		return storeError(rt.kind, rt.name, err)
	}
	if v, ok := wantsTable(r); ok {
		writeTable(w, s.tableOf(r, rt.kind, v, []map[string]any{obj.Object}, obj.GetResourceVersion(), true))
		return nil
	}
	s.writeObject(w, r, rt.kind, http.StatusOK, obj.Object)
	return nil
}

func selectorOf(q url.Values) (labels.Selector, *apiError) {
	sel, err := labels.Parse(q.Get("labelSelector"))
	if err != nil {
		return nil, badRequest("invalid labelSelector: " + err.Error())
	}
	return sel, nil
}

func (s *Server) list(w http.ResponseWriter, r *http.Request, rt route) *apiError {
	sel, aerr := selectorsOf(r.URL.Query())
	if aerr != nil {
		return aerr
	}
	objs, rv, err := s.st.List(rt.kind.StorageGroupKind(), rt.namespace)
	if err != nil {
		return storeError(rt.kind, "", err)
	}
	items := []any{}
	var matched []map[string]any
	for _, o := range objs {
		if sel.matches(o) {
			items = append(items, s.visible(r, rt.kind, o.Object))
			matched = append(matched, o.Object)
		}
	}
	if v, ok := wantsTable(r); ok {
		writeTable(w, s.tableOf(r, rt.kind, v, matched, fmt.Sprint(rv), true))
		return nil
	}
	s.warnRedacted(w, r, rt.kind)
	writeJSON(w, http.StatusOK, map[string]any{
		"apiVersion": rt.kind.APIVersion(), "kind": rt.kind.Kind + "List",
		"metadata": map[string]any{"resourceVersion": fmt.Sprint(rv)}, "items": items,
	})
	return nil
}

func readBody(r *http.Request) ([]byte, *apiError) {
	b, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, MaxBodyBytes))
	if err != nil {
		return nil, &apiError{code: http.StatusRequestEntityTooLarge, reason: "RequestEntityTooLarge", message: err.Error()}
	}
	if isProtobuf(r) {
		return protobufToJSON(b)
	}
	return b, nil
}

func (s *Server) prepare(r *http.Request, rt route, body []byte, old *unstructured.Unstructured) (*registry.Prepared, *apiError) {
	fv, aerr := writeOptions(r)
	if aerr != nil {
		return nil, aerr
	}
	p, err := s.reg.PrepareWith(r.Context(), body, rt.namespace, old, registry.PrepareOptions{FieldValidation: fv})
	if se, ok := asStrict(err); ok {
		if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); r.Method == http.MethodPatch && mt != applyPatchType {
			return nil, strictError(se, body) // body is the patched object
		}
		return nil, strictError(se, nil)
	}
	if err != nil {
		return nil, prepareError(err)
	}
	if p.Kind.GroupKind() != rt.kind.GroupKind() {
		return nil, badRequest(fmt.Sprintf("the API version in the data (%s) and kind (%s) do not match the request path (%s)",
			p.Kind.APIVersion(), p.Kind.Kind, resourceName(rt.kind)))
	}
	if aerr := refuseRedacted(p.Kind, p.Object.GetName(), p.Object.GetAnnotations()); aerr != nil {
		return nil, aerr
	}
	if rt.namespace != "" && p.Object.GetNamespace() != rt.namespace {
		return nil, badRequest(fmt.Sprintf("the namespace of the provided object (%s) does not match the namespace sent on the request (%s)",
			p.Object.GetNamespace(), rt.namespace))
	}
	return p, nil
}

func writeWarnings(w http.ResponseWriter, warnings []string) {
	for _, m := range warnings {
		w.Header().Add("Warning", fmt.Sprintf("299 - %q", m))
	}
}

func (s *Server) create(w http.ResponseWriter, r *http.Request, rt route) *apiError {
	if rt.kind.Namespaced && rt.namespace == "" {
		return &apiError{code: http.StatusMethodNotAllowed, reason: "MethodNotAllowed", message: "create needs a namespace in the path"}
	}
	body, aerr := readBody(r)
	if aerr != nil {
		return aerr
	}
	p, aerr := s.prepare(r, rt, body, nil)
	if aerr != nil {
		return aerr
	}
	s.recordUpdate(r, rt, nil, p)
	if dry, aerr := dryRun(r); aerr != nil || dry {
		if aerr != nil {
			return aerr
		}
		return s.dryCreate(w, r, rt, p)
	}
	obj, err := s.st.Create(p.Object)
	if err != nil {
		return storeError(rt.kind, p.Object.GetName(), err)
	}
	obj = s.afterCreate(rt.kind, obj)
	writeWarnings(w, p.Warnings)
	s.writeObject(w, r, rt.kind, http.StatusCreated, obj.Object)
	return nil
}

func (s *Server) update(w http.ResponseWriter, r *http.Request, rt route) *apiError {
	body, aerr := readBody(r)
	if aerr != nil {
		return aerr
	}
	old, err := s.st.Get(rt.kind.StorageGroupKind(), rt.namespace, rt.name)
	if err != nil {
		return storeError(rt.kind, rt.name, err)
	}
	p, aerr := s.prepare(r, rt, body, old)
	if aerr != nil {
		return aerr
	}
	if p.Object.GetName() != rt.name {
		return badRequest(fmt.Sprintf("the name of the object (%s) does not match the name on the URL (%s)", p.Object.GetName(), rt.name))
	}
	s.recordUpdate(r, rt, old, p)
	if dry, aerr := dryRun(r); aerr != nil || dry {
		if aerr != nil {
			return aerr
		}
		return s.dryUpdate(w, r, rt, old, p.Object, p.Warnings)
	}
	obj, err := s.st.Update(p.Object)
	if err != nil {
		return storeError(rt.kind, rt.name, err)
	}
	writeWarnings(w, p.Warnings)
	s.writeObject(w, r, rt.kind, http.StatusOK, obj.Object)
	return nil
}

func (s *Server) updateStatus(w http.ResponseWriter, r *http.Request, rt route) *apiError {
	body, aerr := readBody(r)
	if aerr != nil {
		return aerr
	}
	in := &unstructured.Unstructured{}
	if err := in.UnmarshalJSON(body); err != nil {
		return badRequest("cannot decode object: " + err.Error())
	}
	if in.GetName() != rt.name || store.GroupKindOf(in.GetAPIVersion(), in.GetKind()) != rt.kind.StorageGroupKind() {
		return badRequest("the object's kind and name do not match the URL")
	}
	in.SetNamespace(rt.namespace)
	obj, err := s.st.UpdateStatus(in)
	if err != nil {
		return storeError(rt.kind, rt.name, err)
	}
	s.writeObject(w, r, rt.kind, http.StatusOK, obj.Object)
	return nil
}

func (s *Server) delete(w http.ResponseWriter, r *http.Request, rt route) *apiError {
	var opts metav1.DeleteOptions
	body, aerr := readBody(r)
	if aerr != nil {
		return aerr
	}
	if len(strings.TrimSpace(string(body))) > 0 {
		if err := json.Unmarshal(body, &opts); err != nil {
			return badRequest("cannot decode DeleteOptions: " + err.Error())
		}
	}
	if opts.PropagationPolicy == nil { // client-go without a body sends the policy as a query parameter
		if p := r.URL.Query().Get("propagationPolicy"); p != "" {
			pp := metav1.DeletionPropagation(p)
			opts.PropagationPolicy = &pp
		}
	}
	if errs := metav1validation.ValidateDeleteOptions(&opts); len(errs) > 0 {
		return statusError(apierrors.NewInvalid(schema.GroupKind{Group: metav1.GroupName, Kind: "DeleteOptions"}, "", errs))
	}
	if opts.Preconditions == nil {
		opts.Preconditions = &metav1.Preconditions{}
	}
	if len(opts.DryRun) > 0 { // kubectl sends the delete's dryRun in DeleteOptions
		q := r.URL.Query()
		q["dryRun"] = opts.DryRun
		r.URL.RawQuery = q.Encode()
	}
	if dry, aerr := dryRun(r); aerr != nil || dry {
		if aerr != nil {
			return aerr
		}
		old, err := s.st.Get(rt.kind.StorageGroupKind(), rt.namespace, rt.name)
		if err != nil {
			return storeError(rt.kind, rt.name, err)
		}
		s.writeObject(w, r, rt.kind, http.StatusOK, old.Object)
		return nil
	}
	if aerr := s.beforeDelete(rt); aerr != nil {
		return aerr
	}
	obj, err := s.st.Delete(rt.kind.StorageGroupKind(), rt.namespace, rt.name, store.DeleteOptions{
		ResourceVersion: ptr.Deref(opts.Preconditions.ResourceVersion, ""), UID: string(ptr.Deref(opts.Preconditions.UID, "")),
		Propagation: propagationOf(&opts)})
	if err != nil {
		return storeError(rt.kind, rt.name, err)
	}
	s.writeObject(w, r, rt.kind, http.StatusOK, obj.Object)
	return nil
}

// WatchEvent is one line of a watch stream.
type WatchEvent struct {
	Type   string         `json:"type"`
	Object map[string]any `json:"object"`
}

func (s *Server) watch(w http.ResponseWriter, r *http.Request, rt route) *apiError {
	q := r.URL.Query()
	sel, aerr := selectorsOf(q)
	if aerr != nil {
		return aerr
	}
	rv, err := store.ParseResourceVersion(q.Get("resourceVersion"))
	if err != nil {
		return badRequest(err.Error())
	}
	ctx, cancel := context.WithCancel(r.Context())
	if d := watchTimeout(q); d > 0 {
		ctx, cancel = context.WithTimeout(r.Context(), d)
	}
	defer cancel()
	gk := rt.kind.StorageGroupKind()
	// Watch-list: the current objects, then the initial-events-end bookmark, then changes after that list.
	var initial []*unstructured.Unstructured
	listed := sendInitialEvents(q)
	if listed {
		if initial, rv, err = s.st.List(gk, rt.namespace); err != nil {
			return storeError(rt.kind, "", err)
		}
	}
	ch, err := s.st.Watch(ctx, store.WatchOptions{GroupKind: gk, Namespace: rt.namespace, ResourceVersion: rv})
	if err != nil {
		return storeError(rt.kind, "", err)
	}
	s.warnRedacted(w, r, rt.kind)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	flusher, _ := w.(http.Flusher)
	if flusher != nil {
		flusher.Flush()
	}
	enc := json.NewEncoder(w)
	tableVersion, table := wantsTable(r)
	first := true
	send := func(typ string, obj map[string]any) bool {
		switch {
		case table && typ != "BOOKMARK":
			obj = s.watchTableObject(r, rt.kind, tableVersion, obj, first)
			first = false
		case typ != "BOOKMARK":
			obj = s.visible(r, rt.kind, obj)
		}
		if err := enc.Encode(WatchEvent{Type: typ, Object: obj}); err != nil {
			return false // client went away
		}
		if flusher != nil {
			flusher.Flush()
		}
		return true
	}
	for _, o := range initial {
		if sel.matches(o) && !send("ADDED", o.Object) {
			return nil
		}
	}
	if listed && !send("BOOKMARK", initialEventsEnd(rt.kind.APIVersion(), rt.kind.Kind, rv)) {
		return nil
	}
	// Periodic bookmarks keep an informer's resourceVersion fresh across quiet periods, so a re-watch after a
	// timeout starts where the stream was instead of from an expired version.
	var tick <-chan time.Time
	if allowBookmarks(q) {
		t := time.NewTicker(time.Minute)
		defer t.Stop()
		tick = t.C
	}
	last := rv
	for {
		select {
		case e, ok := <-ch:
			if !ok {
				return nil
			}
			last = e.ResourceVersion
			if !sel.matches(e.Object) {
				continue
			}
			if !send(string(e.Type), e.Object.Object) {
				return nil
			}
		case <-tick:
			if last > 0 && !send("BOOKMARK", bookmark(rt.kind.APIVersion(), rt.kind.Kind, last)) {
				return nil
			}
		}
	}
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}
