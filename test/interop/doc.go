// Package interop holds the interoperability matrix: the same client scenarios run against tide's embedded broker
// and against the real Apache RocketMQ (internal/apachetest) in one test, and their outcomes must match. Where tide
// differs from Apache on purpose, docs/mq.md's difference table says why. The package has tests only.
package interop
