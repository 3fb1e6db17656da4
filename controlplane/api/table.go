package api

import (
	"bytes"
	"encoding/json"
	"mime"
	"net/http"
	"reflect"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/duration"
	"k8s.io/client-go/util/jsonpath"

	"github.com/tide-run/tide/controlplane/registry"
)

// Server-side printing: kubectl get asks for `application/json;as=Table;v=v1;g=meta.k8s.io` and prints the
// columns the server chose. tide fills them from the kind's registry.PrinterColumns (Knative's CRDs'
// additionalPrinterColumns), the way the API server does for a custom resource: NAME first, then each column's
// JSONPath on the object; a kind without columns gets NAME and AGE. Rows carry the object as
// PartialObjectMetadata (includeObject=Metadata, the default), whole (Object) or not at all (None).

// wantsTable reports whether the Accept header asks for a meta.k8s.io Table (v1 or v1beta1) before plain JSON.
func wantsTable(r *http.Request) (version string, ok bool) {
	for _, part := range strings.Split(r.Header.Get("Accept"), ",") {
		mt, params, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err != nil {
			continue
		}
		if params["as"] == "Table" && params["g"] == "meta.k8s.io" && (mt == "application/json" || mt == "*/*") &&
			(params["v"] == "v1" || params["v"] == "v1beta1") {
			return params["v"], true
		}
		if mt == "application/json" && params["as"] == "" {
			return "", false // plain JSON preferred
		}
	}
	return "", false
}

type tableColumn struct {
	def  metav1.TableColumnDefinition
	col  registry.PrinterColumn
	path *jsonpath.JSONPath
}

var ageColumn = registry.PrinterColumn{Name: "Age", Type: "date", JSONPath: ".metadata.creationTimestamp",
	Description: "CreationTimestamp is a timestamp representing the server time when this object was created."}

func tableColumns(k registry.Kind) []tableColumn {
	cols := k.PrinterColumns
	if len(cols) == 0 {
		cols = []registry.PrinterColumn{ageColumn}
	}
	out := []tableColumn{{def: metav1.TableColumnDefinition{Name: "Name", Type: "string", Format: "name",
		Description: "Name must be unique within a namespace."}}}
	for _, c := range cols {
		tc := tableColumn{col: c, def: metav1.TableColumnDefinition{Name: c.Name, Type: c.Type, Format: c.Format,
			Description: c.Description, Priority: c.Priority}}
		if c.JSONPath != "" {
			expr := c.JSONPath
			if !strings.HasPrefix(expr, "{") {
				expr = "{" + expr + "}"
			}
			jp := jsonpath.New(c.Name).AllowMissingKeys(true)
			if jp.Parse(expr) == nil {
				tc.path = jp
			}
		}
		out = append(out, tc)
	}
	return out
}

// cell is one column's value for obj, as the API server's custom-resource table converter makes it.
func (c tableColumn) cell(obj map[string]any, now time.Time) any {
	if len(c.col.CountKeysOf) > 0 {
		n := int64(0)
		for _, f := range c.col.CountKeysOf {
			m, _ := obj[f].(map[string]any)
			n += int64(len(m))
		}
		return n
	}
	if c.path == nil {
		return nil
	}
	if strings.HasPrefix(c.col.JSONPath, "{") { // a template: several expressions and text
		var buf bytes.Buffer
		if c.path.Execute(&buf, obj) != nil {
			return nil
		}
		return buf.String()
	}
	results, err := c.path.FindResults(obj)
	if err != nil || len(results) == 0 || len(results[0]) == 0 {
		return nil
	}
	v := results[0][0].Interface()
	switch c.col.Type {
	case "string":
		var buf bytes.Buffer
		if c.path.PrintResults(&buf, []reflect.Value{reflect.ValueOf(v)}) != nil {
			return nil
		}
		return buf.String()
	case "date":
		s, ok := v.(string)
		if !ok {
			return nil
		}
		t, err := time.Parse(time.RFC3339, s)
		if err != nil {
			return "<invalid>"
		}
		return duration.HumanDuration(now.Sub(t))
	case "integer":
		switch n := v.(type) {
		case float64:
			return int64(n)
		case int64:
			return n
		}
		return nil
	}
	return v
}

// tableOf builds the Table of objs (each as stored; shown is what the caller may see of it).
func (s *Server) tableOf(r *http.Request, k registry.Kind, version string, objs []map[string]any, rv string, withColumns bool) *metav1.Table {
	cols := tableColumns(k)
	t := &metav1.Table{TypeMeta: metav1.TypeMeta{Kind: "Table", APIVersion: "meta.k8s.io/" + version},
		ListMeta: metav1.ListMeta{ResourceVersion: rv}, Rows: []metav1.TableRow{}}
	if withColumns {
		for _, c := range cols {
			t.ColumnDefinitions = append(t.ColumnDefinitions, c.def)
		}
	}
	include := r.URL.Query().Get("includeObject")
	now := time.Now()
	for _, o := range objs {
		row := metav1.TableRow{}
		md, _ := o["metadata"].(map[string]any)
		name, _ := md["name"].(string)
		row.Cells = append(row.Cells, name)
		for _, c := range cols[1:] {
			row.Cells = append(row.Cells, c.cell(o, now))
		}
		shown := s.visible(r, k, o)
		switch include {
		case "None":
		case "Object":
			b, _ := json.Marshal(shown)
			row.Object = runtime.RawExtension{Raw: b}
		default:
			b, _ := json.Marshal(map[string]any{"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/" + version,
				"metadata": shown["metadata"]})
			row.Object = runtime.RawExtension{Raw: b}
		}
		t.Rows = append(t.Rows, row)
	}
	return t
}

// watchTableObject is a watch event's object as a one-row Table.
func (s *Server) watchTableObject(r *http.Request, k registry.Kind, version string, obj map[string]any, first bool) map[string]any {
	md, _ := obj["metadata"].(map[string]any)
	rv, _ := md["resourceVersion"].(string)
	t := s.tableOf(r, k, version, []map[string]any{obj}, rv, first)
	b, err := json.Marshal(t)
	if err != nil {
		return obj
	}
	var out map[string]any
	if json.Unmarshal(b, &out) != nil {
		return obj
	}
	return out
}

func writeTable(w http.ResponseWriter, t *metav1.Table) { writeJSON(w, http.StatusOK, t) }
