package broker

import (
	"testing"

	"github.com/tide-run/tide/mq/remoting"
)

func TestCheckClientConfig(t *testing.T) {
	for _, tc := range []struct {
		name string
		body string
		want int16
	}{
		{"tag", `{"clientId":"c","group":"g","subscriptionData":{"topic":"t","subString":"A || B","expressionType":"TAG"}}`, remoting.Success},
		{"no subscription", `{"clientId":"c","group":"g"}`, remoting.Success},
		{"good sql", `{"clientId":"c","group":"g","subscriptionData":{"topic":"t","subString":"a > 5","expressionType":"SQL92"}}`, remoting.Success},
		{"bad sql", `{"clientId":"c","group":"g","subscriptionData":{"topic":"t","subString":"a >","expressionType":"SQL92"}}`, remoting.SubscriptionParseFailed},
		{"unknown type", `{"clientId":"c","group":"g","subscriptionData":{"topic":"t","subString":"x","expressionType":"XPATH"}}`, remoting.SubscriptionParseFailed},
		{"not json", `{`, remoting.SystemError},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := remoting.NewRequest(remoting.CheckClientConfig, nil, []byte(tc.body))
			if got := handleCheckClientConfig(req); got.Code != tc.want {
				t.Fatalf("code %d (%s), want %d", got.Code, got.Remark, tc.want)
			}
		})
	}
}
