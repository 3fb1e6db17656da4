package process

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
)

// ErrBadName is wrapped when a name (namespace, revision, instance, binary) cannot be used as one path element.
var ErrBadName = errors.New("name cannot be a path element")

// maxNameBytes is the longest file name the common file systems accept (NAME_MAX).
const maxNameBytes = 255

// checkName accepts a name only if it is exactly one path element that stays where it is joined: not empty, not
// "." or "..", no separator ('/' or '\\'), no NUL, at most 255 bytes. Names come from the API, which validates
// them as Kubernetes does; this check makes the file layout safe on its own (defence in depth), whatever a caller
// passes. Percent signs are ordinary characters here ("%2F" is a file name, not a slash).
func checkName(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("%w: empty", ErrBadName)
	case name == "." || name == "..":
		return fmt.Errorf("%w: %q", ErrBadName, name)
	case len(name) > maxNameBytes:
		return fmt.Errorf("%w: %d bytes, longer than %d", ErrBadName, len(name), maxNameBytes)
	case strings.ContainsAny(name, "/\\\x00"):
		return fmt.Errorf("%w: %q contains a path separator or NUL", ErrBadName, name)
	}
	return nil
}

// joinName joins names under dir, each one checked by checkName, and verifies the result is still below dir.
func joinName(dir string, names ...string) (string, error) {
	p := dir
	for _, n := range names {
		if err := checkName(n); err != nil {
			return "", err
		}
		p = filepath.Join(p, n)
	}
	rel, err := filepath.Rel(dir, p)
	if err != nil || !filepath.IsLocal(rel) {
		return "", fmt.Errorf("%w: %q leaves %s", ErrBadName, strings.Join(names, "/"), dir)
	}
	return p, nil
}
