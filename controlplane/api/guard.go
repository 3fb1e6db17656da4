package api

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"mime"
	"net"
	"net/http"
	"net/url"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
)

// Access decides who may use the API and the handlers mounted on it (the dashboard, log streams). Every request
// passes the guard (ServeHTTP) in this order, and the first refusal answers with a metav1.Status:
//
//  1. Host must name this server: a loopback address, "localhost" or any "*.localhost", Host itself, an IP address
//     of this machine when Host is a wildcard (0.0.0.0, ::), or one of Hosts. A page that rebinds its own DNS name
//     to 127.0.0.1 sends its own name and gets 403: DNS rebinding reaches nothing.
//  2. CORS: a preflight (OPTIONS with Access-Control-Request-Method) gets a grant only for an origin listed in
//     AllowedOrigins; others get 403 without any Access-Control-Allow-* header, so the browser never sends the
//     request.
//  3. A write (any method but GET, HEAD, OPTIONS) with an Origin header must come from the API's own origin or
//     from AllowedOrigins (403). Browsers send Origin on every cross-site POST, form posts included.
//  4. A write's body must be JSON or a Kubernetes patch type (415): what the CLI, client-go and kubectl send.
//     text/plain, forms and multipart, which a browser sends cross-site without a preflight, are refused.
//  5. Authentication: "Authorization: Bearer TOKEN" (kubectl, client-go, `tide --token`) is compared with Token
//     in constant time; a wrong token is 401 even where anonymous access is allowed. The dashboard's pages use
//     a same-origin cookie instead (see dashboardCookie). Without a credential the caller is anonymous: refused
//     with 401 when RequireToken, else served, except that Secrets' values are hidden from it (secrets.go).
//     GET /readyz, /livez and /healthz never need a credential (and /readyz hides failure details from
//     anonymous callers when RequireToken).
//  6. A namespace in the path must be a DNS-1123 label (400), so no name reaches a store key, a log directory or
//     a topic unless it is one a cluster would accept.
type Access struct {
	// Host is the address the API listens on (tide up --host); requests naming it are accepted. Empty: loopback
	// names only.
	Host string
	// Hosts are more host names the API answers to (tide up --allowed-host), e.g. the machine's DNS name when
	// it listens on 0.0.0.0. Names only; the port is not compared.
	Hosts []string
	// AllowedOrigins may call the API from a browser (CORS, cross-origin writes): exact origins such as
	// "https://tools.example.com" (tide up --cors-origin). Default none.
	AllowedOrigins []string
	// Token is the bearer token (tide up keeps it in <data-dir>/api-token). Empty: no token is accepted, and
	// every caller is anonymous.
	Token string
	// RequireToken refuses anonymous callers (401) everywhere but the health endpoints.
	RequireToken bool
}

// Anonymous is the user name of a caller without a credential, as Kubernetes names it.
const Anonymous = "system:anonymous"

// DashboardCookie carries the API token for the dashboard's own page and streams, which a browser cannot send
// a header with (EventSource). It is set by GET /?token=TOKEN and accepted only on the dashboard's GET paths;
// SameSite=Strict keeps other sites' requests from carrying it, HttpOnly keeps scripts from reading it.
const DashboardCookie = "tide-token"

// writeContentTypes are the request bodies a write may carry: JSON, and the patch types Kubernetes defines
// (strategic merge patches for built-in kinds, apply patches for server-side apply).
var writeContentTypes = map[string]bool{
	"application/json": true, MergePatchType: true, JSONPatchType: true, strategicPatchType: true, applyPatchType: true,
	// client-go's typed clientsets (kubectl create namespace, create secret...) write built-in kinds as protobuf;
	// a browser cannot send it cross-site without a preflight. protobuf.go turns it into JSON.
	protobufType: true,
	// OTLP/HTTP exporters post spans as binary protobuf (POST /v1/traces); like the type above it is not one a
	// browser may send cross-site without a preflight, which the guard refuses.
	otlpProtobufType: true,
}

// otlpProtobufType is the media type of OTLP/HTTP's binary encoding.
const otlpProtobufType = "application/x-protobuf"

type principalKey struct{}

// Principal is who made a request, as the guard found it.
type Principal struct {
	// Authenticated: the request carried the API token.
	Authenticated bool
}

// PrincipalOf returns the caller of a request that passed the guard (anonymous when unknown).
func PrincipalOf(r *http.Request) Principal {
	p, _ := r.Context().Value(principalKey{}).(Principal)
	return p
}

// healthPath: paths that answer without a credential.
func healthPath(p string) bool { return p == "/readyz" || p == "/livez" || p == "/healthz" }

// dashboardPath: the dashboard's page, assets and streams (dashboard.Dashboard's routes).
func dashboardPath(p string) bool {
	return p == "/" || p == "/index.html" || p == "/favicon.ico" || strings.HasPrefix(p, "/dashboard/")
}

// guard applies Access to r. It answers and returns nil when the request is refused; otherwise it returns r
// with its Principal in the context.
func (s *Server) guard(w http.ResponseWriter, r *http.Request) *http.Request {
	a := &s.access
	if !a.hostAllowed(r.Host) {
		writeError(w, &apiError{code: http.StatusForbidden, reason: metav1.StatusReasonForbidden,
			message: fmt.Sprintf("Host %q is not a name this tide API serves (it answers to 127.0.0.1, localhost, *.localhost%s); "+
				"a web page that renamed itself to reach tide is refused. To use another name, start tide with --allowed-host NAME",
				r.Host, a.extraHostsText())})
		return nil
	}
	if s.serveDashboardLogin(w, r) {
		return nil
	}
	origin := r.Header.Get("Origin")
	allowedOrigin := origin != "" && a.originListed(origin)
	if allowedOrigin {
		h := w.Header()
		h.Set("Access-Control-Allow-Origin", origin)
		h.Add("Vary", "Origin")
		h.Set("Access-Control-Expose-Headers", "Warning")
	}
	if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
		if !allowedOrigin {
			writeError(w, &apiError{code: http.StatusForbidden, reason: metav1.StatusReasonForbidden,
				message: fmt.Sprintf("cross-origin requests from %q are not allowed (start tide with --cors-origin %s to allow them)", origin, origin)})
			return nil
		}
		h := w.Header()
		h.Set("Access-Control-Allow-Methods", "GET, POST, PUT, PATCH, DELETE")
		h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type")
		h.Set("Access-Control-Max-Age", "600")
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
	write := r.Method != http.MethodGet && r.Method != http.MethodHead && r.Method != http.MethodOptions
	if write && origin != "" && !allowedOrigin && !sameOrigin(r, origin) {
		writeError(w, &apiError{code: http.StatusForbidden, reason: metav1.StatusReasonForbidden,
			message: fmt.Sprintf("cross-origin write from %q refused: the tide API accepts writes from its own origin, from clients that send no Origin (the CLI, kubectl, client-go), or from origins allowed with --cors-origin", origin)})
		return nil
	}
	if write && (r.ContentLength != 0 || r.Method != http.MethodDelete) {
		ct := r.Header.Get("Content-Type")
		mt, _, _ := mime.ParseMediaType(ct)
		if !writeContentTypes[mt] {
			if ct == "" {
				ct = "no Content-Type"
			}
			writeError(w, &apiError{code: http.StatusUnsupportedMediaType, reason: metav1.StatusReasonUnsupportedMediaType,
				message: fmt.Sprintf("the body of a %s must be application/json (or a patch type: %s, %s); got %s", r.Method, MergePatchType, JSONPatchType, ct)})
			return nil
		}
	}
	p, aerr := a.authenticate(r)
	if aerr != nil {
		w.Header().Set("WWW-Authenticate", `Bearer realm="tide"`)
		writeError(w, aerr)
		return nil
	}
	if !p.Authenticated && a.RequireToken && !healthPath(r.URL.Path) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="tide"`)
		msg := "Unauthorized: this tide API requires its token: `tide --token TOKEN` or $TIDE_TOKEN, or `token:` in a kubeconfig user " +
			"(the token is in <data-dir>/api-token on the machine running tide)"
		if dashboardPath(r.URL.Path) {
			msg = "Unauthorized: open the dashboard as " + "/?token=TOKEN once (the token is in <data-dir>/api-token on the machine running tide)"
		}
		writeError(w, &apiError{code: http.StatusUnauthorized, reason: metav1.StatusReasonUnauthorized, message: msg})
		return nil
	}
	if aerr := checkPathNamespace(r.URL); aerr != nil {
		writeError(w, aerr)
		return nil
	}
	return r.WithContext(context.WithValue(r.Context(), principalKey{}, p))
}

// authenticate finds the request's credential. A bearer token must be right (401 otherwise); the dashboard
// cookie counts only on the dashboard's own GET paths, and a stale one is ignored (the page asks again).
func (a *Access) authenticate(r *http.Request) (Principal, *apiError) {
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, tok, _ := strings.Cut(h, " ")
		if !strings.EqualFold(scheme, "Bearer") || !a.tokenMatches(strings.TrimSpace(tok)) {
			return Principal{}, &apiError{code: http.StatusUnauthorized, reason: metav1.StatusReasonUnauthorized,
				message: "Unauthorized: the bearer token is not this tide's API token (see <data-dir>/api-token)"}
		}
		return Principal{Authenticated: true}, nil
	}
	if (r.Method == http.MethodGet || r.Method == http.MethodHead) && dashboardPath(r.URL.Path) {
		if c, err := r.Cookie(DashboardCookie); err == nil && a.tokenMatches(c.Value) {
			return Principal{Authenticated: true}, nil
		}
	}
	return Principal{}, nil
}

// tokenMatches compares in constant time (hashing first, so neither the token's length nor a prefix leaks).
func (a *Access) tokenMatches(tok string) bool {
	if a.Token == "" || tok == "" {
		return false
	}
	want := sha256.Sum256([]byte(a.Token))
	got := sha256.Sum256([]byte(tok))
	return subtle.ConstantTimeCompare(want[:], got[:]) == 1
}

// serveDashboardLogin turns GET /?token=TOKEN (the link tide up prints) into the dashboard cookie and redirects
// to the same page without the token, so it stays out of the address bar and history. It reports whether it
// answered.
func (s *Server) serveDashboardLogin(w http.ResponseWriter, r *http.Request) bool {
	if r.Method != http.MethodGet || !dashboardPath(r.URL.Path) || !r.URL.Query().Has("token") {
		return false
	}
	tok := r.URL.Query().Get("token")
	if !s.access.tokenMatches(tok) {
		writeError(w, &apiError{code: http.StatusUnauthorized, reason: metav1.StatusReasonUnauthorized,
			message: "Unauthorized: the token in the link is not this tide's API token (see <data-dir>/api-token)"})
		return true
	}
	http.SetCookie(w, &http.Cookie{Name: DashboardCookie, Value: tok, Path: "/", HttpOnly: true,
		SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil})
	q := r.URL.Query()
	q.Del("token")
	u := url.URL{Path: r.URL.Path, RawQuery: q.Encode()}
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, u.String(), http.StatusSeeOther)
	return true
}

// hostAllowed implements rule 1. The port is not compared: tide's own URLs carry the port, and a page cannot
// choose another site's name for the Host header, only its own.
func (a *Access) hostAllowed(hostport string) bool {
	h := hostport
	if host, _, err := net.SplitHostPort(hostport); err == nil {
		h = host
	}
	h = strings.ToLower(strings.TrimSuffix(strings.Trim(h, "[]"), "."))
	if h == "" {
		return false // HTTP/1.0 without Host: no browser sends that
	}
	if h == "localhost" || strings.HasSuffix(h, ".localhost") {
		return true // RFC 6761: resolves to loopback, never to an attacker's address
	}
	for _, n := range a.Hosts {
		if strings.EqualFold(strings.Trim(n, "[]"), h) {
			return true
		}
	}
	ip := net.ParseIP(h)
	listen := strings.Trim(a.Host, "[]")
	if ip == nil {
		return strings.EqualFold(listen, h)
	}
	if ip.IsLoopback() {
		return true
	}
	lip := net.ParseIP(listen)
	switch {
	case lip != nil && lip.IsUnspecified():
		// Listening on every address: any IP literal names this machine (a browser that reaches tide by an
		// address sends that address; rebinding needs a DNS name, and names are checked above).
		return true
	case lip != nil:
		return lip.Equal(ip)
	}
	return false
}

func (a *Access) extraHostsText() string {
	var names []string
	if a.Host != "" {
		names = append(names, a.Host)
	}
	names = append(names, a.Hosts...)
	if len(names) == 0 {
		return ""
	}
	return ", " + strings.Join(names, ", ")
}

func (a *Access) originListed(origin string) bool {
	for _, o := range a.AllowedOrigins {
		if strings.EqualFold(strings.TrimSuffix(o, "/"), origin) {
			return true
		}
	}
	return false
}

// sameOrigin: the Origin header is this request's own scheme://host (the page was served by this API).
func sameOrigin(r *http.Request, origin string) bool {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return strings.EqualFold(origin, scheme+"://"+r.Host)
}

// checkPathNamespace validates the segment after "namespaces/" in an /api or /apis path (rule 6), decoding each
// segment itself so that %2F, %00 and the like are judged as the name they spell.
func checkPathNamespace(u *url.URL) *apiError {
	p := u.EscapedPath()
	if !strings.HasPrefix(p, "/api/") && !strings.HasPrefix(p, "/apis/") {
		return nil
	}
	segs := strings.Split(strings.Trim(p, "/"), "/")
	for i := 0; i+2 < len(segs); i++ {
		if segs[i] != "namespaces" {
			continue
		}
		ns, err := url.PathUnescape(segs[i+1])
		if err != nil {
			return badRequest(fmt.Sprintf("invalid namespace %q in the request path: %v", segs[i+1], err))
		}
		if aerr := validNamespace(ns); aerr != nil {
			return aerr
		}
		return nil
	}
	return nil
}

// validNamespace applies Kubernetes' namespace rule (a DNS-1123 label) with its messages.
func validNamespace(ns string) *apiError {
	if errs := validation.IsDNS1123Label(ns); len(errs) > 0 {
		return badRequest(fmt.Sprintf("invalid namespace %q: %s", ns, strings.Join(errs, "; ")))
	}
	return nil
}

// validName applies Kubernetes' object-name rule (a DNS-1123 subdomain) to a name in the path.
func validName(name string) *apiError {
	if errs := validation.IsDNS1123Subdomain(name); len(errs) > 0 {
		return badRequest(fmt.Sprintf("invalid name %q: %s", name, strings.Join(errs, "; ")))
	}
	return nil
}
