package process

import (
	"context"
	"errors"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"
)

// TestEnvReferenceOutcomes pins what a secretKeyRef, configMapKeyRef, secretRef or configMapRef yields for a
// present, missing or optional object or key, and the error each failure names.
func TestEnvReferenceOutcomes(t *testing.T) {
	ctx := context.Background()
	r := mapResolver{
		secrets:    map[string]map[string][]byte{"default/db": {"password": []byte("s3cret")}},
		configMaps: map[string]map[string]string{"default/cfg": {"mode": "fast"}},
	}
	key := func(r Resolver, secret bool, name, k string, optional *bool) (string, bool, error) {
		if secret {
			return refKey(r, "secret", name, k, optional, secretData(ctx, "default", name))
		}
		return refKey(r, "configmap", name, k, optional, configMapData(ctx, "default", name))
	}
	for _, c := range []struct {
		name     string
		r        Resolver
		secret   bool
		obj, key string
		optional *bool
		want     string
		wantOK   bool
		wantErr  string
	}{
		{"secret key", r, true, "db", "password", nil, "s3cret", true, ""},
		{"configmap key", r, false, "cfg", "mode", nil, "fast", true, ""},
		{"optional missing secret", r, true, "absent", "k", ptr.To(true), "", false, ""},
		{"optional missing key", r, false, "cfg", "nope", ptr.To(true), "", false, ""},
		{"missing secret", r, true, "absent", "k", ptr.To(false), "", false, `secret "absent": secret default/absent: not found`},
		{"missing key", r, false, "cfg", "nope", nil, "", false, `configmap "cfg" has no key "nope": not found`},
		{"no resolver", nil, true, "db", "password", nil, "", false, `secret "db": no resolver configured`},
	} {
		v, ok, err := key(c.r, c.secret, c.obj, c.key, c.optional)
		if v != c.want || ok != c.wantOK || (err == nil) != (c.wantErr == "") || (err != nil && err.Error() != c.wantErr) {
			t.Errorf("%s: got %q, %v, %v; want %q, %v, %q", c.name, v, ok, err, c.want, c.wantOK, c.wantErr)
		}
	}

	d, err := envFromData(ctx, r, "default", corev1.EnvFromSource{SecretRef: &corev1.SecretEnvSource{
		LocalObjectReference: corev1.LocalObjectReference{Name: "db"}}})
	if err != nil || d["password"] != "s3cret" {
		t.Errorf("secretRef: %v, %v", d, err)
	}
	d, err = envFromData(ctx, r, "default", corev1.EnvFromSource{ConfigMapRef: &corev1.ConfigMapEnvSource{
		LocalObjectReference: corev1.LocalObjectReference{Name: "absent"}, Optional: ptr.To(true)}})
	if err != nil || d != nil {
		t.Errorf("optional missing configMapRef: %v, %v", d, err)
	}
	_, err = envFromData(ctx, r, "default", corev1.EnvFromSource{ConfigMapRef: &corev1.ConfigMapEnvSource{
		LocalObjectReference: corev1.LocalObjectReference{Name: "absent"}}})
	if !errors.Is(err, ErrNotFound) || err.Error() != `configMapRef "absent": configmap default/absent: not found` {
		t.Errorf("missing configMapRef: %v", err)
	}
	if _, err := envFromData(ctx, nil, "default", corev1.EnvFromSource{SecretRef: &corev1.SecretEnvSource{
		LocalObjectReference: corev1.LocalObjectReference{Name: "db"}}}); err == nil || err.Error() != `secretRef "db": no resolver configured` {
		t.Errorf("secretRef without a resolver: %v", err)
	}
}
