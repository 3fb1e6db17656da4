package api

import (
	"bufio"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tide-run/tide/controlplane/registry"
	"github.com/tide-run/tide/controlplane/store"
)

const testToken = "s3cret-token-for-tests"

// newGuardedServer is an API with Access (the token set), on a real listener.
func newGuardedServer(t *testing.T, a Access) *httptest.Server {
	t.Helper()
	return newGuardedServerTLS(t, a, false)
}

// newGuardedServerTLS is newGuardedServer, served over TLS (httptest's certificate) when tls is set.
func newGuardedServerTLS(t *testing.T, a Access, tls bool) *httptest.Server {
	t.Helper()
	reg := registry.NewDefault()
	st, err := store.Open(store.Options{Path: filepath.Join(t.TempDir(), "db"), ClusterScoped: func(gk string) bool {
		k, err := reg.ForGroupKind(gk)
		return err == nil && !k.Namespaced
	}})
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(Options{Registry: reg, Store: st, Access: a})
	if err != nil {
		t.Fatal(err)
	}
	s.Handle("/", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "dashboard") }))
	hs := httptest.NewUnstartedServer(s)
	if tls {
		hs.StartTLS()
	} else {
		hs.Start()
	}
	t.Cleanup(func() { hs.Close(); _ = st.Close() })
	return hs
}

// shellService is finding 1's payload: a Knative Service whose container runs a shell command.
const shellService = `{"apiVersion":"serving.knative.dev/v1","kind":"Service","metadata":{"name":"pwned"},
"spec":{"template":{"spec":{"containers":[{"image":"busybox","command":["/bin/sh","-c","touch /tmp/pwned"]}]}}}}`

type req struct {
	method, path, body string
	header             map[string]string
	host               string
}

func send(t *testing.T, base string, r req) (*http.Response, []byte) {
	t.Helper()
	var body io.Reader
	if r.body != "" {
		body = strings.NewReader(r.body)
	}
	hr, err := http.NewRequest(r.method, base+r.path, body)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range r.header {
		hr.Header.Set(k, v)
	}
	if r.host != "" {
		hr.Host = r.host
	}
	resp, err := http.DefaultClient.Do(hr)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

// exists reports whether the named Service is stored, asking the API with the token.
func exists(t *testing.T, base, ns, name string) bool {
	t.Helper()
	resp, b := send(t, base, req{method: "GET", path: "/apis/serving.knative.dev/v1/namespaces/" + ns + "/services/" + name,
		header: map[string]string{"Authorization": "Bearer " + testToken}})
	switch resp.StatusCode {
	case 200:
		return true
	case 404:
		return false
	}
	t.Fatalf("GET %s/%s: %d %s", ns, name, resp.StatusCode, b)
	return false
}

// TestCrossSiteWritesRefused reproduces finding 1 (a web page POSTs a Service that runs /bin/sh -c ... and got
// 201) in every shape a browser can send it, and checks the rule that refuses each, with nothing created.
func TestCrossSiteWritesRefused(t *testing.T) {
	hs := newGuardedServer(t, Access{Host: "127.0.0.1", Token: testToken})
	const svcs = "/apis/serving.knative.dev/v1/namespaces/default/services"
	for _, tc := range []struct {
		name   string
		r      req
		code   int
		reason metav1.StatusReason
		msg    string
	}{
		{"text/plain fetch (no preflight)", req{method: "POST", path: svcs, body: shellService,
			header: map[string]string{"Content-Type": "text/plain;charset=UTF-8", "Origin": "http://evil.example"}},
			403, metav1.StatusReasonForbidden, "cross-origin write"},
		{"text/plain without Origin", req{method: "POST", path: svcs, body: shellService,
			header: map[string]string{"Content-Type": "text/plain"}}, 415, metav1.StatusReasonUnsupportedMediaType, "must be application/json"},
		{"form post", req{method: "POST", path: svcs, body: "x=" + shellService,
			header: map[string]string{"Content-Type": "application/x-www-form-urlencoded"}}, 415, metav1.StatusReasonUnsupportedMediaType, "x-www-form-urlencoded"},
		{"multipart form", req{method: "POST", path: svcs, body: "--b\r\n\r\n" + shellService + "\r\n--b--",
			header: map[string]string{"Content-Type": "multipart/form-data; boundary=b"}}, 415, metav1.StatusReasonUnsupportedMediaType, "multipart"},
		{"no Content-Type", req{method: "POST", path: svcs, body: shellService}, 415, metav1.StatusReasonUnsupportedMediaType, "no Content-Type"},
		{"JSON from another origin", req{method: "POST", path: svcs, body: shellService,
			header: map[string]string{"Content-Type": "application/json", "Origin": "http://127.0.0.1:1"}}, 403, metav1.StatusReasonForbidden, "cross-origin write"},
		{"Origin null (sandboxed page)", req{method: "POST", path: svcs, body: shellService,
			header: map[string]string{"Content-Type": "application/json", "Origin": "null"}}, 403, metav1.StatusReasonForbidden, "cross-origin write"},
		{"DNS rebinding Host", req{method: "POST", path: svcs, body: shellService, host: "evil.test:8090",
			header: map[string]string{"Content-Type": "application/json", "Origin": "http://evil.test:8090"}}, 403, metav1.StatusReasonForbidden, `Host "evil.test:8090"`},
		{"rebinding Host, same-origin from its view", req{method: "POST", path: svcs, body: shellService, host: "evil.test",
			header: map[string]string{"Content-Type": "text/plain", "Origin": "http://evil.test"}}, 403, metav1.StatusReasonForbidden, "is not a name this tide API serves"},
		{"rebinding GET reads nothing", req{method: "GET", path: svcs, host: "attacker.example"}, 403, metav1.StatusReasonForbidden, "not a name"},
		{"preflight from another origin", req{method: "OPTIONS", path: svcs,
			header: map[string]string{"Origin": "http://evil.example", "Access-Control-Request-Method": "POST",
				"Access-Control-Request-Headers": "content-type"}}, 403, metav1.StatusReasonForbidden, "cross-origin requests"},
		{"wrong bearer token", req{method: "POST", path: svcs, body: shellService,
			header: map[string]string{"Content-Type": "application/json", "Authorization": "Bearer nope"}}, 401, metav1.StatusReasonUnauthorized, "not this tide's API token"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, b := send(t, hs.URL, tc.r)
			if resp.StatusCode != tc.code {
				t.Fatalf("%d %s, want %d", resp.StatusCode, b, tc.code)
			}
			st := status(t, b)
			if st.Reason != tc.reason || !strings.Contains(st.Message, tc.msg) {
				t.Fatalf("status %s %q, want %s containing %q", st.Reason, st.Message, tc.reason, tc.msg)
			}
			for k := range resp.Header {
				if strings.HasPrefix(k, "Access-Control-Allow") {
					t.Errorf("refused request got CORS grant %s: %s", k, resp.Header.Get(k))
				}
			}
			if exists(t, hs.URL, "default", "pwned") {
				t.Fatal("the Service was created")
			}
		})
	}
}

// TestWhatClientsSendPasses: the same write as the CLI, client-go and kubectl send it (JSON, no Origin), and as
// the API's own page would (same Origin), each with the Host shapes tide serves.
func TestWhatClientsSendPasses(t *testing.T) {
	hs := newGuardedServer(t, Access{Host: "127.0.0.1", Token: testToken})
	port := hs.URL[strings.LastIndex(hs.URL, ":")+1:]
	const svcs = "/apis/serving.knative.dev/v1/namespaces/default/services"
	for i, tc := range []req{
		{header: map[string]string{"Content-Type": "application/json"}},
		{header: map[string]string{"Content-Type": "application/json; charset=utf-8", "User-Agent": "kubectl/v1.35.0"}},
		{header: map[string]string{"Content-Type": "application/json", "Origin": hs.URL}},
		{host: "localhost:" + port, header: map[string]string{"Content-Type": "application/json"}},
		{host: "hello.default.localhost:" + port, header: map[string]string{"Content-Type": "application/json"}},
		{host: "[::1]:" + port, header: map[string]string{"Content-Type": "application/json"}},
		{host: "127.0.0.1", header: map[string]string{"Content-Type": "application/json"}},
		{header: map[string]string{"Content-Type": "application/json", "Authorization": "Bearer " + testToken}},
	} {
		name := "ok-" + string(rune('a'+i))
		tc.method, tc.path = "POST", svcs
		tc.body = strings.Replace(shellService, `"pwned"`, `"`+name+`"`, 1)
		resp, b := send(t, hs.URL, tc)
		if resp.StatusCode != 201 {
			t.Fatalf("%+v: %d %s", tc, resp.StatusCode, b)
		}
	}
	// Patches with kubectl's media types, and a DELETE with and without a DeleteOptions body.
	for _, tc := range []req{
		{method: "PATCH", path: svcs + "/ok-a", body: `{"metadata":{"labels":{"a":"b"}}}`, header: map[string]string{"Content-Type": MergePatchType}},
		{method: "PATCH", path: svcs + "/ok-a", body: `[{"op":"add","path":"/metadata/labels/c","value":"d"}]`, header: map[string]string{"Content-Type": JSONPatchType}},
		{method: "DELETE", path: svcs + "/ok-a", body: `{"propagationPolicy":"Background"}`, header: map[string]string{"Content-Type": "application/json"}},
		{method: "DELETE", path: svcs + "/ok-b"},
	} {
		if resp, b := send(t, hs.URL, tc); resp.StatusCode != 200 {
			t.Fatalf("%s %s: %d %s", tc.method, tc.header["Content-Type"], resp.StatusCode, b)
		}
	}
	// kubectl's strategic merge and server-side apply reach the PATCH handler and get its explanation.
	resp, b := send(t, hs.URL, req{method: "PATCH", path: svcs + "/ok-c", body: `{}`,
		header: map[string]string{"Content-Type": "application/strategic-merge-patch+json"}})
	if resp.StatusCode != 415 || !strings.Contains(string(b), "not supported") {
		t.Fatalf("strategic merge: %d %s", resp.StatusCode, b)
	}
}

// TestHostRule: the names the API answers to, per listen address.
func TestHostRule(t *testing.T) {
	for _, tc := range []struct {
		listen string
		hosts  []string
		host   string
		ok     bool
	}{
		{"127.0.0.1", nil, "127.0.0.1:8090", true},
		{"127.0.0.1", nil, "localhost:8090", true},
		{"127.0.0.1", nil, "LOCALHOST", true},
		{"127.0.0.1", nil, "[::1]:8090", true},
		{"127.0.0.1", nil, "hello.default.localhost:8090", true},
		{"127.0.0.1", nil, "127.0.0.2:8090", true}, // loopback
		{"127.0.0.1", nil, "evil.test:8090", false},
		{"127.0.0.1", nil, "localhost.evil.test", false},
		{"127.0.0.1", nil, "evillocalhost", false},
		{"127.0.0.1", nil, "10.0.0.5:8090", false},
		{"", nil, "127.0.0.1:8090", true},
		{"", nil, "10.0.0.5:8090", false},
		{"127.0.0.1", nil, "", false},
		{"127.0.0.1", []string{"tide.internal"}, "tide.internal:8090", true},
		{"0.0.0.0", nil, "10.0.0.5:8090", true},
		{"0.0.0.0", nil, "[fd00::5]:8090", true},
		{"0.0.0.0", nil, "tide.internal:8090", false},
		{"::", nil, "192.168.1.9", true},
		{"10.0.0.5", nil, "10.0.0.5:8090", true},
		{"10.0.0.5", nil, "10.0.0.6:8090", false},
		{"tide.internal", nil, "tide.internal:8090", true},
		{"tide.internal", nil, "other.internal:8090", false},
	} {
		a := Access{Host: tc.listen, Hosts: tc.hosts}
		if got := a.hostAllowed(tc.host); got != tc.ok {
			t.Errorf("listen %s hosts %v: Host %q allowed=%v, want %v", tc.listen, tc.hosts, tc.host, got, tc.ok)
		}
	}
}

// TestCORS: a configured origin gets a preflight grant and may write; others get none.
func TestCORS(t *testing.T) {
	hs := newGuardedServer(t, Access{Host: "127.0.0.1", AllowedOrigins: []string{"https://tools.example.com"}})
	const cms = "/api/v1/namespaces/default/configmaps"
	pre := func(origin string) *http.Response {
		resp, _ := send(t, hs.URL, req{method: "OPTIONS", path: cms, header: map[string]string{"Origin": origin,
			"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type,authorization"}})
		return resp
	}
	if r := pre("https://tools.example.com"); r.StatusCode != 204 || r.Header.Get("Access-Control-Allow-Origin") != "https://tools.example.com" ||
		!strings.Contains(r.Header.Get("Access-Control-Allow-Headers"), "Authorization") {
		t.Fatalf("allowed origin's preflight: %d %v", r.StatusCode, r.Header)
	}
	if r := pre("https://tools.example.com.evil.test"); r.StatusCode != 403 || r.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Fatalf("other origin's preflight: %d %v", r.StatusCode, r.Header)
	}
	resp, b := send(t, hs.URL, req{method: "POST", path: cms, body: cm,
		header: map[string]string{"Content-Type": "application/json", "Origin": "https://tools.example.com"}})
	if resp.StatusCode != 201 || resp.Header.Get("Access-Control-Allow-Origin") != "https://tools.example.com" {
		t.Fatalf("write from the allowed origin: %d %s %v", resp.StatusCode, b, resp.Header)
	}
	// Even an allowed origin sends JSON: text/plain stays refused.
	resp, _ = send(t, hs.URL, req{method: "POST", path: cms, body: cm,
		header: map[string]string{"Content-Type": "text/plain", "Origin": "https://tools.example.com"}})
	if resp.StatusCode != 415 {
		t.Fatalf("text/plain from the allowed origin: %d", resp.StatusCode)
	}
}

// TestNamespaceAndNameValidation reproduces finding 4: namespaces and names that are not what Kubernetes accepts
// are refused on every path that takes them, with Kubernetes' messages, and nothing is created.
func TestNamespaceAndNameValidation(t *testing.T) {
	hs := newGuardedServer(t, Access{Host: "127.0.0.1", Token: testToken})
	long := strings.Repeat("a", 64)
	auth := map[string]string{"Content-Type": "application/json", "Authorization": "Bearer " + testToken}
	for _, ns := range []string{"..", ".", "Bad..NS", "%3Cimg%20src=x%20onerror=alert(1)%3E", "a%2Fb", "a%2F..%2F..", "%00", "a%00b", long, "-a", "UPPER", "a_b", "%2E%2E"} {
		for _, tc := range []req{
			{method: "POST", path: "/api/v1/namespaces/" + ns + "/configmaps", body: cm},
			{method: "GET", path: "/api/v1/namespaces/" + ns + "/configmaps"},
			{method: "GET", path: "/api/v1/namespaces/" + ns + "/configmaps?watch=true"},
			{method: "GET", path: "/api/v1/namespaces/" + ns + "/configmaps/c"},
			{method: "PUT", path: "/api/v1/namespaces/" + ns + "/configmaps/c", body: cm},
			{method: "PATCH", path: "/api/v1/namespaces/" + ns + "/configmaps/c", body: `{}`},
			{method: "DELETE", path: "/api/v1/namespaces/" + ns + "/configmaps/c"},
			{method: "GET", path: "/apis/serving.knative.dev/v1/namespaces/" + ns + "/services/s/log"},
		} {
			tc.header = auth
			if tc.method == "PATCH" {
				tc.header = map[string]string{"Content-Type": MergePatchType, "Authorization": "Bearer " + testToken}
			}
			resp, b := send(t, hs.URL, tc)
			if resp.StatusCode != 400 {
				t.Errorf("%s %s: %d %s, want 400", tc.method, tc.path, resp.StatusCode, b)
				continue
			}
			st := status(t, b)
			if !strings.Contains(st.Message, "invalid namespace") || !strings.Contains(st.Message, "RFC 1123 label") && !strings.Contains(st.Message, "must be no more than 63") {
				t.Errorf("%s %s: message %q", tc.method, tc.path, st.Message)
			}
		}
	}
	// Names in the path.
	for _, name := range []string{"Bad..Name", "a%2Fb", "%00", strings.Repeat("a", 254), "%3Cx%3E"} {
		resp, b := send(t, hs.URL, req{method: "GET", path: "/api/v1/namespaces/default/configmaps/" + name, header: auth})
		if resp.StatusCode != 400 || !strings.Contains(string(b), "invalid name") {
			t.Errorf("name %q: %d %s", name, resp.StatusCode, b)
		}
	}
	// A namespace in the body is checked too (a path without one: the cluster-wide collection refuses creates;
	// the namespaced path must match; here the body carries an invalid one on a valid path).
	resp, b := send(t, hs.URL, req{method: "POST", path: "/api/v1/namespaces/default/configmaps", header: auth,
		body: `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"c","namespace":"Bad..NS"}}`})
	if resp.StatusCode != 422 || !strings.Contains(string(b), `metadata.namespace: Invalid value: \"Bad..NS\": a lowercase RFC 1123 label must consist of`) {
		t.Errorf("body namespace: %d %s", resp.StatusCode, b)
	}
	// A Namespace object's name is a label too (it becomes other objects' namespace).
	resp, b = send(t, hs.URL, req{method: "POST", path: "/api/v1/namespaces", header: auth,
		body: `{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"a.b"}}`})
	if resp.StatusCode != 422 || !strings.Contains(string(b), "must not contain dots") {
		t.Errorf("Namespace named a.b: %d %s", resp.StatusCode, b)
	}
	// Nothing was created anywhere.
	resp, b = send(t, hs.URL, req{method: "GET", path: "/api/v1/configmaps", header: auth})
	var list struct{ Items []any }
	if err := json.Unmarshal(b, &list); err != nil || resp.StatusCode != 200 || len(list.Items) != 0 {
		t.Fatalf("after refused writes: %d %s", resp.StatusCode, b)
	}
}

// TestTokenRequired: with RequireToken, everything but health needs the token; the health endpoints answer
// without it and do not show failure details.
func TestTokenRequired(t *testing.T) {
	hs := newGuardedServer(t, Access{Host: "127.0.0.1", Token: testToken, RequireToken: true})
	for _, tc := range []struct {
		r    req
		code int
	}{
		{req{method: "GET", path: "/api/v1/namespaces/default/configmaps"}, 401},
		{req{method: "GET", path: "/tide/v1/kinds"}, 401},
		{req{method: "GET", path: "/"}, 401},
		{req{method: "GET", path: "/dashboard/api/state"}, 401},
		{req{method: "POST", path: "/api/v1/namespaces/default/configmaps", body: cm, header: map[string]string{"Content-Type": "application/json"}}, 401},
		{req{method: "GET", path: "/api/v1/namespaces/default/configmaps", header: map[string]string{"Authorization": "Bearer wrong"}}, 401},
		{req{method: "GET", path: "/api/v1/namespaces/default/configmaps", header: map[string]string{"Authorization": "Basic " + testToken}}, 401},
		{req{method: "GET", path: "/api/v1/namespaces/default/configmaps", header: map[string]string{"Authorization": "Bearer " + testToken}}, 200},
		{req{method: "GET", path: "/api/v1/namespaces/default/configmaps", header: map[string]string{"Authorization": "bearer " + testToken}}, 200},
		{req{method: "GET", path: "/readyz"}, 200},
		{req{method: "GET", path: "/livez"}, 200},
		{req{method: "GET", path: "/healthz"}, 200},
		// The cookie is for the dashboard's pages only, not the API.
		{req{method: "GET", path: "/api/v1/namespaces/default/configmaps", header: map[string]string{"Cookie": DashboardCookie + "=" + testToken}}, 401},
		{req{method: "GET", path: "/", header: map[string]string{"Cookie": DashboardCookie + "=" + testToken}}, 200},
		{req{method: "GET", path: "/", header: map[string]string{"Cookie": DashboardCookie + "=nope"}}, 401},
	} {
		resp, b := send(t, hs.URL, tc.r)
		if resp.StatusCode != tc.code {
			t.Errorf("%s %s %v: %d %s, want %d", tc.r.method, tc.r.path, tc.r.header, resp.StatusCode, b, tc.code)
		}
		if resp.StatusCode == 401 && resp.Header.Get("WWW-Authenticate") == "" {
			t.Errorf("%s %s: 401 without WWW-Authenticate", tc.r.method, tc.r.path)
		}
	}
	// The login link sets the cookie (HttpOnly, SameSite=Strict) and redirects without the token in the URL.
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Get(hs.URL + "/?token=" + testToken)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	ck := resp.Cookies()
	if resp.StatusCode != 303 || resp.Header.Get("Location") != "/" || len(ck) != 1 || ck[0].Name != DashboardCookie ||
		!ck[0].HttpOnly || ck[0].SameSite != http.SameSiteStrictMode {
		t.Fatalf("login: %d %v %+v", resp.StatusCode, resp.Header, ck)
	}
	resp, err = c.Get(hs.URL + "/?token=wrong")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 || len(resp.Cookies()) != 0 {
		t.Fatalf("login with a wrong token: %d %+v", resp.StatusCode, resp.Cookies())
	}
}

// TestReadyzHidesDetailsFromAnonymous: where the token is required, an anonymous /readyz names failing checks but
// not their errors (which can carry paths and addresses); with the token it shows them.
func TestReadyzHidesDetailsFromAnonymous(t *testing.T) {
	reg := registry.NewDefault()
	st, err := store.Open(store.Options{Path: filepath.Join(t.TempDir(), "db")})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	s, err := New(Options{Registry: reg, Store: st, Access: Access{Host: "127.0.0.1", Token: testToken, RequireToken: true}})
	if err != nil {
		t.Fatal(err)
	}
	s.AddReadyCheck("disk", func() error { return io.ErrUnexpectedEOF })
	hs := httptest.NewServer(s)
	defer hs.Close()
	resp, b := send(t, hs.URL, req{method: "GET", path: "/readyz"})
	if resp.StatusCode != 503 || !strings.Contains(string(b), "[-]disk failed") || strings.Contains(string(b), "unexpected EOF") {
		t.Fatalf("anonymous readyz: %d %s", resp.StatusCode, b)
	}
	resp, b = send(t, hs.URL, req{method: "GET", path: "/readyz", header: map[string]string{"Authorization": "Bearer " + testToken}})
	if resp.StatusCode != 503 || !strings.Contains(string(b), "unexpected EOF") {
		t.Fatalf("authenticated readyz: %d %s", resp.StatusCode, b)
	}
}

// TestSecretsHiddenFromAnonymous: without the token, Secrets come without data (get, list, watch, and the answers
// to writes), with a Warning; with the token they are whole. A redacted copy cannot be written back.
func TestSecretsHiddenFromAnonymous(t *testing.T) {
	hs := newGuardedServer(t, Access{Host: "127.0.0.1", Token: testToken})
	const secrets = "/api/v1/namespaces/default/secrets"
	secret := `{"apiVersion":"v1","kind":"Secret","metadata":{"name":"db"},"stringData":{"password":"hunter2"}}`
	jsonCT := map[string]string{"Content-Type": "application/json"}
	auth := map[string]string{"Content-Type": "application/json", "Authorization": "Bearer " + testToken}
	leaks := func(b []byte) bool {
		return strings.Contains(string(b), "hunter2") || strings.Contains(string(b), "aHVudGVyMg")
	}

	resp, b := send(t, hs.URL, req{method: "POST", path: secrets, body: secret, header: jsonCT})
	if resp.StatusCode != 201 || leaks(b) || !strings.Contains(resp.Header.Get("Warning"), "Secret values are hidden") {
		t.Fatalf("anonymous create: %d %s %v", resp.StatusCode, b, resp.Header)
	}
	for _, r := range []req{
		{method: "GET", path: secrets + "/db"},
		{method: "GET", path: secrets},
		{method: "GET", path: "/api/v1/secrets"},
		{method: "PATCH", path: secrets + "/db", body: `{"metadata":{"labels":{"a":"b"}}}`, header: map[string]string{"Content-Type": MergePatchType}},
	} {
		resp, b := send(t, hs.URL, r)
		if resp.StatusCode != 200 || leaks(b) || !strings.Contains(string(b), RedactedAnnotation) {
			t.Errorf("anonymous %s %s: %d %s", r.method, r.path, resp.StatusCode, b)
		}
	}
	// Watch: the ADDED event carries no data.
	wresp, err := http.Get(hs.URL + secrets + "?watch=true")
	if err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(wresp.Body).ReadString('\n')
	wresp.Body.Close()
	if err != nil || leaks([]byte(line)) || !strings.Contains(line, `"db"`) {
		t.Fatalf("anonymous watch: %q %v", line, err)
	}
	// Writing a redacted copy back is refused, so it cannot wipe the values.
	_, red := send(t, hs.URL, req{method: "GET", path: secrets + "/db"})
	resp, b = send(t, hs.URL, req{method: "PUT", path: secrets + "/db", body: string(red), header: auth})
	if resp.StatusCode != 422 || !strings.Contains(string(b), RedactedAnnotation) {
		t.Fatalf("PUT of a redacted copy: %d %s", resp.StatusCode, b)
	}
	// With the token: whole.
	resp, b = send(t, hs.URL, req{method: "GET", path: secrets + "/db", header: auth})
	if resp.StatusCode != 200 || !strings.Contains(string(b), "aHVudGVyMg") || strings.Contains(string(b), RedactedAnnotation) {
		t.Fatalf("GET with the token: %d %s", resp.StatusCode, b)
	}
	// Other kinds are not touched.
	send(t, hs.URL, req{method: "POST", path: "/api/v1/namespaces/default/configmaps", body: cm, header: jsonCT})
	if _, b := send(t, hs.URL, req{method: "GET", path: "/api/v1/namespaces/default/configmaps/c"}); !strings.Contains(string(b), `"a":"b"`) {
		t.Fatalf("configmap: %s", b)
	}
}
