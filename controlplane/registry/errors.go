package registry

import (
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"
)

// Cause is one problem in a document: the field path (dotted, Knative style, e.g.
// "spec.template.spec.containerConcurrency") and what was wrong.
type Cause struct {
	Field   string `json:"field,omitempty"`
	Message string `json:"message"`
}

// InvalidError is a document that failed decoding or validation. It wraps ErrInvalid.
type InvalidError struct {
	Kind    string
	Name    string
	Message string // set when the problem is not tied to a field
	Causes  []Cause
}

func (e *InvalidError) Error() string {
	var b strings.Builder
	switch {
	case e.Kind != "" && e.Name != "":
		fmt.Fprintf(&b, "%s %q is invalid", e.Kind, e.Name)
	case e.Kind != "":
		fmt.Fprintf(&b, "%s is invalid", e.Kind)
	default:
		b.WriteString("invalid document")
	}
	var parts []string
	if e.Message != "" {
		parts = append(parts, e.Message)
	}
	for _, c := range e.Causes {
		if c.Field != "" {
			parts = append(parts, c.Field+": "+c.Message)
		} else {
			parts = append(parts, c.Message)
		}
	}
	// Every problem is reported, as Kubernetes aggregates a field.ErrorList: one bare, several in brackets.
	switch len(parts) {
	case 0:
	case 1:
		b.WriteString(": " + parts[0])
	default:
		b.WriteString(": [" + strings.Join(parts, ", ") + "]")
	}
	return b.String()
}

func (e *InvalidError) Unwrap() error { return ErrInvalid }

// checkName applies Kubernetes' object-name rule (a DNS-1123 subdomain) to every kind, including generic ones.
func checkName(k Kind, name string) error {
	if name == "" {
		return &InvalidError{Kind: k.Kind, Causes: []Cause{{Field: "metadata.name", Message: "Required value: name is required"}}}
	}
	errs := validation.IsDNS1123Subdomain(name)
	if k.Group == "" && k.Kind == "Namespace" {
		errs = validation.IsDNS1123Label(name) // a Namespace's name is what other objects' namespace must be
	}
	if len(errs) > 0 {
		return &InvalidError{Kind: k.Kind, Name: name, Causes: []Cause{{Field: "metadata.name", Message: "Invalid value: " + strings.Join(errs, ", ")}}}
	}
	return nil
}

// checkNamespace applies Kubernetes' namespace rule (a DNS-1123 label) to a namespaced object's namespace, with
// the API server's message, so no namespace that a cluster would refuse becomes a store key or a path.
func checkNamespace(k Kind, name, ns string) error {
	if !k.Namespaced {
		return nil
	}
	if errs := validation.IsDNS1123Label(ns); len(errs) > 0 {
		return &InvalidError{Kind: k.Kind, Name: name, Causes: []Cause{{Field: "metadata.namespace",
			Message: fmt.Sprintf("Invalid value: %q: %s", ns, strings.Join(errs, ", "))}}}
	}
	return nil
}
