package server

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestAccessModes: the token is created once (0600) and kept; it is required off loopback and with
// RequireToken; --insecure-no-auth turns that off and is warned about at every start; contradictory or unsafe
// setups are refused.
func TestAccessModes(t *testing.T) {
	dir := t.TempDir()
	open := func(o Options) (*Server, error) {
		o.DataDir, o.APIPort = dir, 0
		if o.Logger == nil {
			o.Logger = quiet()
		}
		s, err := New(o)
		if err == nil {
			t.Cleanup(func() { _ = s.Shutdown(context.Background()) })
		}
		return s, err
	}
	s, err := open(Options{})
	if err != nil {
		t.Fatal(err)
	}
	a := s.Access()
	fi, err := os.Stat(filepath.Join(dir, TokenFile))
	if err != nil || fi.Mode().Perm() != 0o600 || !a.TokenCreated || a.TokenRequired || a.Insecure || len(a.Token) < 40 {
		t.Fatalf("first start: %+v %v %v", a, fi, err)
	}
	first := a.Token
	_ = s.Shutdown(context.Background())

	for _, tc := range []struct {
		name                    string
		o                       Options
		required, insecure, err bool
	}{
		{"loopback default", Options{Host: "127.0.0.1"}, false, false, false},
		{"localhost", Options{Host: "localhost"}, false, false, false},
		{"ipv6 loopback", Options{Host: "::1"}, false, false, false},
		{"require on loopback", Options{Host: "127.0.0.1", RequireToken: true}, true, false, false},
		{"every address", Options{Host: "0.0.0.0"}, true, false, false},
		{"a LAN address", Options{Host: "192.0.2.10"}, true, false, false},
		{"insecure off loopback", Options{Host: "0.0.0.0", InsecureNoAuth: true}, false, true, false},
		{"insecure on loopback is just loopback", Options{Host: "127.0.0.1", InsecureNoAuth: true}, false, false, false},
		{"contradiction", Options{Host: "0.0.0.0", InsecureNoAuth: true, RequireToken: true}, false, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			access, info, err := setupAccess(Options{DataDir: dir, Host: tc.o.Host, RequireToken: tc.o.RequireToken, InsecureNoAuth: tc.o.InsecureNoAuth})
			if tc.err {
				if !errors.Is(err, ErrInsecureConflict) {
					t.Fatalf("err %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if info.Token != first || info.TokenCreated || info.TokenRequired != tc.required || info.Insecure != tc.insecure ||
				access.RequireToken != tc.required || access.Token != first {
				t.Fatalf("%+v %+v", info, access)
			}
		})
	}

	// The insecure warning is logged at every start.
	var logBuf bytes.Buffer
	s, err = open(Options{Host: "0.0.0.0", InsecureNoAuth: true, Logger: slog.New(slog.NewTextHandler(&logBuf, nil)),
		GatewayPort: 0})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logBuf.String(), "WARNING: --insecure-no-auth") {
		t.Fatalf("no warning in the log:\n%s", logBuf.String())
	}
	_ = s.Shutdown(context.Background())

	// A token file others may read is refused, with what to do.
	if err := os.Chmod(filepath.Join(dir, TokenFile), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := open(Options{}); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("world-readable token file: %v", err)
	}
}

// TestDashboardOverTLSWithToken: with the token required and TLS on, tide's dashboard (which watches the API
// over HTTP(S) itself, pinning the API's certificate and sending the token) shows a Service created through the
// API, and the browser reaches it through the ?token= link's cookie only.
func TestDashboardOverTLSWithToken(t *testing.T) {
	certFile, keyFile := writeSelfSigned(t, t.TempDir())
	s, err := New(Options{APIPort: 0, GatewayPort: 0, DataDir: t.TempDir(), Logger: quiet(), RequireToken: true,
		TLSCertFile: certFile, TLSKeyFile: keyFile})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer s.Shutdown(context.Background())
	api := s.APIURL()
	if !strings.HasPrefix(api, "https://") {
		t.Fatalf("api %s", api)
	}
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}, // test client
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	do := func(method, path, token, body string) (int, string, *http.Response) {
		req, _ := http.NewRequest(method, api+path, strings.NewReader(body))
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), resp
	}
	tok := s.Access().Token
	if code, b, _ := do("POST", "/apis/serving.knative.dev/v1/namespaces/default/services", tok,
		`{"apiVersion":"serving.knative.dev/v1","kind":"Service","metadata":{"name":"hello"},"spec":{"template":{"spec":{"containers":[{"image":"ko://example.com/hello"}]}}}}`); code != 201 {
		t.Fatalf("create: %d %s", code, b)
	}
	if code, _, _ := do("GET", "/dashboard/api/state", "", ""); code != 401 {
		t.Fatalf("dashboard without credential: %d", code)
	}
	code, _, resp := do("GET", "/?token="+tok, "", "")
	if code != 303 || len(resp.Cookies()) != 1 || !resp.Cookies()[0].Secure {
		t.Fatalf("login: %d %+v", code, resp.Cookies())
	}
	cookie := resp.Cookies()[0]
	deadline := time.Now().Add(20 * time.Second)
	for {
		req, _ := http.NewRequest("GET", api+"/dashboard/api/state", nil)
		req.AddCookie(cookie)
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == 200 && strings.Contains(string(b), `"hello"`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the dashboard never listed the Service: %d %s", resp.StatusCode, b)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// writeSelfSigned writes a self-signed certificate for localhost and 127.0.0.1 and its key.
func writeSelfSigned(t *testing.T, dir string) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "tide"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "api.crt"), filepath.Join(dir, "api.key")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}
