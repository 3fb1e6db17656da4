package kubecontroller

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	coordinationclient "k8s.io/client-go/kubernetes/typed/coordination/v1"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
)

// LeaderElection configures client-go's leader election over a coordination.k8s.io/v1 Lease, as
// kube-controller-manager and Knative's controllers use it: one replica reconciles, the others wait (not ready)
// and take over within RetryPeriod of a release, or LeaseDuration of a leader that died.
type LeaderElection struct {
	// Namespace and Name of the Lease (Name default ControllerName). Namespace is required: the controller's own
	// (deploy/knative/ grants the Lease in tide-system).
	Namespace, Name string
	// Identity of this replica in the Lease's holderIdentity (the pod name is a good one). Required.
	Identity string
	// LeaseDuration, RenewDeadline, RetryPeriod: Kubernetes' defaults 15 s, 10 s and 2 s when zero.
	LeaseDuration, RenewDeadline, RetryPeriod time.Duration
}

// errLostLease: another replica took the Lease; the process should exit (and be restarted) like
// kube-controller-manager does, since its caches and queue belong to a leadership that ended.
var errLostLease = errors.New("kubecontroller: lost the leader lease")

// runElected runs the controller while it holds the Lease. The workers stop before the Lease is released
// (ReleaseOnCancel), so two replicas never reconcile at once.
func (c *Controller) runElected(ctx context.Context, workers int) error {
	le := *c.opts.LeaderElection
	if le.Namespace == "" || le.Identity == "" {
		return errors.New("kubecontroller: leader election needs the Lease's namespace and this replica's identity")
	}
	if le.Name == "" {
		le.Name = ControllerName
	}
	if le.LeaseDuration <= 0 {
		le.LeaseDuration = 15 * time.Second
	}
	if le.RenewDeadline <= 0 {
		le.RenewDeadline = 10 * time.Second
	}
	if le.RetryPeriod <= 0 {
		le.RetryPeriod = 2 * time.Second
	}
	coord, err := coordinationclient.NewForConfig(c.opts.Config)
	if err != nil {
		return fmt.Errorf("kubecontroller: coordination/v1 client: %w", err)
	}
	// The election has its own context: cancelling it releases the Lease, which must wait for the workers.
	leCtx, cancelLE := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelLE()
	var leading, lost atomic.Bool
	runDone := make(chan error, 1)
	elector, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
		Lock: &resourcelock.LeaseLock{
			LeaseMeta:  metav1.ObjectMeta{Namespace: le.Namespace, Name: le.Name},
			Client:     coord,
			LockConfig: resourcelock.ResourceLockConfig{Identity: le.Identity},
		},
		LeaseDuration: le.LeaseDuration, RenewDeadline: le.RenewDeadline, RetryPeriod: le.RetryPeriod,
		ReleaseOnCancel: true,
		Name:            ControllerName,
		Callbacks: leaderelection.LeaderCallbacks{
			OnStartedLeading: func(lctx context.Context) {
				leading.Store(true)
				c.log.Info("leading", "lease", le.Namespace+"/"+le.Name, "identity", le.Identity)
				runCtx, stop := context.WithCancel(ctx)
				defer stop()
				go func() { // a lost lease stops the workers too
					select {
					case <-lctx.Done():
						lost.Store(ctx.Err() == nil)
						stop()
					case <-runCtx.Done():
					}
				}()
				runDone <- c.run(runCtx, workers)
				cancelLE() // the workers are done: the Lease may go
			},
			OnStoppedLeading: func() {},
			OnNewLeader: func(id string) {
				if id != le.Identity {
					c.log.Info("waiting: another replica leads", "leader", id)
				}
			},
		},
	})
	if err != nil {
		return fmt.Errorf("kubecontroller: leader election: %w", err)
	}
	go func() {
		<-ctx.Done()
		if !leading.Load() {
			cancelLE() // never led: stop trying (a leader's workers cancel it themselves)
		}
	}()
	elector.Run(leCtx)
	if !leading.Load() {
		return nil
	}
	runErr := <-runDone
	switch {
	case ctx.Err() != nil:
		return nil // shut down; whatever the workers said was about stopping
	case lost.Load():
		return errors.Join(runErr, errLostLease)
	}
	return runErr
}
