package config

import (
	"errors"
	"fmt"
	"strings"
)

// ErrInvalid is wrapped by every validation error of this package; test with errors.Is.
var ErrInvalid = errors.New("invalid autoscaling configuration")

// FieldError is one rejected value. Path names where it came from: a config-autoscaler key such as
// "stable-window", or an annotation field path such as
// "metadata.annotations.autoscaling.knative.dev/min-scale". Some errors concern two fields (max-scale below
// min-scale); Paths then holds both.
type FieldError struct {
	Paths   []string
	Value   string
	Message string
}

func (e *FieldError) Error() string {
	p := strings.Join(e.Paths, ", ")
	if e.Value != "" {
		return fmt.Sprintf("%s: %q: %s", p, e.Value, e.Message)
	}
	return fmt.Sprintf("%s: %s", p, e.Message)
}

// Is makes every FieldError match ErrInvalid.
func (e *FieldError) Is(target error) bool { return target == ErrInvalid }

// Errors is a non-empty list of FieldErrors, reported together so a user fixes every field in one go.
type Errors []*FieldError

func (es Errors) Error() string {
	parts := make([]string, len(es))
	for i, e := range es {
		parts[i] = e.Error()
	}
	return strings.Join(parts, "; ")
}

// Is makes Errors match ErrInvalid.
func (es Errors) Is(target error) bool { return target == ErrInvalid }

// Unwrap exposes the individual FieldErrors to errors.As.
func (es Errors) Unwrap() []error {
	out := make([]error, len(es))
	for i, e := range es {
		out[i] = e
	}
	return out
}

// Paths lists every field path named by the errors, in order.
func (es Errors) Paths() []string {
	var out []string
	for _, e := range es {
		out = append(out, e.Paths...)
	}
	return out
}

// errs accumulates FieldErrors; asError returns nil when there are none so callers can `return c.asError()`.
type errs struct{ list Errors }

func (c *errs) add(path, value, format string, args ...any) {
	c.list = append(c.list, &FieldError{Paths: []string{path}, Value: value, Message: fmt.Sprintf(format, args...)})
}

func (c *errs) addMulti(paths []string, format string, args ...any) {
	c.list = append(c.list, &FieldError{Paths: paths, Message: fmt.Sprintf(format, args...)})
}

func (c *errs) asError() error {
	if len(c.list) == 0 {
		return nil
	}
	return c.list
}
