package runtime

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"knative.dev/pkg/apis"
	servingv1 "knative.dev/serving/pkg/apis/serving/v1"

	"github.com/tide-run/tide/controlplane/registry"
	"github.com/tide-run/tide/serving/process"
)

// RegisterKinds adds serving's apply-time check to the Knative Serving kinds of reg (Service, Configuration,
// Revision): after Knative's own validation, the revision template must be something tide can run as processes
// (process.CheckRunnable). Without it a Service naming a registry image is stored, and only its Revision's status
// says, later, that it cannot run; with it `tide apply` refuses it at once with the field and the fix.
func RegisterKinds(reg *registry.Registry) error {
	for _, name := range []string{"Service", "Configuration", "Revision"} {
		k, err := reg.ForAPIVersionKind(registry.GroupServing+"/v1", name)
		if err != nil {
			return fmt.Errorf("serving kinds: %w", err)
		}
		upstream := k.Validate
		k.Validate = func(ctx context.Context, obj any) *apis.FieldError {
			var fe *apis.FieldError
			if upstream != nil {
				fe = upstream(ctx, obj)
			} else if v, ok := obj.(apis.Validatable); ok {
				fe = v.Validate(ctx)
			}
			return fe.Also(runnable(obj))
		}
		if err := reg.Register(k); err != nil {
			return fmt.Errorf("serving kinds: %w", err)
		}
	}
	return nil
}

// runnable is process.CheckRunnable for the revision template of obj, as a field error at the template's path.
func runnable(obj any) *apis.FieldError {
	var rs *servingv1.RevisionSpec
	prefix := "spec.template.spec"
	switch v := obj.(type) {
	case *servingv1.Service:
		rs = &v.Spec.Template.Spec
	case *servingv1.Configuration:
		rs = &v.Spec.Template.Spec
	case *servingv1.Revision:
		rs, prefix = &v.Spec, "spec"
	default:
		return nil
	}
	err := process.CheckRunnable(*rs)
	if err == nil {
		return nil
	}
	// "invalid revision spec: spec.containers[0].image: message" -> path and message.
	msg := strings.TrimPrefix(err.Error(), process.ErrInvalidSpec.Error()+": ")
	path, detail, ok := strings.Cut(msg, ": ")
	if !ok || !strings.HasPrefix(path, "spec.") || !errors.Is(err, process.ErrInvalidSpec) {
		return &apis.FieldError{Message: msg, Paths: []string{prefix}}
	}
	return &apis.FieldError{Message: detail, Paths: []string{prefix + strings.TrimPrefix(path, "spec")}}
}
