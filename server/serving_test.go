package server

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
)

// A busy gateway port fails Start with a PortError naming --gateway-port, and nothing is left listening.
func TestGatewayPortBusy(t *testing.T) {
	held, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	port := held.Addr().(*net.TCPAddr).Port
	s, err := New(Options{DataDir: t.TempDir(), GatewayPort: port, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	err = s.Start(context.Background())
	var pe *PortError
	if !errors.As(err, &pe) || !errors.Is(err, syscall.EADDRINUSE) || !strings.HasSuffix(err.Error(), "--gateway-port "+itoa(port)+": address already in use") {
		t.Fatalf("start error %v", err)
	}
}

// The gateway serves on its own port, reports its endpoint, and hands hosts that match no Service to the fallback.
func TestGatewayFallbackAndEndpoint(t *testing.T) {
	s, err := New(Options{DataDir: t.TempDir(), Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	s.SetGatewayFallback(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "fallback for "+r.Host)
	}))
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = s.Shutdown(context.Background()) }()
	found := false
	for _, e := range s.Endpoints() {
		found = found || (e.Name == "gateway" && e.URL == s.GatewayURL())
	}
	if !found {
		t.Fatalf("endpoints %v lack the gateway %s", s.Endpoints(), s.GatewayURL())
	}
	req, _ := http.NewRequest(http.MethodGet, s.GatewayURL()+"/default/default", nil)
	req.Host = "broker-ingress.example"
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "fallback for broker-ingress.example" {
		t.Fatalf("fallback answered %q", body)
	}
}
