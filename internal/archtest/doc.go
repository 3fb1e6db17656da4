// Package archtest holds the test that enforces docs/ARCHITECTURE.md's import rules on the whole module: leaf
// libraries import no subsystem, serving never reaches the broker, eventing reaches RocketMQ only through the official
// client, and only the composition root wires subsystems together.
package archtest
