package admin

import (
	"bytes"
	"compress/zlib"
	"fmt"
	"io"

	"github.com/tide-run/tide/mq/message"
)

// maxInflated bounds an inflated body: a broker refuses bodies over 4 MiB before compression, and zlib's best ratio
// is about 1000:1, so 16 MiB leaves room without letting a hostile body take the memory.
const maxInflated = 16 << 20

// Body returns a message's body as the producer gave it: the clients zlib-compress bodies over 4 KiB (sysFlag 0x1)
// and the broker stores them as sent.
func Body(m *message.Message) ([]byte, error) {
	if m.SysFlag&message.FlagCompressed == 0 {
		return m.Body, nil
	}
	r, err := zlib.NewReader(bytes.NewReader(m.Body))
	if err != nil {
		return nil, fmt.Errorf("admin: compressed body: %w", err)
	}
	defer r.Close()
	b, err := io.ReadAll(io.LimitReader(r, maxInflated+1))
	if err != nil {
		return nil, fmt.Errorf("admin: compressed body: %w", err)
	}
	if len(b) > maxInflated {
		return nil, fmt.Errorf("admin: compressed body inflates beyond %d bytes", maxInflated)
	}
	return b, nil
}
