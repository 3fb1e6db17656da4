package cli

import (
	"bytes"
	"strings"
	"testing"
)

func TestPrintEvents(t *testing.T) {
	stream := `{"specversion":"1.0","id":"1","type":"order.created","source":"/shop","subject":"o-1","knativearrivaltime":"2026-01-02T03:04:05Z","data":{"total":3}}

{"specversion":"1.0","id":"2","type":"t","source":"/s","time":"2026-01-02T03:04:06Z","data_base64":"AAE="}
{"specversion":"1.0","id":"3","type":"t","source":"/s"}
`
	var out bytes.Buffer
	if err := printEvents(&out, strings.NewReader(stream), false, 2); err != nil {
		t.Fatal(err)
	}
	want := "2026-01-02T03:04:05Z  order.created  /shop  id=1  subject=o-1  knativearrivaltime=2026-01-02T03:04:05Z  {\"total\":3}\n" +
		"2026-01-02T03:04:06Z  t  /s  id=2  base64:AAE=\n"
	if out.String() != want {
		t.Errorf("got\n%s\nwant\n%s", out.String(), want)
	}
	out.Reset()
	if err := printEvents(&out, strings.NewReader(stream), true, 0); err != nil {
		t.Fatal(err)
	}
	if strings.Count(out.String(), "\n") != 3 || !strings.HasPrefix(out.String(), `{"specversion":"1.0","id":"1"`) {
		t.Errorf("json output %q", out.String())
	}
}
