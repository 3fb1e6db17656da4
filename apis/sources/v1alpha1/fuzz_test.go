package v1alpha1

import (
	"context"
	"encoding/json"
	"os"
	"reflect"
	"testing"
)

// FuzzDecode: manifests arrive over the API; decoding, defaulting and validating arbitrary bytes must not panic,
// and whatever validates must survive a deep copy unchanged.
func FuzzDecode(f *testing.F) {
	for _, name := range []string{"testdata/full.yaml", "testdata/legacy-2020.yaml"} {
		if b, err := os.ReadFile(name); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte("apiVersion: sources.knative.dev/v1alpha1\nkind: RocketMQSource\nmetadata: {name: a}\nspec: {topic: t, sink: {uri: 'http://x'}}"))
	f.Add([]byte(`{"apiVersion":"sources.eventing.knative.dev/v1alpha1","kind":"RocketMQSource","spec":{"namesrvAddr":";;"}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := Decode(data)
		if err != nil {
			return
		}
		ctx := WithDefaultNameServers(context.Background(), []string{"127.0.0.1:9876"})
		s.SetDefaults(ctx)
		if s.Validate(ctx) == nil {
			// Unchanged: the copy equals the original in every field (nil stays nil, empty stays empty).
			c := s.DeepCopy()
			if !reflect.DeepEqual(c, s) {
				t.Fatalf("deep copy differs:\n%+v\n%+v", c, s)
			}
			// And deep: overwriting everything reachable from the copy leaves the original as it was.
			before, err := json.Marshal(s)
			if err != nil {
				t.Fatal(err)
			}
			scribble(reflect.ValueOf(c).Elem())
			after, err := json.Marshal(s)
			if err != nil {
				t.Fatal(err)
			}
			if string(before) != string(after) {
				t.Fatalf("changing the deep copy changed the original:\n%s\n%s", before, after)
			}
		}
	})
}

// scribble overwrites every settable value reachable from v (exported fields, slice and array elements, map
// entries, through pointers), so any memory a deep copy shares with its original shows up as a change there.
func scribble(v reflect.Value) {
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if !v.IsNil() {
			scribble(v.Elem())
		}
	case reflect.Struct:
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				scribble(v.Field(i))
			}
		}
	case reflect.Slice, reflect.Array:
		for i := range v.Len() {
			scribble(v.Index(i))
		}
	case reflect.Map:
		for _, k := range v.MapKeys() {
			e := reflect.New(v.Type().Elem()).Elem()
			e.Set(v.MapIndex(k))
			scribble(e)
			v.SetMapIndex(k, e)
		}
		if !v.IsNil() && v.Type().Key().Kind() == reflect.String {
			v.SetMapIndex(reflect.ValueOf("scribbled").Convert(v.Type().Key()), reflect.Zero(v.Type().Elem()))
		}
	case reflect.String:
		if v.CanSet() {
			v.SetString(v.String() + "~")
		}
	case reflect.Bool:
		if v.CanSet() {
			v.SetBool(!v.Bool())
		}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		if v.CanSet() {
			v.SetInt(v.Int() + 1)
		}
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		if v.CanSet() {
			v.SetUint(v.Uint() + 1)
		}
	case reflect.Float32, reflect.Float64:
		if v.CanSet() {
			v.SetFloat(v.Float() + 1)
		}
	}
}
