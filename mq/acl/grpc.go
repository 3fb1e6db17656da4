package acl

import (
	"crypto/hmac"
	"crypto/sha1"
	"encoding/hex"
	"net/netip"
	"sort"
	"strings"
)

// The RocketMQ 5 gRPC port's ACL 1.0, as Apache's proxy (5.1-5.3.0, enableACL with plain_acl.yml) checks it: the
// 5.x clients send their credentials as gRPC metadata on every call,
//
//	authorization:  MQv2-HMAC-SHA1 Credential=<accessKey>/<...>, SignedHeaders=x-mq-date-time, Signature=<hex>
//	x-mq-date-time: 20261207T214800Z
//
// and the signature is HMAC-SHA1(secretKey, the x-mq-date-time value), hex-encoded. The accounts, whitelists and
// permissions are the remoting port's (the same Policy); what a call touches is read from its request message by
// the gRPC endpoint (it knows the protocol; this package stays a leaf) and given as Resources.
//
// Apache signs only the date: the signature proves the caller knows the secret but does not cover the request,
// and Apache does not bound the date's age. Over plaintext a recorded header can be replayed; use TLS (the 5.x
// clients' default) where the network is not trusted.

// Metadata keys of the 5.x clients' credentials (Apache's GrpcConstants).
const (
	GRPCAuthorization = "authorization"
	GRPCDateTime      = "x-mq-date-time"
)

// GRPCRequest is what the decision reads from one gRPC request message.
type GRPCRequest struct {
	// Remote is the peer's address (no port).
	Remote netip.Addr
	// Authorization and DateTime are the metadata values; Authorization empty means absent.
	Authorization, DateTime string
	// Resources the message touches (see ResourcePerm; a group is "%RETRY%<group>"). Perm may be Any.
	Resources []ResourcePerm
	// Err, when set, is a request the endpoint could not read for a decision (Apache's parse errors, e.g. a send
	// whose messages name different topics): refused whoever sends it.
	Err string
}

// CheckGRPC decides a gRPC request as Apache's proxy does with plain ACL: the authorization header is parsed
// (a malformed one is refused whoever sends it), then the remoting port's decision (Check) runs with the date as
// the signed content. nil means allowed; otherwise the error is an *Error whose Forbidden says which of the
// proxy's codes to answer (FORBIDDEN, else UNAUTHORIZED).
func (p *Policy) CheckGRPC(r GRPCRequest) error {
	if r.Err != "" {
		return deny("%s", shown(r.Err))
	}
	var (
		ak    string
		sig   []byte
		hasAK bool
	)
	if r.Authorization != "" {
		var err error
		if ak, hasAK, sig, err = parseAuthorization(r.Authorization); err != nil {
			return err
		}
	}
	res := append([]ResourcePerm(nil), r.Resources...)
	sort.SliceStable(res, func(i, j int) bool { return res[i].Resource < res[j].Resource })
	// grpcCode: no gRPC call maps to an admin request code (Apache's RequestMapping), so admin rights never matter
	// beyond "admin accounts may do anything".
	const grpcCode = codeHeartBeat
	return p.decide(r.Remote, ak, hasAK, func(secret []byte) bool {
		m := hmac.New(sha1.New, secret)
		m.Write([]byte(r.DateTime))
		return hmac.Equal(m.Sum(nil), sig)
	}, grpcCode, res)
}

// parseAuthorization reads the authorization header as Apache's AuthorizationHeader does: "<method> " then
// comma-separated key=value items; Credential's first "/"-separated part is the access key; Signature is hex.
// The method and SignedHeaders are not checked (Apache does not either; the date is always what is signed).
func parseAuthorization(h string) (ak string, hasAK bool, sig []byte, err error) {
	_, rest, ok := strings.Cut(h, " ")
	if !ok {
		return "", false, nil, deny("authorization header is incorrect")
	}
	items := strings.Split(rest, ",")
	if len(items) > 1 {
		// Java's split drops trailing empty parts.
		for len(items) > 0 && items[len(items)-1] == "" {
			items = items[:len(items)-1]
		}
	}
	for _, item := range items {
		k, v, ok := strings.Cut(strings.TrimSpace(item), "=")
		if !ok {
			return "", false, nil, deny("authorization keyValues length is incorrect, actual length=1")
		}
		switch k {
		case "Credential":
			if v != "" && strings.Trim(v, "/") == "" {
				// Java's split drops trailing empty parts: "/" and "//" have none left.
				return "", false, nil, deny("authorization credential length is incorrect, actual length=0")
			}
			ak, _, _ = strings.Cut(v, "/")
			hasAK = true
		case "Signature":
			if sig, err = hex.DecodeString(v); err != nil {
				return "", false, nil, deny("authorization signature is not hex: %s", shown(err.Error()))
			}
		}
	}
	return ak, hasAK, sig, nil
}

// SignGRPC is the authorization header value a 5.x client sends with date (for tide's own gRPC callers and tests):
// HMAC-SHA1(secretKey, date), hex-encoded, in the Go client's layout.
func (c Credentials) SignGRPC(date string) string {
	m := hmac.New(sha1.New, []byte(c.SecretKey))
	m.Write([]byte(date))
	return "MQv2-HMAC-SHA1 Credential=" + c.AccessKey + "//Rocketmq, SignedHeaders=" + GRPCDateTime +
		", Signature=" + hex.EncodeToString(m.Sum(nil))
}
