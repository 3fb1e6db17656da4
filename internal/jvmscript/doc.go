// Package jvmscript runs the scripts under test/apache/ (rocketmq, kafka) that start Apache's servers from their
// Maven Central jars on the machine's JVM, for tests and benchmarks (internal/apachetest, internal/kafkatest).
//
// The protocol every such script follows: `SCRIPT run DIR` starts the server with its state under DIR, settings in
// the environment (ports, READY_TIMEOUT in seconds), prints one line "ready key=value ..." on stdout once it
// serves, and stops what it started when its stdin closes (or it gets SIGTERM); its stderr is the server's story
// for a failing test's log. On Linux the kernel sends the script SIGTERM if the test process dies and the script
// runs in its own process group, so a kill reaches the JVMs too.
package jvmscript
