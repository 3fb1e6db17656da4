package client

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
)

// TailBrokerEvents opens the stream of CloudEvents entering a Broker from now on (`tide events tail`): one JSON
// event (structured format) per line, until ctx ends or the server stops. Close the returned body when done.
func (c *Client) TailBrokerEvents(ctx context.Context, namespace, broker string) (io.ReadCloser, error) {
	path := "/tide/v1/namespaces/" + url.PathEscape(nsFor(Kind{Namespaced: true}, namespace)) + "/brokers/" + url.PathEscape(broker) + "/events"
	resp, err := c.do(ctx, http.MethodGet, path, nil, nil)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return nil, fmt.Errorf("tail broker %s/%s: %s: %s", namespace, broker, resp.Status, string(b))
	}
	return resp.Body, nil
}
