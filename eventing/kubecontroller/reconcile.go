package kubecontroller

import (
	"context"
	"errors"
	"fmt"
	"net/url"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"knative.dev/pkg/kmeta"

	"github.com/tide-run/tide/apis/sources/v1alpha1"
	"github.com/tide-run/tide/eventing/rocketmqsource"
)

// AdapterHTTPPort is where the adapter container serves /healthz (the readiness probe) and /metrics.
const AdapterHTTPPort = 8080

// LabelSourceUID is the source's UID, in the Deployment's (immutable) selector: two sources of the same name in the
// two groups never select each other's Pods.
const LabelSourceUID = "sources.knative.dev/source-uid"

func metaAccessor(o any) (metav1.Object, error) { return meta.Accessor(o) }

// reconcile brings one source's adapter Deployment and status in line with its spec.
func (c *Controller) reconcile(ctx context.Context, k key) error {
	gvr, legacy := GVR, false
	if k.Group == v1alpha1.LegacyGroupName {
		gvr, legacy = LegacyGVR, true
	}
	lister := c.sources[gvr]
	if lister == nil {
		return nil
	}
	o, err := lister.ByNamespace(k.Namespace).Get(k.Name)
	if apierrors.IsNotFound(err) {
		// Deleted: the garbage collector removes the Deployment (owner reference); only the sink watch is ours.
		c.tracker.forget(k)
		return nil
	}
	if err != nil {
		return err
	}
	u, ok := o.(*unstructured.Unstructured)
	if !ok {
		return fmt.Errorf("unexpected %T in the %s cache", o, gvr.Resource)
	}
	if u.GetDeletionTimestamp() != nil {
		return nil
	}
	src, err := decode(u, legacy)
	if err != nil {
		// The API server validated the object against the CRD's schema, so this is a schema/type skew.
		return fmt.Errorf("decoding %s: %w", k, err)
	}
	before := &v1alpha1.RocketMQSourceStatus{}
	src.Status.DeepCopyInto(before)
	src.SetDefaults(v1alpha1.WithDefaultNameServers(ctx, c.opts.DefaultNameServers))
	st := &src.Status
	st.Observe(src)
	write := func(result error) error {
		if err := c.writeStatus(ctx, gvr, u, before, st); err != nil {
			return err
		}
		return result
	}
	// No admission webhook on a cluster: the spec is validated here, with the same rules as inside tide.
	// Like tide's reconciler, no consumption without a valid spec and somewhere to deliver: an adapter Deployment
	// of an earlier spec is removed (its pod stops gracefully; the consumer group's offsets stay in RocketMQ).
	if fe := src.Validate(ctx); fe != nil {
		st.MarkNotDeployed(v1alpha1.ReasonInvalidSpec, fe.Error())
		c.warnOnChange(u, before, v1alpha1.ReasonInvalidSpec, fe.Error())
		return write(c.removeDeployment(ctx, u, legacy)) // a change to the spec triggers the next reconcile
	}
	sink, caCerts, err := c.resolve(ctx, k, src.Namespace, src.Spec.Sink)
	if err != nil {
		st.MarkNoSink(v1alpha1.ReasonSinkNotFound, err.Error())
		st.MarkNotDeployed(v1alpha1.ReasonSinkNotFound, "waiting for the sink")
		c.warnOnChange(u, before, v1alpha1.ReasonSinkNotFound, "spec.sink: "+err.Error())
		return write(errors.Join(errRequeue, c.removeDeployment(ctx, u, legacy)))
	}
	st.MarkSink(sink)
	var deadLetter *url.URL
	if d := src.Spec.Delivery; d != nil && d.DeadLetterSink != nil {
		dl, _, err := c.resolve(ctx, k, src.Namespace, *d.DeadLetterSink)
		if err != nil {
			st.MarkNotDeployed(v1alpha1.ReasonSinkNotFound, "spec.delivery.deadLetterSink: "+err.Error())
			c.warnOnChange(u, before, v1alpha1.ReasonSinkNotFound, "spec.delivery.deadLetterSink: "+err.Error())
			return write(errors.Join(errRequeue, c.removeDeployment(ctx, u, legacy)))
		}
		deadLetter = dl.URL()
	}
	env, err := rocketmqsource.EnvFromSource(src, sink.URL(), deadLetter, caCerts)
	if err != nil {
		st.MarkNotDeployed(v1alpha1.ReasonConsumerFailed, err.Error())
		return write(nil)
	}
	want := c.desiredDeployment(u, src, env, legacy)
	d, err := c.applyDeployment(ctx, u, want)
	if errors.Is(err, errConflict) {
		st.MarkNotDeployed(v1alpha1.ReasonDeploymentConflict, err.Error())
		c.warnOnChange(u, before, v1alpha1.ReasonDeploymentConflict, err.Error())
		return write(nil)
	}
	if err != nil {
		st.MarkNotDeployed(v1alpha1.ReasonConsumerFailed, "applying the adapter Deployment: "+err.Error())
		return write(err)
	}
	st.PropagateDeploymentAvailability(d)
	return write(nil)
}

// decode reads either form into the current one, with the status as stored (so conditions keep their
// lastTransitionTime when nothing changes).
func decode(u *unstructured.Unstructured, legacy bool) (*v1alpha1.RocketMQSource, error) {
	var src *v1alpha1.RocketMQSource
	if legacy {
		var l v1alpha1.LegacyRocketMQSource
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &l); err != nil {
			return nil, err
		}
		src = l.Convert()
	} else {
		src = &v1alpha1.RocketMQSource{}
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, src); err != nil {
			return nil, err
		}
		src.Status = v1alpha1.RocketMQSourceStatus{}
	}
	if s, ok := u.Object["status"].(map[string]any); ok {
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(s, &src.Status); err != nil {
			return nil, err
		}
	}
	return src, nil
}

// writeStatus updates the status subresource when it changed.
func (c *Controller) writeStatus(ctx context.Context, gvr schema.GroupVersionResource, u *unstructured.Unstructured, before, after *v1alpha1.RocketMQSourceStatus) error {
	if equality.Semantic.DeepEqual(before, after) {
		return nil
	}
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(after)
	if err != nil {
		return err
	}
	out := u.DeepCopy()
	out.Object["status"] = m
	if _, err := c.dyn.Resource(gvr).Namespace(u.GetNamespace()).UpdateStatus(ctx, out, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("updating the status of %s %s/%s: %w", gvr.Resource, u.GetNamespace(), u.GetName(), err)
	}
	return nil
}

// DeploymentName is the adapter Deployment's name for a source (the 2020 group gets its own suffix, so a source of
// each group with the same name do not fight over one Deployment).
func DeploymentName(sourceName string, legacy bool) string {
	if legacy {
		return kmeta.ChildName(sourceName, "-rocketmqsource-2020")
	}
	return kmeta.ChildName(sourceName, "-rocketmqsource")
}

func (c *Controller) desiredDeployment(u *unstructured.Unstructured, src *v1alpha1.RocketMQSource, env []corev1.EnvVar, legacy bool) *appsv1.Deployment {
	selector := map[string]string{LabelController: ControllerName, LabelSourceUID: string(u.GetUID())}
	labels := map[string]string{
		LabelController:                ControllerName,
		LabelSourceUID:                 string(u.GetUID()),
		LabelSourceName:                src.Name,
		LabelSource:                    "rocketmq-source-controller",
		"app.kubernetes.io/name":       "tide-rocketmq-adapter",
		"app.kubernetes.io/managed-by": ControllerName,
	}
	env = append(env,
		corev1.EnvVar{Name: "ROCKETMQ_ADAPTER_HTTP_ADDR", Value: fmt.Sprintf(":%d", AdapterHTTPPort)},
		// The tide binary lets the heap grow to a floor before collecting; an adapter pod is small.
		corev1.EnvVar{Name: "TIDE_GC_FLOOR", Value: "32MiB"},
	)
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{
			Name:            DeploymentName(src.Name, legacy),
			Namespace:       src.Namespace,
			Labels:          labels,
			OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(u, u.GroupVersionKind())},
		},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](1), // one consumer per group member; RocketMQ balances queues across replicas
			Selector: &metav1.LabelSelector{MatchLabels: selector},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					ServiceAccountName: src.Annotations[v1alpha1.AnnotationServiceAccountName],
					Containers: []corev1.Container{{
						Name:  "adapter",
						Image: c.opts.AdapterImage,
						Args:  []string{"adapter", "rocketmq"},
						Env:   env,
						Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: AdapterHTTPPort, Protocol: corev1.ProtocolTCP}},
						// Ready while consuming; no liveness probe: a missing topic or an unreachable name server
						// is retried in place, and a restart would not fix it.
						// The probe's numbers are the API server's defaults, spelled out: applyDeployment compares
						// with DeepDerivative, which skips unset strings and pointers but not zero integers.
						ReadinessProbe: &corev1.Probe{
							ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{
								Path: "/healthz", Port: intstr.FromInt32(AdapterHTTPPort), Scheme: corev1.URISchemeHTTP}},
							TimeoutSeconds: 1, PeriodSeconds: 10, SuccessThreshold: 1, FailureThreshold: 3,
						},
						Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{
							corev1.ResourceCPU: resource.MustParse("100m"), corev1.ResourceMemory: resource.MustParse("64Mi")}},
						SecurityContext: &corev1.SecurityContext{
							RunAsNonRoot:             ptr.To(true),
							AllowPrivilegeEscalation: ptr.To(false),
							ReadOnlyRootFilesystem:   ptr.To(true),
							Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
							SeccompProfile:           &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
						},
					}},
				},
			},
		},
	}
}

var errConflict = errors.New("deployment conflict")

// removeDeployment deletes the source's adapter Deployment, if there is one and the source controls it.
func (c *Controller) removeDeployment(ctx context.Context, owner *unstructured.Unstructured, legacy bool) error {
	name := DeploymentName(owner.GetName(), legacy)
	cur, err := c.deployments.Deployments(owner.GetNamespace()).Get(name)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if !metav1.IsControlledBy(cur, owner) {
		return nil
	}
	err = c.apps.Deployments(cur.Namespace).Delete(ctx, cur.Name, metav1.DeleteOptions{
		Preconditions: &metav1.Preconditions{UID: &cur.UID}})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("deleting the adapter Deployment %s/%s: %w", cur.Namespace, cur.Name, err)
	}
	c.log.Info("deleted the adapter Deployment: no valid spec or no sink", "namespace", cur.Namespace, "name", cur.Name)
	c.recorder.Eventf(owner, corev1.EventTypeNormal, ReasonDeploymentDeleted, "Deleted Deployment %q: no valid spec or no sink", cur.Name)
	return nil
}

// applyDeployment creates the Deployment or updates what differs from want (fields the API server defaulted are
// left alone: DeepDerivative compares only what want sets).
func (c *Controller) applyDeployment(ctx context.Context, owner *unstructured.Unstructured, want *appsv1.Deployment) (*appsv1.Deployment, error) {
	cur, err := c.deployments.Deployments(want.Namespace).Get(want.Name)
	if apierrors.IsNotFound(err) {
		d, err := c.apps.Deployments(want.Namespace).Create(ctx, want, metav1.CreateOptions{})
		if err != nil {
			return nil, err
		}
		c.log.Info("created the adapter Deployment", "namespace", d.Namespace, "name", d.Name)
		c.recorder.Eventf(owner, corev1.EventTypeNormal, ReasonDeploymentCreated, "Created Deployment %q", d.Name)
		return d, nil
	}
	if err != nil {
		return nil, err
	}
	if !metav1.IsControlledBy(cur, owner) {
		return nil, fmt.Errorf("%w: Deployment %s/%s exists and is not controlled by this source; delete or rename it", errConflict, cur.Namespace, cur.Name)
	}
	if equality.Semantic.DeepDerivative(want.Spec.Template, cur.Spec.Template) &&
		equality.Semantic.DeepEqual(want.Spec.Replicas, cur.Spec.Replicas) &&
		equality.Semantic.DeepDerivative(want.Labels, cur.Labels) {
		return cur, nil
	}
	upd := cur.DeepCopy()
	upd.Spec.Template = want.Spec.Template
	upd.Spec.Replicas = want.Spec.Replicas
	if upd.Labels == nil {
		upd.Labels = map[string]string{}
	}
	for k, v := range want.Labels {
		upd.Labels[k] = v
	}
	d, err := c.apps.Deployments(want.Namespace).Update(ctx, upd, metav1.UpdateOptions{})
	if err != nil {
		return nil, err
	}
	c.log.Info("updated the adapter Deployment", "namespace", d.Namespace, "name", d.Name)
	c.recorder.Eventf(owner, corev1.EventTypeNormal, ReasonDeploymentUpdated, "Updated Deployment %q", d.Name)
	return d, nil
}
