package bench

import (
	"errors"
)

// nullPeer measures the official client alone: the client's producers against nullResponder, a name server and
// "broker" written for the benchmark (no tide code) that answers every send at once with a canned success, storing
// nothing. Its peak rate is the most any broker could reach with that client on this machine at that moment (the
// client's CPU and system calls plus the responder's minimal framing are the whole cost), which is what a ratio
// against JetStream has to be read against. It has no consumer, so it skips the consumer phase.
type nullPeer struct {
	*rocketPeer
	srv *nullResponder
}

// errNoConsumer: the null peer stores nothing, so there is nothing to consume.
var errNoConsumer = errors.New("bench: the null broker stores nothing to consume")

func newNullPeer(conns int) (*nullPeer, error) {
	srv, err := newNullResponder()
	if err != nil {
		return nil, err
	}
	// One address is both the name server and the broker: the route it returns points at itself.
	p := &nullPeer{srv: srv, rocketPeer: &rocketPeer{ns: srv.addr}}
	if err := p.startProducers(conns); err != nil {
		p.close()
		return nil, err
	}
	return p, nil
}

func (p *nullPeer) prepare(string) error { return nil }

func (p *nullPeer) subscribe(string, func([]byte)) (func(), error) { return nil, errNoConsumer }

func (p *nullPeer) close() {
	if p.rocketPeer != nil {
		p.rocketPeer.close() // producers only: rocketPeer.srv is nil
	}
	p.srv.close()
}
