// Package apachetest runs the real Apache RocketMQ (name server, broker and proxy, from the jars Apache publishes on
// Maven Central) for tests that are about interoperating with it. It wraps the script test/apache/rocketmq, which
// resolves the pinned jars into a cache once and starts the JVMs with small heaps on the ports it is given.
//
// A test calls Start and gets the addresses; the JVMs stop when the test ends (t.Cleanup closes the script's stdin),
// and on Linux also when the test process dies (the script gets SIGTERM from the kernel as its parent-death signal
// and stops them). Starting takes tens of seconds on two cores, so a package shares one cluster among its subtests.
//
// Where Java or Maven is missing the test is skipped with one line saying so, so `go test ./...` passes on a machine
// with only Go; with CI=true (as `.ci/run` sets) a missing JDK fails the test instead, so CI cannot skip silently.
package apachetest
