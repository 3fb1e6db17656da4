package process

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	servingv1 "knative.dev/serving/pkg/apis/serving/v1"
)

// Sentinel errors.
var (
	// ErrNotFound is what a Resolver wraps when a Secret or ConfigMap does not exist.
	ErrNotFound = errors.New("not found")
	// ErrInvalidSpec is wrapped by every error about a Spec tide cannot run; the message names the field path.
	ErrInvalidSpec = errors.New("invalid revision spec")
	// ErrConfig is wrapped when the container's configuration cannot be assembled at start (a missing secret key,
	// a command that is not on PATH); Kubernetes reports these as CreateContainerConfigError.
	ErrConfig = errors.New("container configuration")
	// ErrClosed is returned by a Pool after Close.
	ErrClosed = errors.New("pool closed")
)

// Resolver looks up the Secrets and ConfigMaps that env entries refer to. The control plane backs it with the
// store. A missing object is an error wrapping ErrNotFound.
type Resolver interface {
	SecretData(ctx context.Context, namespace, name string) (map[string][]byte, error)
	ConfigMapData(ctx context.Context, namespace, name string) (map[string]string, error)
}

// Spec is what a Pool runs: one Knative Revision.
type Spec struct {
	Namespace     string
	Service       string // K_SERVICE; may be empty for a Configuration without a Service
	Configuration string // K_CONFIGURATION
	Revision      string // K_REVISION and the Pool's name
	// Dir is where ko:// import paths are resolved and the default working directory: the directory `tide apply`
	// ran in.
	Dir string
	// RevisionSpec is the revision's spec as Knative defines it (after SetDefaults).
	RevisionSpec servingv1.RevisionSpec
	// UID, Labels and Annotations are the revision's, what the downward API (env valueFrom.fieldRef) gives an
	// instance as its pod's metadata.uid, metadata.labels and metadata.annotations.
	UID         string
	Labels      map[string]string
	Annotations map[string]string
}

// Defaults Knative applies when the spec leaves them unset.
const (
	DefaultTimeout = 300 * time.Second
)

// container returns the container that serves traffic and validates what tide can run.
func (s *Spec) container() (*corev1.Container, error) {
	cs := s.RevisionSpec.Containers
	if len(cs) == 0 {
		return nil, fmt.Errorf("%w: spec.containers: at least one container is required", ErrInvalidSpec)
	}
	if len(cs) > 1 {
		return nil, fmt.Errorf("%w: spec.containers: tide runs one container per revision, got %d", ErrInvalidSpec, len(cs))
	}
	c := &cs[0]
	if len(c.Command) == 0 && !strings.HasPrefix(c.Image, KoPrefix) {
		return nil, fmt.Errorf("%w: spec.containers[0].image: %q is a container image, which tide cannot pull or run "+
			"(it runs each instance as a process on this machine): use image: ko://<go import path> (tide builds the "+
			"Go program in the source directory, as ko does) or set command: [program, ...] to a program on this machine",
			ErrInvalidSpec, c.Image)
	}
	for i, e := range c.Env {
		vf := e.ValueFrom
		switch {
		case vf == nil || vf.SecretKeyRef != nil || vf.ConfigMapKeyRef != nil:
		case vf.FieldRef != nil:
			if _, err := s.fieldRefValue(vf.FieldRef, podFields{}); err != nil {
				return nil, fmt.Errorf("%w: spec.containers[0].env[%d].valueFrom.fieldRef: %w", ErrInvalidSpec, i, err)
			}
		case vf.ResourceFieldRef != nil:
			if _, err := resourceFieldRefValue(c, vf.ResourceFieldRef); err != nil {
				return nil, fmt.Errorf("%w: spec.containers[0].env[%d].valueFrom.resourceFieldRef: %w", ErrInvalidSpec, i, err)
			}
		default:
			return nil, fmt.Errorf("%w: spec.containers[0].env[%d].valueFrom: one of secretKeyRef, configMapKeyRef, fieldRef or resourceFieldRef is required", ErrInvalidSpec, i)
		}
	}
	for _, p := range []struct {
		path string
		p    *corev1.Probe
	}{{"readinessProbe", c.ReadinessProbe}, {"livenessProbe", c.LivenessProbe}} {
		if p.p != nil && p.p.Exec != nil {
			return nil, fmt.Errorf("%w: spec.containers[0].%s.exec: only httpGet and tcpSocket probes are supported", ErrInvalidSpec, p.path)
		}
		if p.p != nil && p.p.GRPC != nil {
			return nil, fmt.Errorf("%w: spec.containers[0].%s.grpc: only httpGet and tcpSocket probes are supported", ErrInvalidSpec, p.path)
		}
	}
	return c, nil
}

// CheckRunnable reports whether tide can run a revision with this spec as processes: the checks a Pool makes before
// it starts anything (one container; a ko:// image or a command; env sources and probes tide supports). The error
// wraps ErrInvalidSpec and names the field below the revision spec (spec.containers[0]...). The control plane calls
// it when a Service, Configuration or Revision is applied, so a spec tide cannot run is refused then.
func CheckRunnable(rs servingv1.RevisionSpec) error {
	_, err := (&Spec{RevisionSpec: rs}).container()
	return err
}

// Timeout is the revision's request timeout (timeoutSeconds, default 300 s).
func (s *Spec) Timeout() time.Duration {
	if t := s.RevisionSpec.TimeoutSeconds; t != nil && *t > 0 {
		return time.Duration(*t) * time.Second
	}
	return DefaultTimeout
}

// gracePeriod is how long SIGTERM gets before SIGKILL: terminationGracePeriodSeconds when set, else the request
// timeout, which is what Knative sets on the pod.
func (s *Spec) gracePeriod() time.Duration {
	if g := s.RevisionSpec.TerminationGracePeriodSeconds; g != nil {
		return time.Duration(*g) * time.Second
	}
	return s.Timeout()
}

// baseEnv is the part of an instance's environment that does not come from its spec: PATH, LANG and TZ from
// tide's environment (PATH defaulted), HOME and TMPDIR set to the instance's private directory when it has one
// (else tide's), and USER naming the instance user. Nothing else of tide's environment reaches the program (no
// TIDE_TOKEN, no credentials, no proxy settings), as a container inherits nothing from the kubelet's.
func (p *Pool) baseEnv(home string) [][2]string {
	var env [][2]string
	add := func(k, v string) { env = append(env, [2]string{k, v}) }
	if v, ok := os.LookupEnv("PATH"); ok && v != "" {
		add("PATH", v)
	} else {
		add("PATH", "/usr/local/bin:/usr/bin:/bin")
	}
	switch {
	case home != "":
		add("HOME", home)
		add("TMPDIR", home)
	case p.opts.RunAs == nil:
		for _, k := range []string{"HOME", "TMPDIR"} {
			if v, ok := os.LookupEnv(k); ok {
				add(k, v)
			}
		}
	}
	switch {
	case p.opts.RunAs != nil && p.opts.RunAs.Name != "":
		add("USER", p.opts.RunAs.Name)
	case p.opts.RunAs == nil:
		if v, ok := os.LookupEnv("USER"); ok {
			add("USER", v)
		}
	}
	for _, k := range []string{"LANG", "TZ"} {
		if v, ok := os.LookupEnv(k); ok {
			add(k, v)
		}
	}
	return env
}

// buildEnv assembles the environment: base (see Pool.baseEnv; the process does not inherit tide's environment, as
// a container would not), the container's envFrom and env in order with $(VAR) expansion, then the runtime
// contract's variables.
func (s *Spec) buildEnv(ctx context.Context, c *corev1.Container, r Resolver, port int, base [][2]string, pod podFields) ([]string, map[string]string, error) {
	vals := map[string]string{}
	var order []string
	set := func(k, v string) {
		if _, ok := vals[k]; !ok {
			order = append(order, k)
		}
		vals[k] = v
	}
	for _, kv := range base {
		set(kv[0], kv[1])
	}
	// envFrom first; env entries override it, as in Kubernetes.
	for i, ef := range c.EnvFrom {
		path := fmt.Sprintf("spec.containers[0].envFrom[%d]", i)
		data, err := envFromData(ctx, r, s.Namespace, ef)
		if err != nil {
			return nil, nil, fmt.Errorf("%w: %s: %w", ErrConfig, path, err)
		}
		keys := make([]string, 0, len(data))
		for k := range data {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if validEnvName(ef.Prefix + k) { // Kubernetes skips keys that are not valid names
				set(ef.Prefix+k, data[k])
			}
		}
	}
	for i, e := range c.Env {
		path := fmt.Sprintf("spec.containers[0].env[%d]", i)
		switch {
		case e.ValueFrom == nil:
			set(e.Name, expand(e.Value, vals))
		case e.ValueFrom.SecretKeyRef != nil:
			ref := e.ValueFrom.SecretKeyRef
			v, ok, err := refKey(r, "secret", ref.Name, ref.Key, ref.Optional, secretData(ctx, s.Namespace, ref.Name))
			if err != nil {
				return nil, nil, fmt.Errorf("%w: %s.valueFrom.secretKeyRef: %w", ErrConfig, path, err)
			}
			if ok {
				set(e.Name, v)
			}
		case e.ValueFrom.ConfigMapKeyRef != nil:
			ref := e.ValueFrom.ConfigMapKeyRef
			v, ok, err := refKey(r, "configmap", ref.Name, ref.Key, ref.Optional, configMapData(ctx, s.Namespace, ref.Name))
			if err != nil {
				return nil, nil, fmt.Errorf("%w: %s.valueFrom.configMapKeyRef: %w", ErrConfig, path, err)
			}
			if ok {
				set(e.Name, v)
			}
		case e.ValueFrom.FieldRef != nil:
			v, err := s.fieldRefValue(e.ValueFrom.FieldRef, pod)
			if err != nil {
				return nil, nil, fmt.Errorf("%w: %s.valueFrom.fieldRef: %w", ErrConfig, path, err)
			}
			set(e.Name, v)
		case e.ValueFrom.ResourceFieldRef != nil:
			v, err := resourceFieldRefValue(c, e.ValueFrom.ResourceFieldRef)
			if err != nil {
				return nil, nil, fmt.Errorf("%w: %s.valueFrom.resourceFieldRef: %w", ErrConfig, path, err)
			}
			set(e.Name, v)
		}
	}
	// The runtime contract wins over user values: these names are reserved in Knative.
	set("PORT", fmt.Sprint(port))
	set("K_SERVICE", s.Service)
	set("K_CONFIGURATION", s.Configuration)
	set("K_REVISION", s.Revision)
	env := make([]string, 0, len(order))
	for _, k := range order {
		env = append(env, k+"="+vals[k])
	}
	return env, vals, nil
}

func envFromData(ctx context.Context, r Resolver, ns string, ef corev1.EnvFromSource) (map[string]string, error) {
	switch {
	case ef.SecretRef != nil:
		d, _, err := refData(r, "secretRef", ef.SecretRef.Name, ef.SecretRef.Optional, secretData(ctx, ns, ef.SecretRef.Name))
		return d, err
	case ef.ConfigMapRef != nil:
		d, _, err := refData(r, "configMapRef", ef.ConfigMapRef.Name, ef.ConfigMapRef.Optional, configMapData(ctx, ns, ef.ConfigMapRef.Name))
		return d, err
	}
	return nil, errors.New("one of secretRef or configMapRef is required")
}

// secretData and configMapData read a Secret's or ConfigMap's data, as strings, for refData.
func secretData(ctx context.Context, ns, name string) func(Resolver) (map[string]string, error) {
	return func(r Resolver) (map[string]string, error) {
		d, err := r.SecretData(ctx, ns, name)
		if err != nil {
			return nil, err
		}
		out := make(map[string]string, len(d))
		for k, v := range d {
			out[k] = string(v)
		}
		return out, nil
	}
}

func configMapData(ctx context.Context, ns, name string) func(Resolver) (map[string]string, error) {
	return func(r Resolver) (map[string]string, error) { return r.ConfigMapData(ctx, ns, name) }
}

// refData reads, with fetch, the data of the Secret or ConfigMap named name; label names the reference in errors.
// found is false, with no error, when an optional reference names a missing object.
func refData(r Resolver, label, name string, optional *bool, fetch func(Resolver) (map[string]string, error)) (data map[string]string, found bool, err error) {
	if r == nil {
		return nil, false, fmt.Errorf("%s %q: no resolver configured", label, name)
	}
	data, err = fetch(r)
	if err != nil {
		if optional != nil && *optional && errors.Is(err, ErrNotFound) {
			return nil, false, nil
		}
		return nil, false, fmt.Errorf("%s %q: %w", label, name, err)
	}
	return data, true, nil
}

// refKey is the value of key in the Secret or ConfigMap named name (see refData). ok is false, with no error, when
// an optional reference names a missing object or key.
func refKey(r Resolver, label, name, key string, optional *bool, fetch func(Resolver) (map[string]string, error)) (v string, ok bool, err error) {
	data, found, err := refData(r, label, name, optional, fetch)
	if err != nil || !found {
		return "", false, err
	}
	v, ok = data[key]
	if !ok {
		if optional != nil && *optional {
			return "", false, nil
		}
		return "", false, fmt.Errorf("%s %q has no key %q: %w", label, name, key, ErrNotFound)
	}
	return v, true, nil
}

// validEnvName accepts C identifiers plus '.' and '-', what Kubernetes allows for environment variable names.
func validEnvName(n string) bool {
	if n == "" || (n[0] >= '0' && n[0] <= '9') {
		return false
	}
	for i := 0; i < len(n); i++ {
		c := n[i]
		if !(c == '_' || c == '.' || c == '-' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

// expand replaces $(VAR) with defined variables, leaves undefined references as written and turns $$ into $, as
// Kubernetes does for env values, command and args.
func expand(s string, vals map[string]string) string {
	if !strings.Contains(s, "$") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '$' || i+1 == len(s) {
			b.WriteByte(s[i])
			continue
		}
		switch s[i+1] {
		case '$':
			b.WriteByte('$')
			i++
		case '(':
			end := strings.IndexByte(s[i+2:], ')')
			if end < 0 {
				b.WriteString(s[i:])
				return b.String()
			}
			name := s[i+2 : i+2+end]
			if v, ok := vals[name]; ok {
				b.WriteString(v)
			} else {
				b.WriteString(s[i : i+3+end])
			}
			i += 2 + end
		default:
			b.WriteByte('$')
		}
	}
	return b.String()
}

// workDir is the container's workingDir, relative ones resolved against Spec.Dir. Without one: the instance's
// private directory home for a ko:// image (a built binary needs nothing from the source tree, as an image's
// WORKDIR is not the developer's checkout), Spec.Dir for a command (it names files there); Spec.Dir when there
// is no private directory.
func (s *Spec) workDir(c *corev1.Container, home string) string {
	switch {
	case c.WorkingDir == "" && len(c.Command) == 0 && home != "":
		return home
	case c.WorkingDir == "":
		return s.Dir
	case filepath.IsAbs(c.WorkingDir):
		return c.WorkingDir
	default:
		return filepath.Join(s.Dir, c.WorkingDir)
	}
}

// argv resolves what to execute. bin is the built ko:// binary (empty when the container has a command).
// Kubernetes semantics: command replaces the image's entrypoint, args replace its arguments.
func (s *Spec) argv(c *corev1.Container, bin string, vals map[string]string, home string) ([]string, error) {
	var argv []string
	if len(c.Command) > 0 {
		for _, a := range c.Command {
			argv = append(argv, expand(a, vals))
		}
	} else {
		argv = []string{bin}
	}
	for _, a := range c.Args {
		argv = append(argv, expand(a, vals))
	}
	prog := argv[0]
	switch {
	case filepath.IsAbs(prog):
	case strings.Contains(prog, "/"):
		argv[0] = filepath.Join(s.workDir(c, home), prog)
	default:
		p, err := lookPath(prog, vals["PATH"])
		if err != nil {
			return nil, fmt.Errorf("%w: spec.containers[0].command[0]: %q: %w", ErrConfig, prog, err)
		}
		argv[0] = p
	}
	return argv, nil
}

// lookPath searches the instance's PATH, not tide's.
func lookPath(prog, pathList string) (string, error) {
	for _, dir := range filepath.SplitList(pathList) {
		if dir == "" {
			continue
		}
		p := filepath.Join(dir, prog)
		if st, err := os.Stat(p); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", exec.ErrNotFound
}
