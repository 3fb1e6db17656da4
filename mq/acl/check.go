package acl

import (
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"net/netip"
	"sort"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Request codes the decision depends on (Apache's RequestCode; kept here so the package stays a leaf).
const (
	codeSendMessage            int16 = 10
	codePullMessage            int16 = 11
	codeQueryMessage           int16 = 12
	codeQueryConsumerOffset    int16 = 14
	codeUpdateConsumerOffset   int16 = 15
	codeUpdateAndCreateTopic   int16 = 17
	codeUpdateBrokerConfig     int16 = 25
	codeHeartBeat              int16 = 34
	codeUnregisterClient       int16 = 35
	codeConsumerSendMsgBack    int16 = 36
	codeGetConsumerListByGroup int16 = 38
	codeUpdateAndCreateGroup   int16 = 200
	codeDeleteSubscriptionGrp  int16 = 207
	codeDeleteTopicInBroker    int16 = 215
	codeSendMessageV2          int16 = 310
	codeSendBatchMessage       int16 = 320
	codeSendReplyMessage       int16 = 324
	codeSendReplyMessageV2     int16 = 325
)

// adminCodes need an admin account (Apache's Permission.ADMIN_CODE).
var adminCodes = map[int16]bool{
	codeUpdateAndCreateTopic:  true,
	codeUpdateBrokerConfig:    true,
	codeDeleteTopicInBroker:   true,
	codeUpdateAndCreateGroup:  true,
	codeDeleteSubscriptionGrp: true,
}

// NeedsAdmin reports whether a request code needs an admin account.
func NeedsAdmin(code int16) bool { return adminCodes[code] }

// Request is what the decision reads from a request.
type Request struct {
	Code int16
	// Remote is the peer's address (no port). The zero value matches only "*" patterns.
	Remote netip.Addr
	Ext    map[string]string
	Body   []byte
}

// Error is a denial. Msg is Apache's AclException message.
type Error struct {
	Msg string
	// Forbidden: the caller proved who it is but the account lacks the right (the gRPC port answers FORBIDDEN);
	// otherwise the credentials themselves were refused (UNAUTHORIZED). The remoting port answers both alike.
	Forbidden bool
}

func (e *Error) Error() string { return "acl: " + e.Msg }

// Remark is the response remark Apache's broker sends with code 1 (SYSTEM_ERROR): the exception's text. (Apache
// appends the first stack frame, ", org.apache...PlainPermissionManager.validate(...)"; tide has none to add.)
func (e *Error) Remark() string { return "org.apache.rocketmq.acl.common.AclException: " + e.Msg }

func deny(format string, args ...any) *Error { return &Error{Msg: fmt.Sprintf(format, args...)} }

func forbid(format string, args ...any) *Error {
	return &Error{Msg: fmt.Sprintf(format, args...), Forbidden: true}
}

// shown is a peer-supplied name as a denial shows it: as is when it is short and printable (Apache's text),
// quoted and cut otherwise, so a remark or log line cannot be split or flooded by a peer.
func shown(s string) string {
	const max = 256
	if len(s) <= max && strings.IndexFunc(s, func(r rune) bool { return !unicode.IsPrint(r) || r == utf8.RuneError }) < 0 {
		return s
	}
	if len(s) > max {
		s = s[:max]
	}
	return strconv.Quote(s)
}

// Check decides a request as Apache's PlainAccessValidator (parse, then validate) does. nil means allowed;
// otherwise the error is an *Error.
//
// Order: the resources the request touches are read first (a heartbeat body that does not parse is refused
// whoever sends it); a peer matching globalWhiteRemoteAddresses is allowed; then the access key must be present
// and known; a peer matching the account's whiteRemoteAddress is allowed without a signature (Apache's rule: the
// per-account whitelist is a bypass, not a restriction); then the signature must match; admin accounts may do
// anything; admin codes need admin; every touched resource must be allowed by its explicit permission or, when
// none is listed, by the account's default for its kind (a group is its "%RETRY%" topic).
func (p *Policy) Check(r Request) error {
	res, err := Resources(r.Code, r.Ext, r.Body)
	if err != nil {
		return err
	}
	ak, hasAK := r.Ext[FieldAccessKey]
	return p.decide(r.Remote, ak, hasAK, func(secret []byte) bool {
		want := requestSignature(r.Ext, r.Body, secret)
		return subtle.ConstantTimeCompare([]byte(want), []byte(r.Ext[FieldSignature])) == 1
	}, r.Code, res)
}

// decide is the decision after parsing, shared by the remoting (Check) and gRPC (CheckGRPC) ports: global
// whitelist, access key, account whitelist, signature (signed reports whether the request's signature is the one
// the account's secret key gives), admin, then each resource. Denials after the signature check are Forbidden.
func (p *Policy) decide(remote netip.Addr, ak string, hasAK bool, signed func(secret []byte) bool, code int16, res []ResourcePerm) error {
	for _, m := range p.global {
		if m.match(remote) {
			return nil
		}
	}
	if !hasAK {
		return deny("No accessKey is configured")
	}
	acc, ok := p.accounts[ak]
	if !ok {
		return deny("No acl config for %s", shown(ak))
	}
	if acc.white.match(remote) {
		return nil
	}
	if !signed(acc.secretKey) {
		return deny("Check signature failed for accessKey=%s", shown(ak))
	}
	if acc.admin {
		return nil
	}
	if adminCodes[code] {
		return forbid("Need admin permission for request code=%d, but accessKey=%s is not", code, shown(ak))
	}
	for _, rp := range res {
		owned, listed := acc.perms[rp.Resource]
		isGroup := strings.HasPrefix(rp.Resource, RetryTopicPrefix)
		if !listed {
			owned = acc.defaultTopic
			if isGroup {
				owned = acc.defaultGroup
			}
		}
		if !allowed(rp.Perm, owned) {
			if listed {
				return forbid("No permission for %s", describe(rp.Resource, isGroup))
			}
			return forbid("No default permission for %s", describe(rp.Resource, isGroup))
		}
	}
	return nil
}

// allowed is Apache's Permission.checkPermission.
func allowed(needed, owned Perm) bool {
	if owned&Deny != 0 {
		return false
	}
	if needed&Any != 0 {
		return owned&(Pub|Sub) != 0
	}
	return needed&owned != 0
}

func describe(resource string, isGroup bool) string {
	if isGroup {
		return "group:" + shown(strings.TrimPrefix(resource, RetryTopicPrefix))
	}
	return "topic:" + shown(resource)
}

// ResourcePerm is one resource a request touches and the permission it needs.
type ResourcePerm struct {
	Resource string // a topic, or "%RETRY%<group>" for a group
	Perm     Perm
}

// Resources lists what a request touches, in a stable order, following Apache's PlainAccessValidator.parse:
//
//	SEND_MESSAGE (10)                       topic: PUB (a %RETRY% topic: that group, SUB)
//	SEND_MESSAGE_V2 (310), SEND_BATCH (320) b: same
//	SEND_REPLY_MESSAGE (324) / _V2 (325)    topic / b: PUB
//	PULL_MESSAGE (11)                       topic: SUB; consumerGroup: SUB
//	QUERY_MESSAGE (12)                      topic: SUB
//	HEART_BEAT (34)                         each consumer group: SUB; each subscribed topic: SUB
//	UNREGISTER_CLIENT (35), GET_CONSUMER_LIST_BY_GROUP (38)   consumerGroup: SUB
//	QUERY/UPDATE_CONSUMER_OFFSET (14/15)    consumerGroup: SUB; topic: SUB
//	CONSUMER_SEND_MSG_BACK (36)             group: SUB
//
// Every other code touches no resource (a valid signature is enough, admin codes aside), as in Apache.
func Resources(code int16, ext map[string]string, body []byte) ([]ResourcePerm, error) {
	var out []ResourcePerm
	add := func(resource string, perm Perm) {
		if resource == "" || resource == RetryTopicPrefix {
			return
		}
		for i := range out {
			if out[i].Resource == resource {
				out[i].Perm = perm // Apache's map keeps the last
				return
			}
		}
		out = append(out, ResourcePerm{resource, perm})
	}
	send := func(topic string) {
		if strings.HasPrefix(topic, RetryTopicPrefix) {
			add(topic, Sub)
		} else {
			add(topic, Pub)
		}
	}
	group := func(name string) {
		if name != "" {
			add(RetryTopic(name), Sub)
		}
	}
	switch code {
	case codeSendMessage:
		send(ext["topic"])
	case codeSendMessageV2, codeSendBatchMessage:
		send(ext["b"])
	case codeSendReplyMessage:
		add(ext["topic"], Pub)
	case codeSendReplyMessageV2:
		add(ext["b"], Pub)
	case codePullMessage:
		add(ext["topic"], Sub)
		group(ext["consumerGroup"])
	case codeQueryMessage:
		add(ext["topic"], Sub)
	case codeHeartBeat:
		var hb struct {
			ConsumerDataSet []struct {
				GroupName           string `json:"groupName"`
				SubscriptionDataSet []struct {
					Topic string `json:"topic"`
				} `json:"subscriptionDataSet"`
			} `json:"consumerDataSet"`
		}
		if len(body) > 0 {
			if err := json.Unmarshal(body, &hb); err != nil {
				return nil, deny("heartbeat body: %s", shown(err.Error()))
			}
		}
		for _, c := range hb.ConsumerDataSet {
			group(c.GroupName)
			for _, s := range c.SubscriptionDataSet {
				add(s.Topic, Sub)
			}
		}
	case codeUnregisterClient, codeGetConsumerListByGroup:
		group(ext["consumerGroup"])
	case codeQueryConsumerOffset, codeUpdateConsumerOffset:
		group(ext["consumerGroup"])
		add(ext["topic"], Sub)
	case codeConsumerSendMsgBack:
		group(ext["group"])
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Resource < out[j].Resource })
	return out, nil
}
