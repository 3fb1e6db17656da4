package server

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"

	"github.com/tide-run/tide/mq"
	"github.com/tide-run/tide/mq/acl"
	"github.com/tide-run/tide/mq/admin"
)

// internalAccessKeyPrefix starts the internal account's access key, so refusals naming it are recognisable.
const internalAccessKeyPrefix = "tide-internal-"

// setupMQACL turns on ACL for the embedded broker when Options.ACLFile is set, and gives tide's own clients (the
// eventing bus and trigger consumers, group and topic deletion, the orphan sweep, the dashboard's counters) an
// internal admin account: generated at every start from crypto/rand, added to the broker's policy in memory only
// (never written to disk or logged), so it cannot leak through the data dir and dies with the process. Users'
// clients, including RocketMQSources, sign with accounts from the file.
func (s *Server) setupMQACL(o *mq.Options) error {
	o.InsecureNoAuth = s.opts.InsecureNoAuth
	if s.opts.ACLFile == "" {
		return nil
	}
	var id, secret [16]byte
	if _, err := rand.Read(id[:]); err != nil {
		return fmt.Errorf("rocketmq acl: internal account: %w", err)
	}
	if _, err := rand.Read(secret[:]); err != nil {
		return fmt.Errorf("rocketmq acl: internal account: %w", err)
	}
	creds := admin.Credentials{AccessKey: internalAccessKeyPrefix + hex.EncodeToString(id[:6]), SecretKey: hex.EncodeToString(secret[:])}
	o.ACLFile = s.opts.ACLFile
	o.ACLAccounts = []acl.Account{{AccessKey: acl.Scalar(creds.AccessKey), SecretKey: acl.Scalar(creds.SecretKey), Admin: true}}
	s.mqCreds = creds
	return nil
}
