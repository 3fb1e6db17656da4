package servertest_test

import (
	"net/http"
	"testing"

	"github.com/tide-run/tide/server"
	"github.com/tide-run/tide/server/servertest"
)

func TestRunServer(t *testing.T) {
	var s *servertest.Server
	t.Run("inner", func(t *testing.T) {
		s = servertest.RunServer(t, server.Options{})
		resp, err := http.Get(s.APIURL() + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("readyz %d", resp.StatusCode)
		}
	})
	if s.Ready() {
		t.Fatal("the platform still runs after its test ended")
	}
	if err := s.Stop(); err != nil {
		t.Fatalf("a second Stop: %v", err)
	}
}
