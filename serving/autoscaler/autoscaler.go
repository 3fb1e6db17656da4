package autoscaler

import (
	"time"

	"github.com/tide-run/tide/serving/autoscaler/config"
)

// Phase is the revision's activity, Knative's PodAutoscaler "Active" condition.
type Phase string

const (
	// PhaseActivating: instances are wanted but fewer than the threshold are ready (Active=Unknown).
	PhaseActivating Phase = "Activating"
	// PhaseActive: enough instances are ready (Active=True).
	PhaseActive Phase = "Active"
	// PhaseInactive: the revision is idle; the activator is in the path and the last instance goes away
	// after the grace period and pod retention (Active=False).
	PhaseInactive Phase = "Inactive"
)

// Observation is the metric input of one decision.
type Observation struct {
	// Stable and Panic are the window averages of the revision's metric (total over its instances).
	Stable, Panic float64
	// Valid is false when there is no data (metrics.ErrNoData); the previous recommendation then stands.
	Valid bool
}

// Decision is what the data plane acts on for one revision, plus what `tide get rev -o wide` shows.
type Decision struct {
	// DesiredScale is the number of instances to run now: the recommendation after min/max/initial bounds
	// and the scale-to-zero rules. It only changes when Knative would apply a scale.
	DesiredScale int32
	// ActivatorInPath: requests must go through the activator (held while no capacity) rather than straight
	// to instances. True at zero, while excess burst capacity is negative, always with TBC -1.
	ActivatorInPath bool
	// ExcessBurstCapacity is the decider's last value (see ScaleResult).
	ExcessBurstCapacity int32
	// ScaleValid reports whether this decision had metrics; when false the previous recommendation stood.
	ScaleValid bool
	// Recommendation is the decider's last recommendation (-1 before the first metrics).
	Recommendation int32
	// Want is Knative's "want" (-1 = unknown yet): the scale the revision is heading to; it is 0 while the
	// last instance is kept through the grace period even though DesiredScale is still 1.
	Want int32
	// Panicking reports panic mode.
	Panicking bool
	// Phase and PhaseSince describe activity.
	Phase      Phase
	PhaseSince time.Time
	// Ready is the ready instance count the decision was made with.
	Ready int
	// Stable, Panic and Target are the observed window averages and the per-instance target.
	Stable, Panic, Target float64
	// Time is the decision time.
	Time time.Time
}

// Autoscaler is one revision's Decider plus Knative's PodAutoscaler rules. Not safe for concurrent use.
//
// State: recommended/ebc are the decider's last valid output (-1 / initial EBC before any data); applied is
// the last scale actually applied (starts at the initial scale, as Knative creates the Deployment with
// initial-scale replicas); phase/phaseSince is the Active condition and its last transition;
// initialized is Knative's ScaleTargetInitialized (the initial scale was reached once).
type Autoscaler struct {
	s           config.Settings
	decider     *Decider
	recommended int32
	ebc         int32
	applied     int32
	phase       Phase
	phaseSince  time.Time
	initialized bool
	last        Decision
}

// NewAutoscaler creates the autoscaler of a revision that has `ready` instances at now (0 for a new
// revision). The initial DesiredScale is the initial scale, and the initial excess burst capacity assumes
// that many instances, as Knative's multiscaler does.
func NewAutoscaler(s config.Settings, now time.Time, ready int) *Autoscaler {
	a := &Autoscaler{
		s:           s,
		decider:     NewDecider(s, ready, now),
		recommended: -1,
		phase:       PhaseActivating,
		phaseSince:  now,
	}
	// Knative creates the Deployment with initial-scale replicas and its first reconcile clamps that to
	// [min-scale, max-scale]; start from the clamped value directly.
	a.applied = s.InitialScale
	if s.Reachable && a.applied < s.MinScale {
		a.applied = s.MinScale
	}
	if s.MaxScale != 0 && a.applied > s.MaxScale {
		a.applied = s.MaxScale
	}
	switch tbc := s.TargetBurstCapacity; tbc {
	case -1, 0:
		a.ebc = int32(tbc)
	default:
		// If TBC exceeds what the initial instances can take, the activator starts in the path.
		a.ebc = int32(float64(s.InitialScale)*s.TotalValue - tbc)
	}
	if ready > 0 {
		// An autoscaler (re)created over running instances keeps them: treat the revision as active.
		a.applied = max(a.applied, int32(ready))
		a.phase = PhaseActive
	}
	a.last = Decision{
		DesiredScale:        a.applied,
		ActivatorInPath:     !(a.applied > 0 && a.ebc >= 0),
		ExcessBurstCapacity: a.ebc,
		Recommendation:      -1,
		Want:                -1,
		Phase:               a.phase,
		PhaseSince:          now,
		Ready:               ready,
		Target:              s.TargetValue,
		Time:                now,
	}
	return a
}

// Settings returns the current settings.
func (a *Autoscaler) Settings() config.Settings { return a.s }

// Update replaces the settings (an annotation or cluster config change).
func (a *Autoscaler) Update(s config.Settings) {
	a.s = s
	a.decider.Update(s)
}

// Last returns the latest decision (the initial one before Decide ran).
func (a *Autoscaler) Last() Decision { return a.last }

// Decide runs one decision at now with the ready instance count and the observed metrics.
func (a *Autoscaler) Decide(now time.Time, ready int, obs Observation) Decision {
	if obs.Valid {
		r := a.decider.Scale(now, ready, obs.Stable, obs.Panic)
		a.recommended, a.ebc = r.DesiredScale, r.ExcessBurstCapacity
	}
	want, apply := a.bound(now, a.recommended)
	if apply {
		a.applied = want
	}
	a.updatePhase(now, want, ready)
	d := Decision{
		DesiredScale:        a.applied,
		ActivatorInPath:     !(want > 0 && a.ebc >= 0),
		ExcessBurstCapacity: a.ebc,
		ScaleValid:          obs.Valid,
		Recommendation:      a.recommended,
		Want:                want,
		Panicking:           a.decider.Panicking(),
		Phase:               a.phase,
		PhaseSince:          a.phaseSince,
		Ready:               ready,
		Stable:              obs.Stable,
		Panic:               obs.Panic,
		Target:              a.s.TargetValue,
		Time:                now,
	}
	if a.applied == 0 {
		d.ActivatorInPath = true // nothing else can take a request
	}
	a.last = d
	return d
}

// bound applies min/max/initial scale and the scale-to-zero rules to a recommendation. It returns Knative's
// "want" and whether to apply it now.
func (a *Autoscaler) bound(now time.Time, desired int32) (int32, bool) {
	s := a.s
	if desired < 0 && a.phase != PhaseActivating {
		return -1, false // no metrics yet: leave the scale alone
	}
	lo, hi := s.MinScale, s.MaxScale
	if !s.Reachable {
		lo = 0
	}
	// Until the initial scale has been reached once, it acts as a minimum (unless the revision is not
	// routable, which lets it go away at once).
	if s.InitialScale > 1 && !a.initialized && s.Reachable {
		lo = max(lo, s.InitialScale)
	}
	if desired < lo {
		desired = lo
	}
	if hi != 0 && desired > hi {
		desired = hi
	}
	if desired != 0 {
		return desired, true
	}
	return a.scaleToZero(now)
}

// scaleToZero decides what a recommendation of zero means now (Knative's handleScaleToZero). tide's
// activator is in-process, so it is in the path the moment the revision turns inactive: the grace period
// counts from then.
func (a *Autoscaler) scaleToZero(now time.Time) (int32, bool) {
	s := a.s
	if !s.EnableScaleToZero {
		return 1, true
	}
	since := now.Sub(a.phaseSince)
	switch a.phase {
	case PhaseActivating:
		// Wanted but never became ready: give up after the activation timeout.
		if since > s.ActivationTimeoutOrDefault() {
			return 0, true
		}
		return -1, false
	case PhaseActive:
		// Keep one instance until the revision has been active for a whole stable window; then turn
		// inactive (want 0, not applied yet) so the activator enters the path.
		if since >= s.StableWindow {
			return 0, false
		}
		return 1, true
	default:
		retention := s.ScaleToZeroPodRetention
		if !s.Reachable {
			retention = 0
		}
		if since >= max(s.ScaleToZeroGracePeriod, retention) {
			return 0, true
		}
		return 0, false
	}
}

// updatePhase is Knative's computeActiveCondition.
func (a *Autoscaler) updatePhase(now time.Time, want int32, ready int) {
	lo := a.s.MinScale
	if !a.s.Reachable {
		lo = 0
	}
	threshold := max(lo, 1)
	if !a.initialized {
		threshold = max(lo, a.s.InitialScale)
	}
	if int32(ready) >= threshold {
		a.initialized = true
	}
	next := a.phase
	switch {
	case want == 0 || threshold == 0:
		next = PhaseInactive
	case int32(ready) < threshold:
		if want > 0 || a.phase != PhaseInactive {
			next = PhaseActivating
		}
	default:
		if want > 0 || a.phase != PhaseInactive {
			next = PhaseActive
		}
	}
	if next != a.phase {
		a.phase, a.phaseSince = next, now
	}
}
