package broker

import (
	"encoding/json"
	"strings"

	"github.com/tide-run/tide/mq/internal/sql92"
	"github.com/tide-run/tide/mq/remoting"
)

// checkClientBody is CHECK_CLIENT_CONFIG's request body (Java: CheckClientRequestBody), sent by the Java client's
// push consumer at start for each subscription that is not a TAG expression, so a bad SQL92 selector fails the
// consumer's start instead of every pull.
type checkClientBody struct {
	ClientID         string `json:"clientId"`
	Group            string `json:"group"`
	SubscriptionData *struct {
		Topic          string `json:"topic"`
		SubString      string `json:"subString"`
		ExpressionType string `json:"expressionType"`
	} `json:"subscriptionData"`
}

// handleCheckClientConfig answers CHECK_CLIENT_CONFIG as Apache's broker does with enablePropertyFilter=true
// (tide always filters by SQL92): TAG subscriptions and unknown bodies' absent subscriptions pass, a SQL92 selector
// must compile (SUBSCRIPTION_PARSE_FAILED otherwise), and other expression types are refused.
func handleCheckClientConfig(req *remoting.Command) *remoting.Command {
	var body checkClientBody
	if err := json.Unmarshal(req.Body, &body); err != nil {
		return remoting.Errorf(req, remoting.SystemError, "CHECK_CLIENT_CONFIG: bad body: %v", err)
	}
	sub := body.SubscriptionData
	if sub == nil || sub.ExpressionType == "" || strings.EqualFold(sub.ExpressionType, "TAG") {
		return remoting.NewResponse(req, remoting.Success, "")
	}
	if !strings.EqualFold(sub.ExpressionType, "SQL92") {
		return remoting.Errorf(req, remoting.SubscriptionParseFailed,
			"parse the consumer's subscription[%s] failed: expression type %s is not supported", sub.SubString, sub.ExpressionType)
	}
	if _, err := sql92.Compile(sub.SubString); err != nil {
		return badSQL(req, sub.SubString, err)
	}
	return remoting.NewResponse(req, remoting.Success, "")
}
