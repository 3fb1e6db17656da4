package cli

import (
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/tide-run/tide/mq/admin"
)

// Environment variables holding `tide mq`'s RocketMQ ACL credentials (flags --access-key / --secret-key win).
const (
	MQAccessKeyEnv = "TIDE_MQ_ACCESS_KEY"
	MQSecretKeyEnv = "TIDE_MQ_SECRET_KEY"
)

// mqCredentialFlags adds --access-key and --secret-key to `tide mq`.
func mqCredentialFlags(cmd *cobra.Command, g *mqGlobals) {
	cmd.PersistentFlags().StringVar(&g.accessKey, "access-key", "", "RocketMQ ACL access key, for a broker with ACL (default $"+MQAccessKeyEnv+"); topic and group commands need an admin account")
	cmd.PersistentFlags().StringVar(&g.secretKey, "secret-key", "", "RocketMQ ACL secret key (default $"+MQSecretKeyEnv+"; prefer the variable: flags show in ps)")
}

// credentials resolves the ACL credentials: both keys or neither.
func (g *mqGlobals) credentials() (admin.Credentials, error) {
	ak, sk := g.accessKey, g.secretKey
	if ak == "" {
		ak = os.Getenv(MQAccessKeyEnv)
	}
	if sk == "" {
		sk = os.Getenv(MQSecretKeyEnv)
	}
	if (ak == "") != (sk == "") {
		return admin.Credentials{}, usageErr("RocketMQ ACL credentials: give both --access-key and --secret-key (or $%s and $%s), or neither", MQAccessKeyEnv, MQSecretKeyEnv)
	}
	return admin.Credentials{AccessKey: ak, SecretKey: sk}, nil
}

// signed adds the credentials to ctx for mq/admin (a bad combination was refused by dial before anything runs).
func (g *mqGlobals) signed(ctx context.Context) context.Context {
	creds, err := g.credentials()
	if err != nil {
		return ctx
	}
	return admin.WithCredentials(ctx, creds)
}

// aclHint adds what to do to an error that is a broker's ACL refusal.
func aclHint(err error) error {
	if err != nil && strings.Contains(err.Error(), "org.apache.rocketmq.acl.common.AclException") {
		return fmt.Errorf("%w (the broker has ACL: give an account's keys with --access-key/--secret-key or $%s/$%s; "+
			"creating and deleting topics and groups needs an admin account)", err, MQAccessKeyEnv, MQSecretKeyEnv)
	}
	return err
}
