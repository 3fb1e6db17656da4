package server

import (
	"bytes"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/tide-run/tide/controlplane/api"
)

// TokenFile is the API token's file in the data dir. tide up creates it (mode 0600) on the first start; the
// token never changes after that unless the file is deleted.
const TokenFile = "api-token"

// TokenEnv is the environment variable the CLI reads the API token from (like --token).
const TokenEnv = "TIDE_TOKEN"

// ErrInsecureConflict: --insecure-no-auth and --require-token together.
var ErrInsecureConflict = errors.New("--insecure-no-auth and --require-token contradict each other")

// AccessInfo describes how the API admits callers, for `tide up` to print.
type AccessInfo struct {
	// Token is the API token; TokenPath its file.
	Token, TokenPath string
	// TokenCreated: this start created the token (tide up prints it once, then only its path).
	TokenCreated bool
	// TokenRequired: every API and dashboard request needs the token (non-loopback host, or RequireToken).
	TokenRequired bool
	// Insecure: tide listens beyond loopback without authentication (InsecureNoAuth); warned at every start.
	Insecure bool
}

// IsLoopbackHost reports whether host (a --host value) only accepts connections from this machine.
func IsLoopbackHost(host string) bool {
	h := strings.Trim(host, "[]")
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// setupToken loads <data-dir>/api-token, creating it with a fresh random token when missing. A token file
// that others can read is refused rather than used: anyone who read it could call the API as its owner.
func setupToken(dataDir string) (token, path string, created bool, err error) {
	path = filepath.Join(dataDir, TokenFile)
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return "", path, false, fmt.Errorf("data dir %s: %w", dataDir, err)
	}
	tok, err := ReadTokenFile(path)
	if err == nil {
		return tok, path, false, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return "", path, false, err
	}
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", path, false, fmt.Errorf("generate the API token: %w", err)
	}
	tok = base64.RawURLEncoding.EncodeToString(b)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) { // another start won the race: use its token
		tok, err = ReadTokenFile(path)
		return tok, path, false, err
	}
	if err != nil {
		return "", path, false, fmt.Errorf("create the API token file: %w", err)
	}
	if _, err := f.WriteString(tok + "\n"); err != nil {
		_ = f.Close()
		return "", path, false, fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		_ = f.Close()
		return "", path, false, fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return "", path, false, fmt.Errorf("write %s: %w", path, err)
	}
	return tok, path, true, nil
}

// ReadTokenFile reads an API token file, refusing one that group or others may read or write, and an empty one.
// A missing file is an error wrapping fs.ErrNotExist.
func ReadTokenFile(path string) (string, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return "", err
	}
	if !fi.Mode().IsRegular() {
		return "", fmt.Errorf("API token file %s is not a regular file", path)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return "", fmt.Errorf("API token file %s has mode %v: others may read it; run `chmod 600 %s` (or delete it for a new token)",
			path, fi.Mode().Perm(), path)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	tok := strings.TrimSpace(string(b))
	if tok == "" {
		return "", fmt.Errorf("API token file %s is empty; delete it and tide up makes a new token", path)
	}
	return tok, nil
}

// setupAccess builds the API's Access from opts: the token from the data dir, whether it is required, and the
// names the API answers to.
func setupAccess(opts Options) (api.Access, AccessInfo, error) {
	if opts.RequireToken && opts.InsecureNoAuth {
		return api.Access{}, AccessInfo{}, ErrInsecureConflict
	}
	tok, path, created, err := setupToken(opts.DataDir)
	if err != nil {
		return api.Access{}, AccessInfo{}, err
	}
	loopback := IsLoopbackHost(opts.Host)
	info := AccessInfo{Token: tok, TokenPath: path, TokenCreated: created,
		TokenRequired: opts.RequireToken || (!loopback && !opts.InsecureNoAuth),
		Insecure:      !loopback && opts.InsecureNoAuth}
	hosts := append([]string(nil), opts.AllowedHosts...)
	if h := strings.Trim(opts.Host, "[]"); net.ParseIP(h) == nil && h != "localhost" {
		// --host NAME listens on NAME's addresses, and tide's own URLs (the dashboard's watch) carry them.
		if addrs, err := net.LookupHost(h); err == nil {
			hosts = append(hosts, addrs...)
		}
	}
	return api.Access{Host: opts.Host, Hosts: hosts, AllowedOrigins: opts.CORSOrigins, Token: tok,
		RequireToken: info.TokenRequired}, info, nil
}

// Access reports how the API admits callers (the token, whether it is required), for `tide up` to print.
func (s *Server) Access() AccessInfo { return s.access }

// InsecureWarning is what tide prints at every start with InsecureNoAuth on a non-loopback host.
func InsecureWarning(host string) string {
	return fmt.Sprintf("WARNING: --insecure-no-auth: the tide API and dashboard on %s accept anyone who can reach them, without a token. "+
		"Anyone on the network can read and change every object and run commands on this machine as this user. "+
		"Drop --insecure-no-auth to require the token in the data dir's %s.", host, TokenFile)
}

func (s *Server) warnInsecure() {
	if s.access.Insecure {
		s.log.Warn(InsecureWarning(s.opts.Host))
	}
}

// loadTLS loads the API's certificate when Options.TLSCertFile/TLSKeyFile are set.
func loadTLS(opts Options) (*tls.Config, error) {
	if opts.TLSCertFile == "" && opts.TLSKeyFile == "" {
		return nil, nil
	}
	if opts.TLSCertFile == "" || opts.TLSKeyFile == "" {
		return nil, errors.New("--tls-cert-file and --tls-key-file go together")
	}
	cert, err := tls.LoadX509KeyPair(opts.TLSCertFile, opts.TLSKeyFile)
	if err != nil {
		return nil, fmt.Errorf("--tls-cert-file %s / --tls-key-file %s: %w", opts.TLSCertFile, opts.TLSKeyFile, err)
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, nil
}

// selfClient is the HTTP client tide's own parts (the dashboard's watch) use to call the API at its listen
// address. Over TLS that address (127.0.0.1, 0.0.0.0) need not be among the certificate's names, so instead
// of checking names the client accepts exactly the API's own certificate (pinned).
func (s *Server) selfClient() *http.Client {
	tr := &http.Transport{Proxy: nil, ResponseHeaderTimeout: 5 * time.Second}
	if s.tlsConfig != nil {
		own := s.tlsConfig.Certificates[0].Certificate[0]
		tr.TLSClientConfig = &tls.Config{
			InsecureSkipVerify: true, // replaced by the pin below
			VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
				if len(raw) == 0 || !bytes.Equal(raw[0], own) {
					return errors.New("the API presented a certificate that is not its own")
				}
				return nil
			},
		}
	}
	return &http.Client{Transport: tr}
}
