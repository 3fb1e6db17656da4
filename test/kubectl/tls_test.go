package kubectl_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tide-run/tide/server"
	"github.com/tide-run/tide/server/servertest"
)

// TestTokenOverTLS: where tide requires its token (--require-token), kubectl sends the kubeconfig's token over
// https and is served in full (Secrets with their values); with a wrong token it is Unauthorized.
func TestTokenOverTLS(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cert, key := selfSigned(t, dir)
	s := servertest.RunServer(t, server.Options{DataDir: filepath.Join(dir, "data"), RequireToken: true, TLSCertFile: cert, TLSKeyFile: key})
	tok, err := os.ReadFile(filepath.Join(dir, "data", server.TokenFile))
	if err != nil {
		t.Fatal(err)
	}
	k := &kube{t: t, tide: s, home: t.TempDir()}
	k.kubeconfig = filepath.Join(k.home, "kubeconfig")
	if !strings.HasPrefix(s.APIURL(), "https://") {
		t.Fatalf("API URL %s is not https", s.APIURL())
	}
	// (A kubeconfig without credentials makes kubectl prompt for a user name over https, as with any cluster.)
	k.writeConfig(s.APIURL(), cert, "not-the-token")
	if errOut := k.fails("", "get", "ksvc"); !strings.Contains(errOut, "Unauthorized") && !strings.Contains(errOut, "logged in") {
		t.Errorf("with a wrong token: %s", errOut)
	}
	k.writeConfig(s.APIURL(), cert, strings.TrimSpace(string(tok)))
	k.okIn("apiVersion: v1\nkind: Secret\nmetadata:\n  name: creds\nstringData:\n  key: value\n", "apply", "-f", "-")
	if out := k.ok("get", "secret", "creds", "-o", "jsonpath={.data.key}"); out != "dmFsdWU=" {
		t.Errorf("the Secret's value with the token: %q", out)
	}
	if out := k.ok("get", "secret", "creds"); !strings.Contains(out, "creds") {
		t.Errorf("get secret: %s", out)
	}
}

// selfSigned writes a self-signed certificate for localhost and 127.0.0.1 (its own CA).
func selfSigned(t *testing.T, dir string) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "tide"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true, IsCA: true}
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
