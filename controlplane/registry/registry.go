package registry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"knative.dev/pkg/apis"
	sigsjson "sigs.k8s.io/json"
)

// Sentinel errors. Errors returned by Prepare wrap one of these.
var (
	// ErrUnknownKind: no registered kind matches the apiVersion/kind or the name given.
	ErrUnknownKind = errors.New("unknown kind")
	// ErrInvalid: the document does not decode, or fails validation.
	ErrInvalid = errors.New("invalid")
)

// Kind describes one resource kind.
type Kind struct {
	Group      string // "" for the core group (v1 Secret, ConfigMap...)
	Version    string
	Kind       string
	Plural     string
	Singular   string
	ShortNames []string
	Namespaced bool
	// ActedOn says tide reconciles this kind. Kinds not acted on are stored with a warning so bundles written for a
	// cluster apply unchanged.
	ActedOn bool
	// Columns names the kind's extra `tide get` columns (see package cli); informational.
	Columns []string
	// Categories are the kind's discovery categories (`kubectl get all`, `kubectl get knative`), as its CRD
	// declares them.
	Categories []string
	// PrinterColumns are the columns the API's Table output shows after NAME (kubectl get), as a CRD's
	// additionalPrinterColumns. Empty: NAME and AGE only.
	PrinterColumns []PrinterColumn

	// New returns a pointer to a fresh Go value of the kind's type (e.g. &servingv1.Service{}). When set, documents
	// are decoded strictly into it; when nil the document is handled generically (kept as is, not strict).
	New func() any
	// Default overrides the default hook. When nil and New's value implements apis.Defaultable, SetDefaults is used.
	Default func(ctx context.Context, obj any)
	// WithContext, when set, prepares the context of Default and Validate (e.g. the cluster configuration a
	// Knative webhook would read from its ConfigMaps).
	WithContext func(ctx context.Context) context.Context
	// Validate overrides the validation hook. When nil and New's value implements apis.Validatable, Validate is
	// used. Only apis.ErrorLevel diagnostics are kept.
	Validate func(ctx context.Context, obj any) *apis.FieldError
	// StoredAs, when set, is the GroupKind objects of this kind are converted to and stored as (an older form
	// accepted on input, e.g. the 2020 RocketMQSource group): the API reads and writes them there, so `tide get`
	// shows the converted form. Prepare's output must then carry the apiVersion/kind of StoredAs.
	StoredAs string
}

// PrinterColumn is one column of the kind's Table output, as apiextensions.k8s.io/v1's
// CustomResourceColumnDefinition: JSONPath is a kubectl-style JSONPath relative to the object (".status.url").
type PrinterColumn struct {
	Name        string
	Type        string // string, integer, number, boolean, date
	Format      string
	Description string
	Priority    int32 // 0: always shown; higher: only with -o wide
	JSONPath    string
	// CountKeysOf, instead of JSONPath, makes the cell the number of keys of these top-level maps (the DATA column
	// of Secrets and ConfigMaps, which no JSONPath expresses).
	CountKeysOf []string
}

// APIVersion is group/version, or just the version for the core group.
func (k Kind) APIVersion() string {
	if k.Group == "" {
		return k.Version
	}
	return k.Group + "/" + k.Version
}

// GroupKind identifies the kind in the store: "Kind.group" (or "Kind" for core), version-independent like Kubernetes.
func (k Kind) GroupKind() string {
	if k.Group == "" {
		return k.Kind
	}
	return k.Kind + "." + k.Group
}

// StorageGroupKind is where objects of the kind live in the store: StoredAs when set, GroupKind otherwise.
func (k Kind) StorageGroupKind() string {
	if k.StoredAs != "" {
		return k.StoredAs
	}
	return k.GroupKind()
}

// Strict reports whether documents are decoded strictly into a Go type.
func (k Kind) Strict() bool { return k.New != nil }

// Registry is the table of kinds. mu guards kinds; registration normally happens before serving starts.
type Registry struct {
	mu    sync.RWMutex
	kinds []Kind
}

// New returns an empty registry; see NewDefault for tide's built-in kinds.
func New() *Registry { return &Registry{} }

// Register adds or replaces (same group and kind) a kind.
func (r *Registry) Register(k Kind) error {
	if k.Kind == "" || k.Version == "" || k.Plural == "" {
		return fmt.Errorf("register %q: kind, version and plural are required", k.Kind)
	}
	if k.Singular == "" {
		k.Singular = strings.ToLower(k.Kind)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for i, have := range r.kinds {
		if have.Group == k.Group && have.Kind == k.Kind {
			r.kinds[i] = k
			return nil
		}
	}
	r.kinds = append(r.kinds, k)
	return nil
}

// Kinds returns every registered kind, sorted by group then kind.
func (r *Registry) Kinds() []Kind {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := append([]Kind(nil), r.kinds...)
	sort.Slice(out, func(i, j int) bool {
		if out[i].Group != out[j].Group {
			return out[i].Group < out[j].Group
		}
		return out[i].Kind < out[j].Kind
	})
	return out
}

// ForAPIVersionKind finds the kind for a document's apiVersion and kind.
func (r *Registry) ForAPIVersionKind(apiVersion, kind string) (Kind, error) {
	group, version := splitAPIVersion(apiVersion)
	r.mu.RLock()
	defer r.mu.RUnlock()
	for _, k := range r.kinds {
		if k.Group == group && k.Kind == kind && k.Version == version {
			return k, nil
		}
	}
	return Kind{}, fmt.Errorf("%w: no matches for kind %q in version %q", ErrUnknownKind, kind, apiVersion)
}

// ForResource finds the kind served at group/version/plural (an API path).
func (r *Registry) ForResource(group, version, plural string) (Kind, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	for _, k := range r.kinds {
		if k.Group == group && k.Version == version && k.Plural == plural {
			return k, nil
		}
	}
	return Kind{}, fmt.Errorf("%w: the server could not find the requested resource %s/%s %s", ErrUnknownKind, group, version, plural)
}

// ForGroupKind finds a kind by its version-independent GroupKind string ("Service.serving.knative.dev").
func (r *Registry) ForGroupKind(gk string) (Kind, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	for _, k := range r.kinds {
		if k.GroupKind() == gk {
			return k, nil
		}
	}
	return Kind{}, fmt.Errorf("%w: %s", ErrUnknownKind, gk)
}

// Resolve finds kinds by a name as a user types it: plural, singular, short name, Kind (any case), optionally
// qualified by group ("services.serving.knative.dev"). Several kinds can share a name (Service is both core and
// serving in a cluster); Lookup orders acted-on kinds first.
func (r *Registry) Resolve(name string) []Kind { return Resolve(r.Kinds(), name) }

// Resolve is Registry.Resolve over any list of kinds, for clients holding a discovered list.
func Resolve(kinds []Kind, name string) []Kind {
	name = strings.ToLower(name)
	base, group, _ := strings.Cut(name, ".")
	var out []Kind
	for _, k := range kinds {
		if group != "" && k.Group != group {
			continue
		}
		if k.Plural == base || k.Singular == base || strings.ToLower(k.Kind) == base || contains(k.ShortNames, base) {
			out = append(out, k)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].ActedOn && !out[j].ActedOn })
	return out
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func splitAPIVersion(apiVersion string) (group, version string) {
	if g, v, ok := strings.Cut(apiVersion, "/"); ok {
		return g, v
	}
	return "", apiVersion
}

// Prepared is a document turned into the object to store.
type Prepared struct {
	Kind     Kind
	Object   *unstructured.Unstructured
	Warnings []string
	// Decoded is the document as decoded (into the kind's Go type, unknown fields dropped) before defaults: what
	// its writer set, which the API's field manager records in managedFields (a cluster's defaulting webhooks
	// also run after the field manager, so defaulted fields belong to no manager).
	Decoded map[string]any
}

// FieldValidation is what Prepare does with unknown and duplicate fields (Kubernetes' fieldValidation).
type FieldValidation string

const (
	// FieldValidationAggregate (the zero value, tide's own) reports them as causes of an *InvalidError together
	// with every validation error, so a document's problems are fixed in one round.
	FieldValidationAggregate FieldValidation = ""
	// FieldValidationStrict refuses them before validation with a *StrictDecodingError, as the API server does.
	FieldValidationStrict FieldValidation = "Strict"
	// FieldValidationWarn drops them and adds one warning each (`unknown field "spec.x"`).
	FieldValidationWarn FieldValidation = "Warn"
	// FieldValidationIgnore drops them silently.
	FieldValidationIgnore FieldValidation = "Ignore"
)

// PrepareOptions tune Prepare.
type PrepareOptions struct {
	FieldValidation FieldValidation
}

// StrictDecodingError lists a document's unknown and duplicate fields (FieldValidationStrict). Its text is the
// API server's: `strict decoding error: unknown field "spec.x", duplicate field "y"`.
type StrictDecodingError struct {
	Kind Kind
	Name string
	Errs []string
}

func (e *StrictDecodingError) Error() string {
	return "strict decoding error: " + strings.Join(e.Errs, ", ")
}

func (e *StrictDecodingError) Unwrap() error { return ErrInvalid }

// Prepare decodes data (a JSON object) as the kind its apiVersion and kind name, strictly when the kind has a Go
// type, applies defaults and validates. old is the stored object for an update (nil on create); Knative's update
// validation compares against it. namespace fills metadata.namespace when the document has none (namespaced kinds).
//
// Errors wrap ErrUnknownKind or ErrInvalid; a validation error is an *InvalidError carrying field paths.
func (r *Registry) Prepare(ctx context.Context, data []byte, namespace string, old *unstructured.Unstructured) (*Prepared, error) {
	return r.PrepareWith(ctx, data, namespace, old, PrepareOptions{})
}

// PrepareWith is Prepare with options (opts.FieldValidation: what unknown and duplicate fields do).
func (r *Registry) PrepareWith(ctx context.Context, data []byte, namespace string, old *unstructured.Unstructured, opts PrepareOptions) (*Prepared, error) {
	var head struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
		Metadata   struct {
			Name      string `json:"name"`
			Namespace string `json:"namespace"`
		} `json:"metadata"`
	}
	if err := json.Unmarshal(data, &head); err != nil {
		return nil, &InvalidError{Message: "cannot decode document: " + err.Error()}
	}
	if head.APIVersion == "" || head.Kind == "" {
		return nil, &InvalidError{Kind: head.Kind, Name: head.Metadata.Name, Causes: []Cause{{Field: missingField(head.APIVersion), Message: "Required value"}}}
	}
	k, err := r.ForAPIVersionKind(head.APIVersion, head.Kind)
	if err != nil {
		return nil, err
	}
	p := &Prepared{Kind: k}
	if !k.ActedOn {
		p.Warnings = append(p.Warnings, fmt.Sprintf("%s %s is stored but tide does not act on it", k.APIVersion(), k.Kind))
	}
	var obj map[string]any
	if k.New != nil {
		obj, err = prepareTyped(ctx, k, data, namespace, head.Metadata.Name, old, opts.FieldValidation, p)
	} else {
		obj, err = prepareGeneric(k, data, namespace, head.Metadata.Name)
		p.Decoded = runtime.DeepCopyJSON(obj)
	}
	if err != nil {
		return nil, err
	}
	if k.Namespaced {
		ns, _, _ := unstructured.NestedString(obj, "metadata", "namespace")
		if ns == "" {
			if namespace == "" {
				namespace = "default"
			}
			_ = unstructured.SetNestedField(obj, namespace, "metadata", "namespace")
		}
	} else {
		unstructured.RemoveNestedField(obj, "metadata", "namespace")
	}
	p.Object = &unstructured.Unstructured{Object: obj}
	if err := checkName(k, p.Object.GetName()); err != nil {
		return nil, err
	}
	if err := checkNamespace(k, p.Object.GetName(), p.Object.GetNamespace()); err != nil {
		return nil, err
	}
	return p, nil
}

func missingField(apiVersion string) string {
	if apiVersion == "" {
		return "apiVersion"
	}
	return "kind"
}

func prepareTyped(ctx context.Context, k Kind, data []byte, namespace, name string, old *unstructured.Unstructured, fv FieldValidation, p *Prepared) (map[string]any, error) {
	v := k.New()
	strictErrs, err := sigsjson.UnmarshalStrict(data, v, sigsjson.DisallowUnknownFields, sigsjson.DisallowDuplicateFields)
	if err != nil {
		return nil, &InvalidError{Kind: k.Kind, Name: name, Message: "cannot decode: " + err.Error()}
	}
	ie := &InvalidError{Kind: k.Kind, Name: name}
	switch fv {
	case FieldValidationStrict:
		if len(strictErrs) > 0 {
			se := &StrictDecodingError{Kind: k, Name: name}
			for _, e := range strictErrs {
				se.Errs = append(se.Errs, e.Error())
			}
			return nil, se
		}
	case FieldValidationWarn:
		for _, e := range strictErrs {
			p.Warnings = append(p.Warnings, e.Error())
		}
	case FieldValidationIgnore:
	default:
		// Unknown and duplicate fields do not stop validation: the document's every problem is reported at once,
		// as Kubernetes aggregates a field.ErrorList, so a user fixes them in one round.
		for _, se := range strictErrs {
			ie.Causes = append(ie.Causes, strictCause(se))
		}
	}
	if b, err := json.Marshal(v); err == nil {
		var decoded map[string]any
		if json.Unmarshal(b, &decoded) == nil {
			cleanEncoded(decoded)
			p.Decoded = decoded
		}
	}
	// Knative validation of metadata looks at the namespace; fill it before defaults, as the API server does.
	if k.Namespaced {
		setNamespace(v, namespace)
	}
	// Defaults always run as on create: tide replaces the whole spec on update (there is no merge with the live
	// object as kubectl apply does), so create-only defaults (e.g. enableServiceLinks: false) must be applied again
	// or every re-apply of an unchanged document would look like a change.
	if k.WithContext != nil {
		ctx = k.WithContext(ctx)
	}
	dctx := apis.WithinCreate(ctx)
	if k.Default != nil {
		k.Default(dctx, v)
	} else if d, ok := v.(apis.Defaultable); ok {
		d.SetDefaults(dctx)
	}
	// Validate what would be stored: a cluster's validating webhook sees the defaulted object after a JSON round
	// trip (empty maps become nil), and Knative's immutability checks compare exactly that with the old object.
	if b, err := json.Marshal(v); err == nil {
		fresh := k.New()
		if json.Unmarshal(b, fresh) == nil {
			v = fresh
		}
	}
	if old != nil {
		oldV := k.New()
		if b, err := json.Marshal(old.Object); err == nil {
			if json.Unmarshal(b, oldV) == nil {
				ctx = apis.WithinUpdate(ctx, oldV)
			}
		}
	} else {
		ctx = apis.WithinCreate(ctx)
	}
	var fe *apis.FieldError
	if k.Validate != nil {
		fe = k.Validate(ctx, v)
	} else if val, ok := v.(apis.Validatable); ok {
		fe = val.Validate(ctx)
	}
	if fe = fe.Filter(apis.ErrorLevel); fe != nil {
		for _, e := range fe.WrappedErrors() {
			for _, p := range e.Paths {
				ie.Causes = append(ie.Causes, Cause{Field: p, Message: fieldMessage(e)})
			}
			if len(e.Paths) == 0 {
				ie.Causes = append(ie.Causes, Cause{Message: fieldMessage(e)})
			}
		}
	}
	if len(ie.Causes) > 0 {
		// Kubernetes' object-name rule too, unless the kind's own validation already spoke about the name.
		var nameErr *InvalidError
		if errors.As(checkName(k, name), &nameErr) && !slices.ContainsFunc(ie.Causes, func(c Cause) bool { return c.Field == "metadata.name" }) {
			ie.Causes = append(nameErr.Causes, ie.Causes...)
		}
		return nil, ie
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encode %s: %w", k.Kind, err)
	}
	var obj map[string]any
	if err := json.Unmarshal(b, &obj); err != nil {
		return nil, fmt.Errorf("encode %s: %w", k.Kind, err)
	}
	cleanEncoded(obj)
	return obj, nil
}

func fieldMessage(e *apis.FieldError) string {
	if e.Details != "" {
		return e.Message + ": " + e.Details
	}
	return e.Message
}

// setNamespace fills metadata.namespace of a typed object through JSON, so any Kubernetes-shaped type works.
func setNamespace(v any, namespace string) {
	type metaHaver interface {
		GetNamespace() string
		SetNamespace(string)
	}
	if m, ok := v.(metaHaver); ok && m.GetNamespace() == "" {
		if namespace == "" {
			namespace = "default"
		}
		m.SetNamespace(namespace)
	}
}

// cleanEncoded removes what encoding a typed object adds but a user never wrote: a null creationTimestamp and an
// empty status. The store owns metadata and status.
func cleanEncoded(obj map[string]any) {
	if md, ok := obj["metadata"].(map[string]any); ok {
		if md["creationTimestamp"] == nil {
			delete(md, "creationTimestamp")
		}
	}
	if st, ok := obj["status"].(map[string]any); ok && len(st) == 0 {
		delete(obj, "status")
	}
}

func prepareGeneric(k Kind, data []byte, namespace, name string) (map[string]any, error) {
	var obj map[string]any
	if err := json.Unmarshal(data, &obj); err != nil {
		return nil, &InvalidError{Kind: k.Kind, Name: name, Message: "cannot decode: " + err.Error()}
	}
	if _, ok := obj["metadata"].(map[string]any); !ok {
		return nil, &InvalidError{Kind: k.Kind, Name: name, Causes: []Cause{{Field: "metadata.name", Message: "Required value"}}}
	}
	obj["apiVersion"] = k.APIVersion()
	return obj, nil
}

func strictCause(err error) Cause {
	msg := err.Error()
	// sigs.k8s.io/json reports `unknown field "spec.template.spec.foo"` and `duplicate field "x"`.
	for _, prefix := range []string{"unknown field ", "duplicate field "} {
		if rest, ok := strings.CutPrefix(msg, prefix); ok {
			return Cause{Field: strings.Trim(rest, `"`), Message: strings.TrimSpace(strings.TrimSuffix(prefix, " field ")) + " field"}
		}
	}
	return Cause{Message: msg}
}
