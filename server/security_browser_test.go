package server

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	cdpruntime "github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/tide-run/tide/dashboard/dashboardtest"
)

// attackPage is what a site the user visits serves: scripts that try to create Knative Services running a shell
// command on the tide API (finding 1 of issue 11), each in a shape a browser sends from another origin.
const attackPage = `<!doctype html><html><body>
<iframe name="sink1"></iframe><iframe name="sink2"></iframe>
<script>
function svc(name) {
  return JSON.stringify({apiVersion: "serving.knative.dev/v1", kind: "Service", metadata: {name: name},
    spec: {template: {spec: {containers: [{image: "busybox", command: ["/bin/sh", "-c", "touch /tmp/pwned-" + name]}]}}}});
}
function path(api) { return api + "/apis/serving.knative.dev/v1/namespaces/default/services"; }
async function tryFetch(url, init) {
  try { const r = await fetch(url, init); return "status " + r.status + (r.type === "opaque" ? " (opaque)" : ""); }
  catch (e) { return "blocked: " + e.message; }
}
function formPost(api, target, enctype, name, value) {
  return new Promise(resolve => {
    const frame = document.getElementsByName(target)[0];
    frame.onload = () => resolve("form " + enctype + " submitted");
    const f = document.createElement("form");
    f.method = "POST"; f.action = path(api); f.enctype = enctype; f.target = target;
    const i = document.createElement("input"); i.type = "hidden"; i.name = name; i.value = value;
    f.appendChild(i); document.body.appendChild(f); f.submit();
  });
}
window.attack = async function(api) {
  const out = {};
  out.textPlain = await tryFetch(path(api), {method: "POST", mode: "no-cors", headers: {"Content-Type": "text/plain"}, body: svc("via-text-plain")});
  out.json = await tryFetch(path(api), {method: "POST", headers: {"Content-Type": "application/json"}, body: svc("via-json")});
  out.noCorsJSON = await tryFetch(path(api), {method: "POST", mode: "no-cors", headers: {"Content-Type": "application/json"}, body: svc("via-no-cors-json")});
  // The classic JSON-in-a-form trick: name + "=" + value spells a valid document (the "=" lands in an
  // annotation's value), sent as text/plain.
  const doc = JSON.parse(svc("via-form-text"));
  const name = JSON.stringify({apiVersion: doc.apiVersion, kind: doc.kind, spec: doc.spec}).slice(0, -1) +
    ',"metadata":{"name":"via-form-text","annotations":{"x":"';
  out.formText = await formPost(api, "sink1", "text/plain", name, '"}}}');
  out.formURL = await formPost(api, "sink2", "application/x-www-form-urlencoded", "doc", svc("via-form-urlencoded"));
  return JSON.stringify(out);
};
</script></body></html>`

// TestBrowserCannotDriveTide reproduces finding 1 in headless Chromium against a real tide: a page served from
// another origin (another port on 127.0.0.1) tries fetch with text/plain (no preflight), fetch with
// application/json (preflight), no-cors JSON, a text/plain form carrying JSON and a urlencoded form; a page in
// the DNS-rebinding position (http://evil.test:<api port>, evil.test mapped to 127.0.0.1 with
// --host-resolver-rules) posts same-origin. Nothing is created (checked through the API with the token); tide's
// own page, as a control, can create.
func TestBrowserCannotDriveTide(t *testing.T) {
	chromium := dashboardtest.Chromium(t) // skip (or fail in CI) before building anything
	s, err := New(Options{APIPort: 0, GatewayPort: 0, DataDir: t.TempDir(), Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		sctx, scancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer scancel()
		_ = s.Shutdown(sctx)
	})
	api := s.APIURL()
	apiPort := api[strings.LastIndex(api, ":")+1:]
	token := s.Access().Token

	attacker := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = io.WriteString(w, attackPage)
	}))
	defer attacker.Close()

	profile, err := os.MkdirTemp("", "tide-chromium-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(profile) // Chromium may still write while t.TempDir would check it is empty
	actx, cancelAlloc := chromedp.NewExecAllocator(ctx,
		chromedp.ExecPath(chromium),
		chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("host-resolver-rules", "MAP evil.test 127.0.0.1"),
		chromedp.UserDataDir(filepath.Join(profile, "p")),
	)
	defer cancelAlloc()
	bctx, cancelBrowser := chromedp.NewContext(actx)
	defer func() { _ = chromedp.Cancel(bctx); cancelBrowser() }()
	if err := chromedp.Run(bctx); err != nil {
		t.Fatalf("starting %s: %v", chromium, err)
	}
	eval := func(what string, actions ...chromedp.Action) {
		t.Helper()
		rctx, rcancel := context.WithTimeout(bctx, 30*time.Second)
		defer rcancel()
		if err := chromedp.Run(rctx, actions...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	awaitPromise := func(p *cdpruntime.EvaluateParams) *cdpruntime.EvaluateParams { return p.WithAwaitPromise(true) }

	// 1. Another origin.
	var crossSite string
	eval("cross-site attack", chromedp.Navigate(attacker.URL+"/"),
		chromedp.Evaluate(fmt.Sprintf("attack(%q)", api), &crossSite, awaitPromise))
	var got map[string]string
	if err := json.Unmarshal([]byte(crossSite), &got); err != nil {
		t.Fatalf("attack result %q: %v", crossSite, err)
	}
	t.Logf("cross-site attempts: %v", got)
	if !strings.HasPrefix(got["json"], "blocked") {
		t.Errorf("fetch with application/json from another origin: %s; the preflight must fail", got["json"])
	}
	for _, k := range []string{"textPlain", "noCorsJSON"} {
		if !strings.Contains(got[k], "opaque") {
			t.Errorf("%s: %s; want the request sent (an opaque answer), so that the refusal is the API's", k, got[k])
		}
	}

	// 2. DNS rebinding: the page's origin is http://evil.test:<api port>, which the browser resolves to tide.
	var rebound string
	eval("rebinding", chromedp.Navigate("http://evil.test:"+apiPort+"/"),
		chromedp.Evaluate("("+reboundScript+")()", &rebound, awaitPromise))
	var rb struct {
		Post     int
		PostBody string
		List     int
	}
	if err := json.Unmarshal([]byte(rebound), &rb); err != nil {
		t.Fatalf("rebinding result %q: %v", rebound, err)
	}
	if rb.Post != 403 || !strings.Contains(rb.PostBody, `Host \"evil.test:`+apiPort+`\"`) || rb.List != 403 {
		t.Errorf("rebinding: %+v; want 403 naming the Host for the write and 403 for the read", rb)
	}

	// 3. The control: tide's own dashboard page.
	var own string
	eval("own page", chromedp.Navigate(api+"/"), chromedp.Evaluate("("+ownScript+")()", &own, awaitPromise))
	if own != "status 201" {
		t.Errorf("tide's own page, same origin, JSON: %s; want 201", own)
	}

	// Nothing but the control's Service exists.
	req, _ := http.NewRequest("GET", api+"/apis/serving.knative.dev/v1/namespaces/default/services", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var list struct {
		Items []struct {
			Metadata struct{ Name string }
		}
	}
	if err := json.NewDecoder(resp.Body).Decode(&list); err != nil || resp.StatusCode != 200 {
		t.Fatalf("list: %d %v", resp.StatusCode, err)
	}
	var names []string
	for _, it := range list.Items {
		names = append(names, it.Metadata.Name)
	}
	if len(names) != 1 || names[0] != "from-own-page" {
		t.Fatalf("services after the attacks: %v; want only the control's from-own-page", names)
	}
}

// reboundScript runs in a page whose origin is http://evil.test:<api port>: the state after a DNS rebinding,
// where the attacker's name points at 127.0.0.1 and the API looks same-origin to the browser.
const reboundScript = `async function() {
  const r = await fetch("/apis/serving.knative.dev/v1/namespaces/default/services", {method: "POST",
    headers: {"Content-Type": "application/json"},
    body: JSON.stringify({apiVersion: "serving.knative.dev/v1", kind: "Service", metadata: {name: "via-rebinding"},
      spec: {template: {spec: {containers: [{image: "busybox", command: ["/bin/sh", "-c", "touch /tmp/pwned"]}]}}}})});
  const g = await fetch("/api/v1/secrets");
  return JSON.stringify({post: r.status, postBody: await r.text(), list: g.status});
}`

// ownScript is window.own, for the dashboard's page (which does not carry the attack page's scripts).
const ownScript = `async function() {
  const r = await fetch("/apis/serving.knative.dev/v1/namespaces/default/services", {method: "POST",
    headers: {"Content-Type": "application/json"},
    body: JSON.stringify({apiVersion: "serving.knative.dev/v1", kind: "Service", metadata: {name: "from-own-page"},
      spec: {template: {spec: {containers: [{image: "ko://example.com/hello"}]}}}})});
  return "status " + r.status;
}`
