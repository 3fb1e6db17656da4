package openapi

import (
	"encoding/json"
	"reflect"
	"sort"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/kube-openapi/pkg/validation/spec"
)

// GVK names the kind a top-level definition describes (x-kubernetes-group-version-kind).
type GVK struct {
	Group, Version, Kind string
}

// Builder collects definitions. Refs are RefPrefix + name ("#/definitions/" for OpenAPI v2,
// "#/components/schemas/" for v3). Not safe for concurrent use.
type Builder struct {
	RefPrefix string
	// BuiltinPatchTags keeps the patchStrategy/patchMergeKey tags of k8s.io/api types (list merge keys for
	// strategic merge patch and server-side apply). Set it for Kubernetes' own kinds only: a custom resource that
	// embeds a core type (Knative's PodSpec) has no such keys on a cluster (its containers need no name). Tags of
	// k8s.io/apimachinery types (ObjectMeta's ownerReferences) are always kept, as every kind's metadata has them.
	BuiltinPatchTags bool
	// Defs are the definitions built so far, by name ("dev.knative.serving.pkg.apis.serving.v1.Service").
	Defs  map[string]spec.Schema
	names map[reflect.Type]string
}

// NewBuilder returns an empty builder with refs under prefix.
func NewBuilder(prefix string) *Builder {
	return &Builder{RefPrefix: prefix, Defs: map[string]spec.Schema{}, names: map[reflect.Type]string{}}
}

// AddKind adds the definition of a kind's Go type (v is a pointer to a value, as registry.Kind.New returns) and
// returns its definition name.
//
// A type with its own UnmarshalJSON accepts what its decoder accepts, which reflection cannot see: it is added as
// an open kind (AddOpenKind).
func (b *Builder) AddKind(v any, gvk GVK) string {
	t := reflect.TypeOf(v)
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if implements(t, unmarshaler) {
		name := DefName(t)
		b.AddOpenKind(name, gvk)
		return name
	}
	b.schemaOf(t)
	name := DefName(t)
	d := b.Defs[name]
	d.AddExtension("x-kubernetes-group-version-kind", []any{map[string]any{"group": gvk.Group, "version": gvk.Version, "kind": gvk.Kind}})
	b.Defs[name] = d
	return name
}

// AddOpenKind adds a kind without a Go type: an object whose spec and status are open, under name.
func (b *Builder) AddOpenKind(name string, gvk GVK) {
	meta := b.schemaOf(reflect.TypeOf(metav1.ObjectMeta{}))
	open := spec.Schema{SchemaProps: spec.SchemaProps{Type: []string{"object"}}}
	open.AddExtension("x-kubernetes-preserve-unknown-fields", true)
	d := spec.Schema{SchemaProps: spec.SchemaProps{Type: []string{"object"}, Properties: map[string]spec.Schema{
		"apiVersion": stringSchema(), "kind": stringSchema(), "metadata": meta, "spec": open, "status": open,
	}}}
	d.AddExtension("x-kubernetes-group-version-kind", []any{map[string]any{"group": gvk.Group, "version": gvk.Version, "kind": gvk.Kind}})
	b.Defs[name] = d
}

// DefName is Kubernetes' definition name of a Go type: its package path with the domain reversed, then the type
// name ("k8s.io/api/core/v1".Secret -> "io.k8s.api.core.v1.Secret").
func DefName(t reflect.Type) string {
	parts := strings.Split(t.PkgPath(), "/")
	if len(parts) > 0 {
		d := strings.Split(parts[0], ".")
		for i, j := 0, len(d)-1; i < j; i, j = i+1, j-1 {
			d[i], d[j] = d[j], d[i]
		}
		parts[0] = strings.Join(d, ".")
	}
	return strings.Join(append(parts, t.Name()), ".")
}

func stringSchema() spec.Schema {
	return spec.Schema{SchemaProps: spec.SchemaProps{Type: []string{"string"}}}
}

type schemaTyper interface{ OpenAPISchemaType() []string }
type schemaFormatter interface{ OpenAPISchemaFormat() string }
type oneOfTyper interface{ OpenAPIV3OneOfTypes() []string }

// knownEncodings are Knative types with their own JSON encoding and no OpenAPISchemaType method.
var knownEncodings = map[string]spec.Schema{
	"knative.dev/pkg/apis.URL":          stringSchema(),
	"knative.dev/pkg/apis.VolatileTime": {SchemaProps: spec.SchemaProps{Type: []string{"string"}, Format: "date-time"}},
}

var (
	marshaler   = reflect.TypeOf((*json.Marshaler)(nil)).Elem()
	unmarshaler = reflect.TypeOf((*json.Unmarshaler)(nil)).Elem()
	rawBytes    = reflect.TypeOf(json.RawMessage(nil))
)

func implements(t, iface reflect.Type) bool {
	return t.Implements(iface) || reflect.PointerTo(t).Implements(iface)
}

func zeroOf(t reflect.Type) any { return reflect.New(t).Interface() }

// schemaOf returns the schema of a field of type t: a $ref for named structs (whose definition it adds), inline
// otherwise.
func (b *Builder) schemaOf(t reflect.Type) spec.Schema {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if s, ok := knownEncodings[t.PkgPath()+"."+t.Name()]; ok {
		return s
	}
	if p, ok := zeroOf(t).(oneOfTyper); ok && len(p.OpenAPIV3OneOfTypes()) > 1 {
		s := spec.Schema{}
		s.AddExtension("x-kubernetes-int-or-string", true)
		return s
	}
	if p, ok := zeroOf(t).(schemaTyper); ok {
		s := spec.Schema{SchemaProps: spec.SchemaProps{Type: p.OpenAPISchemaType()}}
		if f, ok := zeroOf(t).(schemaFormatter); ok {
			s.Format = f.OpenAPISchemaFormat()
		}
		return s
	}
	if t == rawBytes || t.PkgPath()+"."+t.Name() == "k8s.io/apimachinery/pkg/runtime.RawExtension" {
		s := spec.Schema{SchemaProps: spec.SchemaProps{Type: []string{"object"}}}
		s.AddExtension("x-kubernetes-preserve-unknown-fields", true)
		return s
	}
	if t.Kind() == reflect.Struct && implements(t, marshaler) {
		// Its own encoding, unknown to us: leave it open rather than describe it wrongly.
		s := spec.Schema{}
		s.AddExtension("x-kubernetes-preserve-unknown-fields", true)
		return s
	}
	switch t.Kind() {
	case reflect.String:
		return stringSchema()
	case reflect.Bool:
		return spec.Schema{SchemaProps: spec.SchemaProps{Type: []string{"boolean"}}}
	case reflect.Int, reflect.Int64, reflect.Uint, reflect.Uint64, reflect.Uint32:
		return spec.Schema{SchemaProps: spec.SchemaProps{Type: []string{"integer"}, Format: "int64"}}
	case reflect.Int32, reflect.Int16, reflect.Int8, reflect.Uint16, reflect.Uint8:
		return spec.Schema{SchemaProps: spec.SchemaProps{Type: []string{"integer"}, Format: "int32"}}
	case reflect.Float32, reflect.Float64:
		return spec.Schema{SchemaProps: spec.SchemaProps{Type: []string{"number"}, Format: "double"}}
	case reflect.Slice, reflect.Array:
		if t.Elem().Kind() == reflect.Uint8 {
			return spec.Schema{SchemaProps: spec.SchemaProps{Type: []string{"string"}, Format: "byte"}}
		}
		item := b.schemaOf(t.Elem())
		return spec.Schema{SchemaProps: spec.SchemaProps{Type: []string{"array"}, Items: &spec.SchemaOrArray{Schema: &item}}}
	case reflect.Map:
		val := b.schemaOf(t.Elem())
		return spec.Schema{SchemaProps: spec.SchemaProps{Type: []string{"object"},
			AdditionalProperties: &spec.SchemaOrBool{Allows: true, Schema: &val}}}
	case reflect.Interface:
		s := spec.Schema{}
		s.AddExtension("x-kubernetes-preserve-unknown-fields", true)
		return s
	case reflect.Struct:
		if t.Name() == "" {
			return b.structSchema(t)
		}
		name := DefName(t)
		if _, seen := b.names[t]; !seen {
			b.names[t] = name
			b.Defs[name] = spec.Schema{} // placeholder: breaks recursion
			b.Defs[name] = b.structSchema(t)
		}
		return spec.Schema{SchemaProps: spec.SchemaProps{Ref: spec.MustCreateRef(b.RefPrefix + name)}}
	}
	s := spec.Schema{}
	s.AddExtension("x-kubernetes-preserve-unknown-fields", true)
	return s
}

func (b *Builder) structSchema(t reflect.Type) spec.Schema {
	s := spec.Schema{SchemaProps: spec.SchemaProps{Type: []string{"object"}, Properties: map[string]spec.Schema{}}}
	b.addFields(&s, t)
	return s
}

// addFields adds t's JSON fields to s, flattening embedded structs and `json:",inline"` fields as encoding/json
// does.
func (b *Builder) addFields(s *spec.Schema, t reflect.Type) {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		ft := f.Type
		for ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
		}
		if (f.Anonymous && name == "") || strings.Contains(","+opts+",", ",inline,") {
			if ft.Kind() == reflect.Struct {
				b.addFields(s, ft)
				continue
			}
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		fs := b.schemaOf(f.Type)
		pkg := t.PkgPath()
		keepTags := strings.HasPrefix(pkg, "k8s.io/apimachinery/") || (b.BuiltinPatchTags && strings.HasPrefix(pkg, "k8s.io/api/"))
		if ps := f.Tag.Get("patchStrategy"); ps != "" && keepTags {
			wrapped := fs
			wrapped.AddExtension("x-kubernetes-patch-strategy", ps)
			if mk := f.Tag.Get("patchMergeKey"); mk != "" {
				wrapped.AddExtension("x-kubernetes-patch-merge-key", mk)
			}
			fs = wrapped
		}
		s.Properties[name] = fs
	}
}

// Names returns the definitions' names, sorted.
func (b *Builder) Names() []string {
	out := make([]string, 0, len(b.Defs))
	for n := range b.Defs {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}
