// Package kafkatest runs the real Apache Kafka (a KRaft broker+controller from the jars Apache publishes on Maven
// Central) for tests of tide's KafkaSource. It wraps the script test/apache/kafka, which resolves the pinned jars
// into a cache once and starts one JVM with a small heap on the ports it is given.
//
// A test calls Start and gets the bootstrap address; the JVM stops when the test ends (t.Cleanup closes the
// script's stdin), and on Linux also when the test process dies (the kernel sends the script SIGTERM as its
// parent-death signal). Where Java or Maven is missing the test is skipped with one line saying so; with CI=true
// (as `.ci/run` sets) it fails instead, so CI cannot skip silently. Tests only: nothing in tide links it.
package kafkatest
