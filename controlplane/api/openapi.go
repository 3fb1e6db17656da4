package api

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"strings"

	openapiv2 "github.com/google/gnostic-models/openapiv2"
	"google.golang.org/protobuf/proto"
	"k8s.io/kube-openapi/pkg/spec3"
	"k8s.io/kube-openapi/pkg/validation/spec"

	"github.com/tide-run/tide/controlplane/openapi"
	"github.com/tide-run/tide/controlplane/registry"
)

// OpenAPI documents for kubectl: /openapi/v2 (JSON, or protobuf as kubectl's validator and explain ask for it),
// /openapi/v3 (the discovery of group-version documents, with a hash kubectl caches by) and
// /openapi/v3/apis/<group>/<version> (or /openapi/v3/api/v1). The schemas come from package openapi (reflection
// over each kind's Go type), built at request time from the registry, so they always describe what the API decodes.
//
// The PATCH operations list the fieldValidation parameter, as a cluster's do: kubectl then leaves validation to
// the server and sends fieldValidation=Strict (--validate=strict, its default), Warn or Ignore (writeoptions.go).

const (
	openAPIV2Protobuf = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf" // the response type; clients ask with "@v1.0" too
	openAPIV3Prefix   = "/openapi/v3/"
	patchDef          = "io.k8s.apimachinery.pkg.apis.meta.v1.Patch"
)

func (s *Server) mountOpenAPI() {
	s.mux.HandleFunc("GET /openapi/v2", s.serveOpenAPIV2)
	s.mux.HandleFunc("GET /openapi/v3", s.serveOpenAPIV3Root)
	s.mux.HandleFunc("GET /openapi/v3/", s.serveOpenAPIV3)
}

func gvkOf(k registry.Kind) openapi.GVK {
	return openapi.GVK{Group: k.Group, Version: k.Version, Kind: k.Kind}
}

// addKinds adds kinds' definitions to b and returns each kind's definition name.
func addKinds(b *openapi.Builder, kinds []registry.Kind) map[string]string {
	names := map[string]string{}
	for _, k := range kinds {
		if k.New != nil {
			names[k.GroupKind()] = b.AddKind(k.New(), gvkOf(k))
		} else {
			name := openAPIGroupName(k.Group) + "." + k.Version + "." + k.Kind
			b.AddOpenKind(name, gvkOf(k))
			names[k.GroupKind()] = name
		}
	}
	return names
}

// openAPIGroupName reverses a group's domain as Kubernetes names CRD definitions ("dev.knative.serving").
func openAPIGroupName(g string) string {
	if g == "" {
		return "io.k8s.api.core"
	}
	d := strings.Split(g, ".")
	for i, j := 0, len(d)-1; i < j; i, j = i+1, j-1 {
		d[i], d[j] = d[j], d[i]
	}
	return strings.Join(d, ".")
}

// itemPath is the path of one object of k, as the API serves it.
func itemPath(k registry.Kind) string {
	p := "/apis/" + k.Group + "/" + k.Version
	if k.Group == "" {
		p = "/api/" + k.Version
	}
	if k.Namespaced {
		p += "/namespaces/{namespace}"
	}
	return p + "/" + k.Plural + "/{name}"
}

var opParams = []string{"name", "namespace", "dryRun", "fieldManager", "fieldValidation", "force", "pretty"}

func gvkExtension(k registry.Kind) spec.Extensions {
	return spec.Extensions{"x-kubernetes-group-version-kind": map[string]any{"group": k.Group, "version": k.Version, "kind": k.Kind},
		"x-kubernetes-action": "patch"}
}

func (s *Server) openAPIV2() *spec.Swagger {
	kinds := s.reg.Kinds()
	// Kubernetes' own kinds keep their list merge keys; custom kinds are built after them, so a core type they
	// embed (Knative's PodSpec) is described as on a cluster, without merge keys.
	var builtin, custom []registry.Kind
	for _, k := range kinds {
		if strategicKind(k) {
			builtin = append(builtin, k)
		} else {
			custom = append(custom, k)
		}
	}
	bb := openapi.NewBuilder("#/definitions/")
	bb.BuiltinPatchTags = true
	addKinds(bb, builtin)
	b := openapi.NewBuilder("#/definitions/")
	addKinds(b, custom)
	for n, d := range bb.Defs {
		if _, ok := b.Defs[n]; !ok {
			b.Defs[n] = d
		}
	}
	sw := &spec.Swagger{SwaggerProps: spec.SwaggerProps{Swagger: "2.0",
		Info:        &spec.Info{InfoProps: spec.InfoProps{Title: "Kubernetes", Version: KubernetesVersion.GitVersion}},
		Paths:       &spec.Paths{Paths: map[string]spec.PathItem{}},
		Definitions: spec.Definitions{},
	}}
	for n, d := range b.Defs {
		sw.Definitions[n] = d
	}
	for _, k := range kinds {
		op := &spec.Operation{VendorExtensible: spec.VendorExtensible{Extensions: gvkExtension(k)},
			OperationProps: spec.OperationProps{ID: "patch" + k.Kind, Consumes: patchTypes(k),
				Produces: []string{"application/json"}, Responses: &spec.Responses{ResponsesProps: spec.ResponsesProps{
					StatusCodeResponses: map[int]spec.Response{200: {ResponseProps: spec.ResponseProps{Description: "OK"}}}}}}}
		for _, p := range opParams {
			in := "query"
			if p == "name" || p == "namespace" {
				in = "path"
			}
			op.Parameters = append(op.Parameters, spec.Parameter{ParamProps: spec.ParamProps{Name: p, In: in, Required: in == "path"},
				SimpleSchema: spec.SimpleSchema{Type: "string"}})
		}
		sw.Paths.Paths[itemPath(k)] = spec.PathItem{PathItemProps: spec.PathItemProps{Patch: op}}
	}
	return sw
}

func (s *Server) serveOpenAPIV2(w http.ResponseWriter, r *http.Request) {
	b, err := json.Marshal(s.openAPIV2())
	if err != nil {
		writeError(w, &apiError{code: http.StatusInternalServerError, reason: "InternalError", message: err.Error()})
		return
	}
	if strings.Contains(r.Header.Get("Accept"), "protobuf") {
		doc, err := openapiv2.ParseDocument(b)
		if err == nil {
			var pb []byte
			if pb, err = proto.Marshal(doc); err == nil {
				w.Header().Set("Content-Type", openAPIV2Protobuf)
				_, _ = w.Write(pb)
				return
			}
		}
		writeError(w, &apiError{code: http.StatusInternalServerError, reason: "InternalError", message: "openapi v2: " + err.Error()})
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(b)
}

// openAPIV3 builds the documents of every group-version: "apis/<group>/<version>" or "api/v1" -> document.
func (s *Server) openAPIV3() map[string]*spec3.OpenAPI {
	byGV := map[string][]registry.Kind{}
	for _, k := range s.reg.Kinds() {
		byGV[gvPath(k)] = append(byGV[gvPath(k)], k)
	}
	out := map[string]*spec3.OpenAPI{}
	for gv, kinds := range byGV {
		b := openapi.NewBuilder("#/components/schemas/")
		b.BuiltinPatchTags = len(kinds) > 0 && strategicKind(kinds[0]) // a group-version is all built-in or all custom
		addKinds(b, kinds)
		doc := &spec3.OpenAPI{Version: "3.0.0",
			Info:       &spec.Info{InfoProps: spec.InfoProps{Title: "Kubernetes", Version: KubernetesVersion.GitVersion}},
			Paths:      &spec3.Paths{Paths: map[string]*spec3.Path{}},
			Components: &spec3.Components{Schemas: map[string]*spec.Schema{}},
		}
		for n, d := range b.Defs {
			doc.Components.Schemas[n] = &d
		}
		doc.Components.Schemas[patchDef] = &spec.Schema{SchemaProps: spec.SchemaProps{Type: []string{"object"},
			Description: "Patch is provided to give a concrete name and type to the Kubernetes PATCH request body."}}
		for _, k := range kinds {
			op := &spec3.Operation{VendorExtensible: spec.VendorExtensible{Extensions: gvkExtension(k)},
				OperationProps: spec3.OperationProps{OperationId: "patch" + k.Kind, RequestBody: &spec3.RequestBody{
					RequestBodyProps: spec3.RequestBodyProps{Content: map[string]*spec3.MediaType{}}}}}
			for _, ct := range patchTypes(k) {
				op.RequestBody.Content[ct] = &spec3.MediaType{MediaTypeProps: spec3.MediaTypeProps{
					Schema: &spec.Schema{SchemaProps: spec.SchemaProps{Ref: spec.MustCreateRef("#/components/schemas/" + patchDef)}}}}
			}
			for _, p := range opParams {
				in := "query"
				if p == "name" || p == "namespace" {
					in = "path"
				}
				op.Parameters = append(op.Parameters, &spec3.Parameter{ParameterProps: spec3.ParameterProps{Name: p, In: in,
					Required: in == "path", Schema: &spec.Schema{SchemaProps: spec.SchemaProps{Type: []string{"string"}}}}})
			}
			doc.Paths.Paths[itemPath(k)] = &spec3.Path{PathProps: spec3.PathProps{Patch: op}}
		}
		out[gv] = doc
	}
	return out
}

func gvPath(k registry.Kind) string {
	if k.Group == "" {
		return "api/" + k.Version
	}
	return "apis/" + k.Group + "/" + k.Version
}

func (s *Server) serveOpenAPIV3Root(w http.ResponseWriter, _ *http.Request) {
	type entry struct {
		ServerRelativeURL string `json:"serverRelativeURL"`
	}
	root := struct {
		Paths map[string]entry `json:"paths"`
	}{Paths: map[string]entry{}}
	for gv, doc := range s.openAPIV3() {
		b, err := json.Marshal(doc)
		if err != nil {
			continue
		}
		sum := sha256.Sum256(b)
		root.Paths[gv] = entry{ServerRelativeURL: openAPIV3Prefix + gv + "?hash=" + strings.ToUpper(hex.EncodeToString(sum[:]))}
	}
	writeJSON(w, http.StatusOK, root)
}

func (s *Server) serveOpenAPIV3(w http.ResponseWriter, r *http.Request) {
	doc, ok := s.openAPIV3()[strings.TrimPrefix(r.URL.Path, openAPIV3Prefix)]
	if !ok {
		writeError(w, notFoundPath(r.URL.Path))
		return
	}
	if r.URL.Query().Get("hash") != "" {
		w.Header().Set("Cache-Control", "public, immutable")
	}
	writeJSON(w, http.StatusOK, doc)
}
