package router

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	sluicev1beta1 "sluice.dev/sluice/api/v1beta1"
	"sluice.dev/sluice/pkg/workload"
)

// +kubebuilder:rbac:groups="",resources=services,verbs=get;list;watch;create;update;patch;delete

// Services manages the three ClusterIP Services of a Canary, which every
// provider routes to: <name>-primary selects the primary's pods,
// <name>-canary the target's, and the apex <name> the primary's. An apex
// Service that existed before the Canary is adopted: its original selector
// is kept in an annotation and restored by Finalize.
type Services Deps

// ServiceNames returns the apex, primary and canary Service names.
func ServiceNames(c *sluicev1beta1.Canary) (apex, primary, canary string) {
	apex = c.Spec.Service.Name
	if apex == "" {
		apex = c.Spec.TargetRef.Name
	}
	return apex, apex + workload.PrimarySuffix, apex + "-canary"
}

// isSidecarPort reports the ports of mesh sidecars (Istio, Linkerd), never
// discovered as the application's.
func isSidecarPort(p int32) bool {
	switch p {
	case 15000, 15001, 15006, 15008, 15020, 15021, 15090, 4143, 4191:
		return true
	}
	return false
}

// ownedLabel marks the Services generated for a Canary.
const ownedLabel = "sluice.dev/canary"

// ownedNamespaceLabel is the namespace of the Canary that a cluster-scoped
// generated object belongs to.
const ownedNamespaceLabel = "sluice.dev/canary-namespace"

// Initialize creates or updates the -primary and -canary Services.
func (s Services) Initialize(ctx context.Context, c *sluicev1beta1.Canary) error {
	target, err := s.target(ctx, c)
	if err != nil {
		return err
	}
	_, primary, canary := ServiceNames(c)
	if t, ok := target.(*corev1.Service); ok {
		// A Service target routes as it selects: the canary's copy
		// follows it, and the engine writes the primary's on promotion.
		svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: canary, Namespace: c.Namespace}}
		return Deps(s).ensureGenerated(ctx, c, svc, func() error {
			applyMetadata(&svc.ObjectMeta, c.Spec.Service.Canary, c.Spec.Service.UnmanagedMetadata, true)
			workload.CopyServiceSpec(svc, t)
			return nil
		})
	}
	ports := servicePorts(c, target)
	if err := s.ensureOwned(ctx, c, primary, workload.PrimarySelector(target), ports, c.Spec.Service.Primary); err != nil {
		return err
	}
	return s.ensureOwned(ctx, c, canary, workload.Selector(target).MatchLabels, ports, c.Spec.Service.Canary)
}

// TakeOver points the apex Service at the primary, creating it if needed.
// A Service target is the apex itself, the user's: it is left alone.
func (s Services) TakeOver(ctx context.Context, c *sluicev1beta1.Canary) error {
	if c.Spec.TargetRef.Kind == workload.KindService {
		return nil
	}
	target, err := s.target(ctx, c)
	if err != nil {
		return err
	}
	apex, _, _ := ServiceNames(c)
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: apex, Namespace: c.Namespace}}
	if err := s.Client.Get(ctx, client.ObjectKeyFromObject(svc), svc); apierrors.IsNotFound(err) {
		return s.ensureOwned(ctx, c, apex, workload.PrimarySelector(target), servicePorts(c, target), c.Spec.Service.Apex)
	} else if err != nil {
		return fmt.Errorf("get Service %s: %w", apex, err)
	}
	if metav1.IsControlledBy(svc, c) {
		return s.ensureOwned(ctx, c, apex, workload.PrimarySelector(target), servicePorts(c, target), c.Spec.Service.Apex)
	}
	// The user's Service: change only what routing needs and remember the
	// rest.
	return Deps(s).patch(ctx, svc, func() error {
		if err := keepOriginal(svc, originalService{Selector: svc.Spec.Selector, Ports: svc.Spec.Ports}); err != nil {
			return err
		}
		applyMetadata(&svc.ObjectMeta, c.Spec.Service.Apex, c.Spec.Service.UnmanagedMetadata, false)
		svc.Spec.Selector = workload.PrimarySelector(target)
		svc.Spec.Ports = mergePorts(svc.Spec.Ports, servicePorts(c, target))
		return nil
	})
}

// Finalize points the apex Service back at the target: an adopted Service
// gets its original selector and ports back, a generated one is released
// from the Canary so that it outlives it.
func (s Services) Finalize(ctx context.Context, c *sluicev1beta1.Canary) error {
	if c.Spec.TargetRef.Kind == workload.KindService {
		// Never taken over; the copies go with the Canary.
		return nil
	}
	apex, _, _ := ServiceNames(c)
	svc := &corev1.Service{}
	if err := s.Client.Get(ctx, client.ObjectKey{Namespace: c.Namespace, Name: apex}, svc); apierrors.IsNotFound(err) {
		return nil
	} else if err != nil {
		return fmt.Errorf("get Service %s: %w", apex, err)
	}
	target, err := s.target(ctx, c)
	if err != nil && !apierrors.IsNotFound(err) {
		return err
	}
	return Deps(s).patch(ctx, svc, func() error {
		var original originalService
		if adopted, err := takeOriginal(svc, &original); err != nil || adopted {
			svc.Spec.Selector, svc.Spec.Ports = original.Selector, original.Ports
			return err
		}
		if target != nil {
			svc.Spec.Selector = maps.Clone(workload.Selector(target).MatchLabels)
		}
		release(svc, c)
		return nil
	})
}

// originalService is what an adopted apex Service looked like.
type originalService struct {
	Selector map[string]string    `json:"selector,omitempty"`
	Ports    []corev1.ServicePort `json:"ports,omitempty"`
}

func (s Services) target(ctx context.Context, c *sluicev1beta1.Canary) (client.Object, error) {
	target, err := workload.NewTarget(c.Spec.TargetRef)
	if err != nil {
		return nil, err
	}
	if workload.IsKnative(target) {
		// Knative makes its own Services; only its router splits them.
		return nil, specError("spec.provider", "a Knative Service target needs provider knative, not %q", c.Spec.Provider)
	}
	if err := s.Client.Get(ctx, client.ObjectKey{Namespace: c.Namespace, Name: c.Spec.TargetRef.Name}, target); err != nil {
		return nil, fmt.Errorf("get %s %s: %w", c.Spec.TargetRef.Kind, c.Spec.TargetRef.Name, err)
	}
	return target, nil
}

// ensureOwned creates or updates a Service generated for the Canary.
func (s Services) ensureOwned(ctx context.Context, c *sluicev1beta1.Canary, name string, selector map[string]string, ports []corev1.ServicePort, meta *sluicev1beta1.CustomMetadata) error {
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: c.Namespace}}
	return Deps(s).ensureGenerated(ctx, c, svc, func() error {
		applyMetadata(&svc.ObjectMeta, meta, c.Spec.Service.UnmanagedMetadata, true)
		svc.Spec.Selector = selector
		svc.Spec.Ports = mergePorts(svc.Spec.Ports, ports)
		svc.Spec.Type = corev1.ServiceTypeClusterIP
		if c.Spec.Service.Headless && svc.CreationTimestamp.IsZero() {
			svc.Spec.ClusterIP = corev1.ClusterIPNone
		}
		if d := c.Spec.Service.TrafficDistribution; d != "" {
			svc.Spec.TrafficDistribution = &d
		} else {
			svc.Spec.TrafficDistribution = nil
		}
		return nil
	})
}

// applyMetadata sets the labels and annotations the Canary asks for. On a
// generated object (exclusive) every other key is removed, except those
// listed as unmanaged; on an adopted one the user's keys are kept.
func applyMetadata(obj *metav1.ObjectMeta, want *sluicev1beta1.CustomMetadata, unmanaged *sluicev1beta1.UnmanagedMetadata, exclusive bool) {
	var wantLabels, wantAnnotations map[string]string
	if want != nil {
		wantLabels, wantAnnotations = want.Labels, want.Annotations
	}
	var keepLabels, keepAnnotations []string
	if unmanaged != nil {
		keepLabels, keepAnnotations = unmanaged.Labels, unmanaged.Annotations
	}
	keepLabels = append(keepLabels, ownedLabel)
	keepAnnotations = append(keepAnnotations, sluicev1beta1.OriginalConfigurationAnnotation)
	for k := range generatedMarks() {
		keepAnnotations = append(keepAnnotations, k)
	}
	obj.Labels = mergeKeys(obj.Labels, wantLabels, keepLabels, exclusive)
	obj.Annotations = mergeKeys(obj.Annotations, wantAnnotations, keepAnnotations, exclusive)
}

func mergeKeys(have, want map[string]string, keep []string, exclusive bool) map[string]string {
	out := map[string]string{}
	for k, v := range have {
		if !exclusive || slices.Contains(keep, k) {
			out[k] = v
		}
	}
	for k, v := range want {
		if !slices.Contains(keep, k) {
			out[k] = v
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// servicePorts are the ports of the generated Services: the Canary's
// port, and with portDiscovery every other container port of the target.
func servicePorts(c *sluicev1beta1.Canary, target client.Object) []corev1.ServicePort {
	spec := c.Spec.Service
	name := spec.PortName
	if name == "" {
		name = "http"
	}
	targetPort := spec.TargetPort
	if targetPort.IntValue() == 0 && targetPort.StrVal == "" {
		targetPort = intstr.FromInt32(spec.Port)
	}
	main := corev1.ServicePort{Name: name, Port: spec.Port, TargetPort: targetPort, Protocol: corev1.ProtocolTCP}
	if spec.AppProtocol != "" {
		main.AppProtocol = &spec.AppProtocol
	}
	ports := []corev1.ServicePort{main}
	if !spec.PortDiscovery {
		return ports
	}
	seen := map[int32]bool{spec.Port: true}
	for _, ctr := range workload.PodTemplate(target).Spec.Containers {
		for _, p := range ctr.Ports {
			if p.Protocol != "" && p.Protocol != corev1.ProtocolTCP {
				continue
			}
			if seen[p.ContainerPort] || isSidecarPort(p.ContainerPort) ||
				(targetPort.Type == intstr.String && p.Name == targetPort.StrVal) ||
				(targetPort.Type == intstr.Int && p.ContainerPort == targetPort.IntVal) {
				continue
			}
			seen[p.ContainerPort] = true
			portName := p.Name
			if portName == "" {
				portName = "tcp-" + ctr.Name + "-" + strconv.Itoa(int(p.ContainerPort))
			}
			ports = append(ports, corev1.ServicePort{Name: portName, Port: p.ContainerPort, TargetPort: intstr.FromInt32(p.ContainerPort), Protocol: corev1.ProtocolTCP})
		}
	}
	return ports
}

// mergePorts returns want, keeping the node ports the API server assigned
// to existing ports of the same name, so that an update changes nothing it
// need not.
func mergePorts(have, want []corev1.ServicePort) []corev1.ServicePort {
	out := make([]corev1.ServicePort, len(want))
	copy(out, want)
	for i := range out {
		for _, h := range have {
			if h.Name == out[i].Name {
				out[i].NodePort = h.NodePort
			}
		}
	}
	return out
}
