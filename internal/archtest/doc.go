// Package archtest holds the test that enforces docs/ARCHITECTURE.md's import rules on the whole module: leaf
// libraries import no subsystem; each product (mq, eventing, serving) owns its runtime and reconcilers, which alone
// may import the control plane, while the control plane imports no product; serving never reaches the broker;
// eventing reaches RocketMQ only through its bus (the official client or tide's remoting client); and only the composition root (server) wires products
// together.
package archtest
