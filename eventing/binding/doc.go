// Package binding maps CloudEvents to RocketMQ messages and back, following the
// RocketMQ transport binding for CloudEvents (apache/rocketmq-externals
// rocketmq-cloudevents-binding, implemented for Java in cloudevents/sdk-java):
//
//   - Binary content mode: the message body is the event data; every context
//     attribute and extension is a user property named "CE_" + attribute name,
//     except datacontenttype, which travels as "CE_contenttype".
//   - Structured content mode: the body is the whole event in the JSON event
//     format and CE_contenttype starts with "application/cloudevents".
//
// Encode writes binary mode, which lets a consumer read attributes without
// parsing the body. It falls back to structured mode when an attribute value
// contains the bytes RocketMQ uses to separate properties (0x01, 0x02), which
// binary mode cannot carry. Decode reads both modes and is what detects that a
// RocketMQ message already is a CloudEvent (pass-through in sources).
package binding
