// Package acl is RocketMQ's plain ACL (ACL 1.0, Apache RocketMQ 4.x/5.x "plain_acl.yml") for tide's embedded broker:
// the YAML account file, the request signature the official clients compute (HMAC-SHA1 over the sorted ext-field
// values and the body, Base64), and the decision Apache's PlainAccessValidator makes for a request (global IP
// whitelist, account lookup, per-account whitelist, signature, admin codes, topic and group permissions).
//
// It is a leaf: it knows request codes and ext-field names, not the broker. The broker port wraps its handler with
// Check (see mq/acl_hook.go); a Watcher reloads the file without a restart and keeps the last good policy when an
// edit does not parse.
//
// Denials are *Error values whose message is Apache's AclException text ("Check signature failed for
// accessKey=...", "No acl config for ...", "No permission for topic:...") so that clients and operators see what
// they would see from an Apache broker; Remark gives the response remark Apache sends (code 1, SYSTEM_ERROR).
package acl
