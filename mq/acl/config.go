package acl

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"sigs.k8s.io/yaml"
)

// Perm is a permission bit set, with Apache's values.
type Perm uint8

// Permission bits (Apache's Permission: DENY 1, ANY 2, PUB 4, SUB 8).
const (
	Deny Perm = 1
	Any  Perm = 2
	Pub  Perm = 4
	Sub  Perm = 8
)

// ErrConfig reports an ACL file that does not parse or is not valid; the message names the file and field.
var ErrConfig = errors.New("acl: invalid config")

// File is the plain_acl.yml document, with Apache's field names.
type File struct {
	GlobalWhiteRemoteAddresses []string  `json:"globalWhiteRemoteAddresses"`
	Accounts                   []Account `json:"accounts"`
	// DataVersion is written by Apache's admin tools; read and ignored.
	DataVersion json.RawMessage `json:"dataVersion,omitempty"`
}

// Account is one entry of accounts.
type Account struct {
	AccessKey          Scalar   `json:"accessKey"`
	SecretKey          Scalar   `json:"secretKey"`
	WhiteRemoteAddress string   `json:"whiteRemoteAddress"`
	Admin              bool     `json:"admin"`
	DefaultTopicPerm   string   `json:"defaultTopicPerm"`
	DefaultGroupPerm   string   `json:"defaultGroupPerm"`
	TopicPerms         []string `json:"topicPerms"`
	GroupPerms         []string `json:"groupPerms"`
}

// Scalar is a string that may be written unquoted in YAML as a number (Apache's sample file has
// "secretKey: 12345678"); the number's text is kept. Quote keys with leading zeros or exponents, which YAML reads
// as other numbers.
type Scalar string

// UnmarshalJSON accepts a JSON string, number or boolean.
func (s *Scalar) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	switch {
	case len(b) > 0 && b[0] == '"':
		var v string
		if err := json.Unmarshal(b, &v); err != nil {
			return err
		}
		*s = Scalar(v)
	case bytes.Equal(b, []byte("null")):
		*s = ""
	case len(b) > 0 && (b[0] == '-' || (b[0] >= '0' && b[0] <= '9') || b[0] == 't' || b[0] == 'f'):
		*s = Scalar(b)
	default:
		return fmt.Errorf("want a string, got %s", b)
	}
	return nil
}

// Policy is a parsed ACL file. Immutable: a reload builds a new one.
type Policy struct {
	global   []addrMatcher
	accounts map[string]*account
}

type account struct {
	accessKey    string
	secretKey    []byte
	white        addrMatcher
	admin        bool
	defaultTopic Perm
	defaultGroup Perm
	// perms maps a topic, or a group's retry topic "%RETRY%<group>", to its permission (Apache keys groups the
	// same way, so a resource name says which kind it is).
	perms map[string]Perm
}

// minKeyLen: Apache refuses access and secret keys of 6 characters or fewer.
const minKeyLen = 7

// Parse reads a plain_acl.yml document. name (the file's path) prefixes every error. Unknown fields, bad
// permissions, bad address patterns, short or duplicate keys are errors: nothing of a bad file is used.
func Parse(name string, data []byte) (*Policy, error) { return parseWith(name, data, nil) }

// parseWith is Parse plus accounts that are not in the file (tide's internal account).
func parseWith(name string, data []byte, extra []Account) (*Policy, error) {
	js, err := yaml.YAMLToJSON(data)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrConfig, name, err)
	}
	var f File
	if !bytes.Equal(bytes.TrimSpace(js), []byte("null")) {
		dec := json.NewDecoder(bytes.NewReader(js))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&f); err != nil {
			return nil, fmt.Errorf("%w: %s: %w", ErrConfig, name, err)
		}
	}
	for i, a := range f.Accounts {
		for _, e := range extra {
			if a.AccessKey == e.AccessKey {
				return nil, fmt.Errorf("%w: %s: accounts[%d].accessKey: %q is reserved for tide's internal account", ErrConfig, name, i, a.AccessKey)
			}
		}
	}
	f.Accounts = append(f.Accounts, extra...)
	p, err := Compile(f)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrConfig, name, err)
	}
	return p, nil
}

// Compile builds a Policy from a File (for callers that build the document in Go).
func Compile(f File) (*Policy, error) {
	p := &Policy{accounts: map[string]*account{}}
	for i, s := range f.GlobalWhiteRemoteAddresses {
		m, err := parseAddr(s)
		if err != nil {
			return nil, fmt.Errorf("globalWhiteRemoteAddresses[%d]: %w", i, err)
		}
		p.global = append(p.global, m)
	}
	if len(f.Accounts) == 0 && len(f.GlobalWhiteRemoteAddresses) == 0 {
		return nil, errors.New("no accounts and no globalWhiteRemoteAddresses: every request would be refused")
	}
	for i, a := range f.Accounts {
		at := func(field string) string { return fmt.Sprintf("accounts[%d].%s", i, field) }
		if len(a.AccessKey) < minKeyLen {
			return nil, fmt.Errorf("%s: want at least %d characters", at("accessKey"), minKeyLen)
		}
		if len(a.SecretKey) < minKeyLen {
			return nil, fmt.Errorf("%s: want at least %d characters", at("secretKey"), minKeyLen)
		}
		if _, dup := p.accounts[string(a.AccessKey)]; dup {
			return nil, fmt.Errorf("%s: %q appears twice", at("accessKey"), a.AccessKey)
		}
		acc := &account{accessKey: string(a.AccessKey), secretKey: []byte(a.SecretKey), admin: a.Admin, perms: map[string]Perm{}}
		var err error
		if acc.white, err = parseAddr(a.WhiteRemoteAddress); err != nil {
			return nil, fmt.Errorf("%s: %w", at("whiteRemoteAddress"), err)
		}
		if acc.defaultTopic, err = parsePerm(a.DefaultTopicPerm, true); err != nil {
			return nil, fmt.Errorf("%s: %w", at("defaultTopicPerm"), err)
		}
		if acc.defaultGroup, err = parsePerm(a.DefaultGroupPerm, true); err != nil {
			return nil, fmt.Errorf("%s: %w", at("defaultGroupPerm"), err)
		}
		for j, s := range a.TopicPerms {
			res, perm, err := parseResourcePerm(s)
			if err != nil {
				return nil, fmt.Errorf("%s[%d]: %w", at("topicPerms"), j, err)
			}
			acc.perms[res] = perm
		}
		for j, s := range a.GroupPerms {
			res, perm, err := parseResourcePerm(s)
			if err != nil {
				return nil, fmt.Errorf("%s[%d]: %w", at("groupPerms"), j, err)
			}
			acc.perms[RetryTopic(res)] = perm
		}
		p.accounts[string(a.AccessKey)] = acc
	}
	return p, nil
}

// parsePerm reads PUB, SUB, PUB|SUB, SUB|PUB or DENY. Apache reads anything else (and a missing default) as DENY;
// tide reads a missing default as DENY too but refuses a misspelt one, which would otherwise deny silently.
func parsePerm(s string, emptyIsDeny bool) (Perm, error) {
	switch strings.TrimSpace(s) {
	case "PUB":
		return Pub, nil
	case "SUB":
		return Sub, nil
	case "PUB|SUB", "SUB|PUB":
		return Pub | Sub, nil
	case "DENY":
		return Deny, nil
	case "":
		if emptyIsDeny {
			return Deny, nil
		}
	}
	return 0, fmt.Errorf("permission %q: want PUB, SUB, PUB|SUB or DENY", s)
}

// parseResourcePerm reads "name=PERM" (spaces around either side are trimmed, as Apache does).
func parseResourcePerm(s string) (string, Perm, error) {
	name, perm, ok := strings.Cut(s, "=")
	name = strings.TrimSpace(name)
	if !ok || name == "" || strings.Contains(perm, "=") {
		return "", 0, fmt.Errorf("%q: want RESOURCE=PERM, e.g. topicA=PUB|SUB", s)
	}
	p, err := parsePerm(perm, false)
	if err != nil {
		return "", 0, fmt.Errorf("%q: %w", s, err)
	}
	return name, p, nil
}

// RetryTopicPrefix starts a consumer group's retry topic; ACL keys group permissions by it.
const RetryTopicPrefix = "%RETRY%"

// RetryTopic is the group's retry topic name.
func RetryTopic(group string) string { return RetryTopicPrefix + group }

// Accounts reports how many accounts the policy has (for the start-up log line).
func (p *Policy) Accounts() int { return len(p.accounts) }

// Account returns the secret key of an access key, for tide's own clients (tests, the internal account).
func (p *Policy) secret(ak string) ([]byte, bool) {
	a, ok := p.accounts[ak]
	if !ok {
		return nil, false
	}
	return a.secretKey, true
}
