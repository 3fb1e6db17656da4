package server

// ReadyCheck is one named readiness condition.
type ReadyCheck struct {
	Name  string
	Check func() error // nil: ready
}

// ReadyChecker is implemented by subsystems whose readiness has parts worth naming apart (the embedded RocketMQ:
// each listener accepting, the store writable). AddSubsystem adds each check to /readyz under its own name, next
// to the subsystem's Ready, so a failing /readyz says which part failed and why.
type ReadyChecker interface {
	ReadyChecks() []ReadyCheck
}

// LivezPath answers 200 while the process serves HTTP, whatever its readiness (the API mounts it): a failing
// subsystem (a full disk, a listener out of descriptors) makes /readyz fail so traffic goes elsewhere, but is no
// reason to restart tide.
const LivezPath = "/livez"

func (s *Server) addReadyChecks(sub Subsystem) {
	if rc, ok := sub.(ReadyChecker); ok {
		for _, c := range rc.ReadyChecks() {
			s.api.AddReadyCheck(c.Name, c.Check)
		}
	}
}
