// Package pgtest runs a real PostgreSQL server for tests, from the machine's PostgreSQL installation (Debian's
// postgresql package: initdb and postgres on PATH or under /usr/lib/postgresql/<version>/bin). Each Start creates a
// throwaway cluster in a temporary directory, listening on 127.0.0.1 only, with trust authentication, and stops
// and removes it when the test ends; the kernel kills the server if the test process dies (Linux).
//
// PostgreSQL refuses to run as root; a test running as root runs the server as the "postgres" user (or "nobody")
// instead. Where PostgreSQL is not installed, Start skips the test with one line, except under CI=true, where
// it fails: .ci/run's machine has it.
package pgtest
