package client

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/tide-run/tide/controlplane/discovery"
)

// DefaultServer is the API address when neither --server nor TIDE_SERVER is given.
const DefaultServer = "http://127.0.0.1:8090"

// ErrUnknownKind: the server has no kind by that name.
var ErrUnknownKind = errors.New("unknown kind")

// Kind is a kind as the server describes it (GET /tide/v1/kinds): the API's own wire type, shared with the server
// through the leaf package discovery, so the client stays free of server packages.
type Kind = discovery.Kind

// StatusError is an error answer from the API (a metav1.Status).
type StatusError struct{ Status metav1.Status }

func (e *StatusError) Error() string { return e.Status.Message }

func reasonOf(err error) metav1.StatusReason {
	var se *StatusError
	if errors.As(err, &se) {
		return se.Status.Reason
	}
	return ""
}

// IsNotFound, IsConflict, IsAlreadyExists and IsInvalid classify API errors.
func IsNotFound(err error) bool      { return reasonOf(err) == metav1.StatusReasonNotFound }
func IsConflict(err error) bool      { return reasonOf(err) == metav1.StatusReasonConflict }
func IsAlreadyExists(err error) bool { return reasonOf(err) == metav1.StatusReasonAlreadyExists }
func IsInvalid(err error) bool       { return reasonOf(err) == metav1.StatusReasonInvalid }

// IsGone reports a 410 Expired: a watch from a resourceVersion older than the server's kept history (after a
// restart, history starts at the store's resourceVersion then). Watch again without one, or from a fresh list's.
func IsGone(err error) bool { return reasonOf(err) == metav1.StatusReasonExpired }

// Client talks to one API server. kinds caches discovery (guarded by mu).
type Client struct {
	base *url.URL
	hc   *http.Client

	mu    sync.Mutex
	kinds []Kind
	// token is sent as "Authorization: Bearer" when set. guessed: it was found, not given (SetFallbackToken), and
	// is dropped after the server refuses it.
	token   string
	guessed bool
}

// New returns a client for the server URL (e.g. http://127.0.0.1:8090). hc may be nil (http.DefaultClient's
// transport, no overall timeout, so watches can stream).
func New(server string, hc *http.Client) (*Client, error) {
	if server == "" {
		server = DefaultServer
	}
	if !strings.Contains(server, "://") {
		server = "http://" + server
	}
	u, err := url.Parse(server)
	if err != nil {
		return nil, fmt.Errorf("server %q: %w", server, err)
	}
	if hc == nil {
		hc = &http.Client{}
	}
	return &Client{base: u, hc: hc}, nil
}

// Server is the base URL.
func (c *Client) Server() string { return c.base.String() }

// SetToken makes every request carry "Authorization: Bearer token" (tide's API token; see `tide up`).
func (c *Client) SetToken(token string) {
	c.mu.Lock()
	c.token, c.guessed = token, false
	c.mu.Unlock()
}

// SetFallbackToken is SetToken for a token the caller found rather than was given (the CLI reads a local data
// dir's token file): when the server answers 401 to it (another tide, another data dir), the client drops it
// and repeats the request without a token, so a server that admits anonymous callers still answers.
func (c *Client) SetFallbackToken(token string) {
	c.mu.Lock()
	c.token, c.guessed = token, token != ""
	c.mu.Unlock()
}

func (c *Client) bearer() (token string, guessed bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.token, c.guessed
}

func (c *Client) do(ctx context.Context, method, path string, query url.Values, body any) (*http.Response, error) {
	var raw []byte
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		raw = b
	}
	return c.doRaw(ctx, method, path, query, "application/json", raw)
}

// doRaw sends body (none when nil) with the given content type.
func (c *Client) doRaw(ctx context.Context, method, path string, query url.Values, contentType string, body []byte) (*http.Response, error) {
	u := *c.base
	u.Path = strings.TrimSuffix(u.Path, "/") + path
	u.RawQuery = query.Encode()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), rd)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", contentType)
	}
	req.Header.Set("Accept", "application/json")
	token, guessed := c.bearer()
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("cannot reach the tide API at %s (is `tide up` running?): %w", c.base, err)
	}
	if resp.StatusCode == http.StatusUnauthorized && guessed {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
		resp.Body.Close()
		c.mu.Lock()
		if c.token == token {
			c.token, c.guessed = "", false
		}
		c.mu.Unlock()
		return c.doRaw(ctx, method, path, query, contentType, body)
	}
	return resp, nil
}

// call performs a request and decodes a JSON answer into out (when non-nil); error answers become *StatusError.
func (c *Client) call(ctx context.Context, method, path string, query url.Values, body, out any) (http.Header, error) {
	resp, err := c.do(ctx, method, path, query, body)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode >= 300 {
		return resp.Header, statusError(resp.StatusCode, b)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return nil, fmt.Errorf("decode answer from %s %s: %w", method, path, err)
		}
	}
	return resp.Header, nil
}

func statusError(code int, body []byte) error {
	var st metav1.Status
	if json.Unmarshal(body, &st) == nil && st.Kind == "Status" {
		return &StatusError{Status: st}
	}
	return &StatusError{Status: metav1.Status{Code: int32(code), Reason: metav1.StatusReasonUnknown,
		Message: fmt.Sprintf("the server answered %d: %s", code, strings.TrimSpace(string(body)))}}
}

// Kinds returns the server's kinds (cached after the first call).
func (c *Client) Kinds(ctx context.Context) ([]Kind, error) {
	c.mu.Lock()
	if c.kinds != nil {
		defer c.mu.Unlock()
		return c.kinds, nil
	}
	c.mu.Unlock()
	var out discovery.List
	if _, err := c.call(ctx, http.MethodGet, discovery.Path, nil, nil, &out); err != nil {
		return nil, err
	}
	c.mu.Lock()
	c.kinds = out.Kinds
	c.mu.Unlock()
	return out.Kinds, nil
}

// ResolveKind finds a kind by what a user types: plural, singular, short name or Kind, optionally
// "plural.group". When a name is ambiguous, kinds tide acts on win (as kubectl prefers its preferred group).
func (c *Client) ResolveKind(ctx context.Context, name string) (Kind, error) {
	kinds, err := c.Kinds(ctx)
	if err != nil {
		return Kind{}, err
	}
	lower := strings.ToLower(name)
	base, group, _ := strings.Cut(lower, ".")
	var found []Kind
	for _, k := range kinds {
		if group != "" && k.Group != group {
			continue
		}
		if k.Plural == base || k.Singular == base || strings.ToLower(k.Kind) == base || contains(k.ShortNames, base) {
			found = append(found, k)
		}
	}
	if len(found) == 0 {
		return Kind{}, fmt.Errorf("%w: the server doesn't have a resource type %q", ErrUnknownKind, name)
	}
	best := found[0]
	for _, k := range found {
		// Prefer the kind tide acts on, then the newer group for RocketMQSource (sources.knative.dev).
		if (k.ActedOn && !best.ActedOn) || (k.ActedOn == best.ActedOn && len(k.Group) < len(best.Group) && k.Kind == best.Kind) {
			best = k
		}
	}
	return best, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// KindFor finds the kind of a document's apiVersion and kind.
func (c *Client) KindFor(ctx context.Context, apiVersion, kind string) (Kind, error) {
	kinds, err := c.Kinds(ctx)
	if err != nil {
		return Kind{}, err
	}
	for _, k := range kinds {
		if k.APIVersion() == apiVersion && k.Kind == kind {
			return k, nil
		}
	}
	return Kind{}, fmt.Errorf("%w: no matches for kind %q in version %q", ErrUnknownKind, kind, apiVersion)
}

// Path is the API path for a kind, namespace and name (each may be empty).
func Path(k Kind, ns, name string) string {
	var b strings.Builder
	if k.Group == "" {
		b.WriteString("/api/" + k.Version)
	} else {
		b.WriteString("/apis/" + k.Group + "/" + k.Version)
	}
	if k.Namespaced && ns != "" {
		b.WriteString("/namespaces/" + url.PathEscape(ns))
	}
	b.WriteString("/" + k.Plural)
	if name != "" {
		b.WriteString("/" + url.PathEscape(name))
	}
	return b.String()
}

// toObj decodes an object the way the server stores it (integers as int64, so metadata accessors such as
// GetGeneration work).
func toObj(raw json.RawMessage) (*unstructured.Unstructured, error) {
	u := &unstructured.Unstructured{}
	if err := u.UnmarshalJSON(raw); err != nil {
		return nil, fmt.Errorf("decode object: %w", err)
	}
	return u, nil
}

// Get fetches one object.
func (c *Client) Get(ctx context.Context, k Kind, ns, name string) (*unstructured.Unstructured, error) {
	var out json.RawMessage
	if _, err := c.call(ctx, http.MethodGet, Path(k, nsFor(k, ns), name), nil, nil, &out); err != nil {
		return nil, err
	}
	return toObj(out)
}

func nsFor(k Kind, ns string) string {
	if !k.Namespaced {
		return ""
	}
	if ns == "" {
		return "default"
	}
	return ns
}

// ListOptions narrow a list or watch.
type ListOptions struct {
	// AllNamespaces lists across namespaces (the namespace argument is ignored).
	AllNamespaces bool
	// LabelSelector, Kubernetes syntax ("a=b,c!=d").
	LabelSelector string
	// ResourceVersion to watch from ("" = current state first, then changes).
	ResourceVersion string
}

// List returns the objects of a kind and the list's resourceVersion.
func (c *Client) List(ctx context.Context, k Kind, ns string, opts ListOptions) ([]*unstructured.Unstructured, string, error) {
	if opts.AllNamespaces {
		ns = ""
	} else {
		ns = nsFor(k, ns)
	}
	q := url.Values{}
	if opts.LabelSelector != "" {
		q.Set("labelSelector", opts.LabelSelector)
	}
	var out struct {
		Metadata struct {
			ResourceVersion string `json:"resourceVersion"`
		} `json:"metadata"`
		Items []json.RawMessage `json:"items"`
	}
	if _, err := c.call(ctx, http.MethodGet, Path(k, ns, ""), q, nil, &out); err != nil {
		return nil, "", err
	}
	objs := make([]*unstructured.Unstructured, 0, len(out.Items))
	for _, it := range out.Items {
		o, err := toObj(it)
		if err != nil {
			return nil, "", err
		}
		objs = append(objs, o)
	}
	return objs, out.Metadata.ResourceVersion, nil
}

func warningsOf(h http.Header) []string {
	var out []string
	for _, v := range h.Values("Warning") {
		// `299 - "message"`
		if _, msg, ok := strings.Cut(v, " - "); ok {
			v = strings.Trim(msg, `"`)
		}
		out = append(out, v)
	}
	return out
}

// strictFields asks the API to refuse unknown and duplicate fields (its default, as a cluster's, is to drop them
// with a warning): a typo in a document is an error, as with kubectl's default --validate=strict.
func strictFields() url.Values { return url.Values{"fieldValidation": {"Strict"}} }

// Create creates obj (its namespace defaults to "default" for namespaced kinds) and returns the stored object and
// the server's warnings.
func (c *Client) Create(ctx context.Context, k Kind, obj *unstructured.Unstructured) (*unstructured.Unstructured, []string, error) {
	var out json.RawMessage
	h, err := c.call(ctx, http.MethodPost, Path(k, nsFor(k, obj.GetNamespace()), ""), strictFields(), obj.Object, &out)
	if err != nil {
		return nil, nil, err
	}
	o, err := toObj(out)
	return o, warningsOf(h), err
}

// Update replaces obj (PUT); a set resourceVersion is a precondition.
func (c *Client) Update(ctx context.Context, k Kind, obj *unstructured.Unstructured) (*unstructured.Unstructured, []string, error) {
	var out json.RawMessage
	h, err := c.call(ctx, http.MethodPut, Path(k, nsFor(k, obj.GetNamespace()), obj.GetName()), strictFields(), obj.Object, &out)
	if err != nil {
		return nil, nil, err
	}
	o, err := toObj(out)
	return o, warningsOf(h), err
}

// UpdateStatus replaces obj's status (PUT .../status).
func (c *Client) UpdateStatus(ctx context.Context, k Kind, obj *unstructured.Unstructured) (*unstructured.Unstructured, error) {
	var out json.RawMessage
	if _, err := c.call(ctx, http.MethodPut, Path(k, nsFor(k, obj.GetNamespace()), obj.GetName())+"/status", nil, obj.Object, &out); err != nil {
		return nil, err
	}
	return toObj(out)
}

// Patch types for Patch: the media types the API accepts.
const (
	// MergePatch is a JSON merge patch (RFC 7386): objects merge, null deletes a field, lists are replaced.
	MergePatch = "application/merge-patch+json"
	// JSONPatch is a JSON patch (RFC 6902): a list of add/remove/replace/move/copy/test operations.
	JSONPatch = "application/json-patch+json"
	// StrategicMergePatch is Kubernetes' strategic merge patch, for the built-in kinds (Secret, ConfigMap, ...).
	StrategicMergePatch = "application/strategic-merge-patch+json"
)

// Patch applies a patch (MergePatch or JSONPatch) to an object, or to its status when status is true, and returns
// the stored result. Without metadata.resourceVersion in the patch the server applies it to the current object.
func (c *Client) Patch(ctx context.Context, k Kind, ns, name, patchType string, patch []byte, status bool) (*unstructured.Unstructured, []string, error) {
	path := Path(k, nsFor(k, ns), name)
	if status {
		path += "/status"
	}
	resp, err := c.doRaw(ctx, http.MethodPatch, path, strictFields(), patchType, patch)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, nil, err
	}
	if resp.StatusCode >= 300 {
		return nil, nil, statusError(resp.StatusCode, b)
	}
	o, err := toObj(b)
	return o, warningsOf(resp.Header), err
}

// Delete deletes an object (and, on the server, everything it owns) and returns it.
func (c *Client) Delete(ctx context.Context, k Kind, ns, name string) (*unstructured.Unstructured, error) {
	var out json.RawMessage
	if _, err := c.call(ctx, http.MethodDelete, Path(k, nsFor(k, ns), name), nil, nil, &out); err != nil {
		return nil, err
	}
	return toObj(out)
}

// Ready returns nil when GET /readyz answers 200, else an error with the failing checks.
func (c *Client) Ready(ctx context.Context) error {
	resp, err := c.do(ctx, http.MethodGet, "/readyz", nil, nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("not ready (%d): %s", resp.StatusCode, strings.TrimSpace(string(b)))
	}
	return nil
}

// Event is one watch event.
type Event struct {
	Type   string // ADDED, MODIFIED, DELETED
	Object *unstructured.Unstructured
}

// Watch streams changes of a kind until ctx ends or the server closes the stream; then the channel is closed.
// With an empty opts.ResourceVersion the current objects arrive first as ADDED.
func (c *Client) Watch(ctx context.Context, k Kind, ns string, opts ListOptions) (<-chan Event, error) {
	if opts.AllNamespaces {
		ns = ""
	} else {
		ns = nsFor(k, ns)
	}
	q := url.Values{"watch": {"true"}}
	if opts.LabelSelector != "" {
		q.Set("labelSelector", opts.LabelSelector)
	}
	if opts.ResourceVersion != "" {
		q.Set("resourceVersion", opts.ResourceVersion)
	}
	resp, err := c.do(ctx, http.MethodGet, Path(k, ns, ""), q, nil)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return nil, statusError(resp.StatusCode, b)
	}
	ch := make(chan Event)
	go func() {
		defer close(ch)
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 64<<10), 16<<20)
		for sc.Scan() {
			var e struct {
				Type   string          `json:"type"`
				Object json.RawMessage `json:"object"`
			}
			if json.Unmarshal(sc.Bytes(), &e) != nil {
				return
			}
			obj, err := toObj(e.Object)
			if err != nil {
				return
			}
			select {
			case ch <- Event{Type: e.Type, Object: obj}:
			case <-ctx.Done():
				return
			}
		}
	}()
	return ch, nil
}
