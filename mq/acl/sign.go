package acl

import (
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"io"
	"sort"
)

// Ext-field names of ACL 1.0 (Apache's SessionCredentials).
const (
	FieldAccessKey     = "AccessKey"
	FieldSecretKey     = "SecretKey" // never sent; the name in credential files
	FieldSignature     = "Signature"
	FieldSecurityToken = "SecurityToken"
	// fieldUniqueKeyQuery is MixAll.UNIQUE_MSG_QUERY_FLAG: Apache's broker leaves it out of the signed content.
	fieldUniqueKeyQuery = "_UNIQUE_KEY_QUERY"
)

// Content is what a request's signature covers, as Apache's broker computes it: the values of every ext field
// except Signature (and _UNIQUE_KEY_QUERY), ordered by field name, concatenated, then the body. AccessKey and
// SecurityToken are ext fields like the others, so they are covered.
//
// Field names are compared bytewise; Java's TreeMap compares UTF-16 units, which orders the same for every name
// below U+10000 that is not between U+E000 and U+FFFF, i.e. every field name a client sends.
func Content(ext map[string]string, body []byte) []byte {
	keys := make([]string, 0, len(ext))
	n := len(body)
	for k, v := range ext {
		if k == FieldSignature || k == fieldUniqueKeyQuery {
			continue
		}
		keys = append(keys, k)
		n += len(v)
	}
	sort.Strings(keys)
	out := make([]byte, 0, n)
	for _, k := range keys {
		out = append(out, ext[k]...)
	}
	return append(out, body...)
}

// Signature is Base64(HMAC-SHA1(secretKey, content)) (Apache's AclSigner with HmacSHA1).
func Signature(content, secretKey []byte) string {
	m := hmac.New(sha1.New, secretKey)
	m.Write(content)
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// requestSignature is Signature(Content(ext, body), secretKey) without copying the body (up to 4 MiB per send).
func requestSignature(ext map[string]string, body, secretKey []byte) string {
	keys := make([]string, 0, len(ext))
	for k := range ext {
		if k != FieldSignature && k != fieldUniqueKeyQuery {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	m := hmac.New(sha1.New, secretKey)
	for _, k := range keys {
		io.WriteString(m, ext[k])
	}
	m.Write(body)
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// Credentials sign requests for tide's own clients (tide mq, mq/admin).
type Credentials struct {
	AccessKey, SecretKey, SecurityToken string
}

// Empty reports whether there is nothing to sign with.
func (c Credentials) Empty() bool { return c.AccessKey == "" || c.SecretKey == "" }

// Sign adds AccessKey, SecurityToken (when set) and Signature to ext, as Apache's Java client (AclClientRPCHook)
// does, and returns ext (allocated when nil). A Signature already present (a request signed before and sent again)
// is replaced.
func (c Credentials) Sign(ext map[string]string, body []byte) map[string]string {
	if ext == nil {
		ext = map[string]string{}
	}
	ext[FieldAccessKey] = c.AccessKey
	if c.SecurityToken != "" {
		ext[FieldSecurityToken] = c.SecurityToken
	}
	ext[FieldSignature] = requestSignature(ext, body, []byte(c.SecretKey))
	return ext
}
