package grpcproxy

import (
	"time"
)

// Invisible-time renewal of push consumers' deliveries, as Apache's proxy does (DefaultReceiptHandleManager): a
// 5.x push consumer receives with auto_renew and an invisible time of 60 s, and may take longer than that to
// process a message; while the consumer stays connected the endpoint pushes the message's invisible time out
// before it lapses, so it is not delivered again under the consumer's feet. Apache's rules:
//
//   - a delivery is renewed when it would become visible within renewAhead (10 s), by 1, 3, 5, 10, 30 then 60
//     minutes for its successive renewals (RenewStrategyPolicy);
//   - for at most renewMax (3 h) after it was handed out; then it is left to lapse and be delivered again (Apache
//     nacks it with the group's retry delay);
//   - the deliveries of a consumer that is gone (it said NotifyClientTermination, or its Telemetry stream ended
//     clientExpiry ago) become visible within invisibleWhenClear (1 s) instead of waiting out their invisible time;
//   - an ack ends it; a ChangeInvisibleDuration (a push consumer's nack with backoff) ends it too.
//
// Renewal keeps the receipt handle: the client acks with the handle it received (Apache's proxy maps it to the
// renewed one), so only the deadline moves. Renewals are not persisted: after a restart the clients reconnect and
// their deliveries lapse and come again, at least once, as before.

const (
	renewAhead         = 10 * time.Second
	renewMax           = 3 * time.Hour
	invisibleWhenClear = time.Second
)

// renewSteps is Apache's RenewStrategyPolicy: the invisible time each successive renewal gives.
var renewSteps = []time.Duration{time.Minute, 3 * time.Minute, 5 * time.Minute, 10 * time.Minute, 30 * time.Minute, time.Hour}

// renewal is a delivery's renewal state; the zero value is "not renewed".
type renewal struct {
	client string    // the push consumer holding it
	since  time.Time // handed out at
	times  int       // renewals so far
}

func newRenewal(client string, now time.Time) renewal {
	if client == "" {
		return renewal{}
	}
	return renewal{client: client, since: now}
}

// renew runs one renewal pass over every in-flight delivery (from the persist loop, every PersistInterval).
func (s *Server) renew() {
	live := s.liveClients()
	for topic := range s.pop.renewPass(s.b.Clock().Now(), func(id string) bool { return live[id] }) {
		s.notify.arrived(topic, 0) // waiting receives recompute: something becomes visible sooner
	}
}

// liveClients is the set of client ids the endpoint still knows: a client leaves when it says
// NotifyClientTermination or clientExpiry after its Telemetry stream ended (Apache: when its channel leaves the
// consumer manager, by unregistering or expiring). Taken before the POP table's lock, so the two locks are never
// held together.
func (s *Server) liveClients() map[string]bool {
	t := s.clients
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make(map[string]bool, len(t.clients))
	for id := range t.clients {
		out[id] = true
	}
	return out
}

// renewPass applies the rules above at now; live reports whether a client is still connected. It returns the
// topics of the queues whose deliveries of a departed client become visible sooner.
func (p *popState) renewPass(now time.Time, live func(client string) bool) map[string]bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	var woke map[string]bool
	for r, q := range p.qs {
		for _, f := range q.inflight {
			rn := &f.renew
			switch {
			case rn.client == "" || !f.deadline.After(now):
				continue
			case !live(rn.client):
				if f.deadline.After(now.Add(invisibleWhenClear)) {
					f.deadline = now.Add(invisibleWhenClear)
					p.dirty = true
				}
				*rn = renewal{}
				if woke == nil {
					woke = map[string]bool{}
				}
				woke[r.Topic] = true
			case f.deadline.Sub(now) > renewAhead:
			case now.Sub(rn.since) >= renewMax:
				*rn = renewal{} // left to lapse: delivered again
			default:
				f.deadline = now.Add(renewSteps[min(rn.times, len(renewSteps)-1)])
				rn.times++
				p.dirty = true
			}
		}
	}
	return woke
}
