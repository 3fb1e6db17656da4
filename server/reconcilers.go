package server

import (
	"github.com/tide-run/tide/controlplane/reconciler"
	servingrec "github.com/tide-run/tide/serving/reconciler"
)

// NotImplementedKinds returns the acted-on kinds whose subsystem is not wired into this build yet, with the message
// their Ready condition carries. The composition root replaces each with the real reconciler as the subsystem lands.
func NotImplementedKinds() map[string]string {
	return map[string]string{
		"Broker.eventing.knative.dev":                 "the eventing data plane (broker ingress, RocketMQ storage) is not part of this build yet",
		"Trigger.eventing.knative.dev":                "the eventing data plane (trigger dispatch) is not part of this build yet",
		"RocketMQSource.sources.knative.dev":          "the RocketMQSource adapter is not part of this build yet",
		"RocketMQSource.sources.eventing.knative.dev": "the RocketMQSource adapter is not part of this build yet",
		"KafkaSource.sources.knative.dev":             "the KafkaSource adapter is not part of this build yet",
	}
}

// registerDefaultReconcilers registers the serving reconcilers (Service -> Configuration + Route -> Revisions) and
// NotImplemented reconcilers for the kinds in NotImplementedKinds.
func (s *Server) registerDefaultReconcilers() {
	sw := reconciler.StatusWriter{Store: s.st, Clock: s.opts.Clock}
	servingrec.Register(s.recons, servingrec.Options{Store: s.st, Clock: s.opts.Clock, GatewayPort: s.opts.GatewayPort})
	for gk, msg := range NotImplementedKinds() {
		s.recons.Register(reconciler.Registration{GroupKind: gk,
			Reconciler: reconciler.NotImplemented{Store: s.st, Status: sw, GroupKind: gk, Message: msg}})
	}
}
