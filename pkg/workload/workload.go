// Package workload knows the Deployments, DaemonSets and Services a Canary
// releases: how to copy a target into its -primary, identify its revision,
// scale it to zero and back, and tell when its rollout is done. Its
// functions are pure; the reconciler reads and writes the objects.
//
// A Service target is Flagger's: the user runs each version behind a
// Service of their own; its spec (the selector, mostly) is the revision,
// -canary is kept a copy of it and -primary gets a copy on promotion.
// There is nothing to scale and nothing to wait for.
package workload

import (
	"encoding/json"
	"fmt"
	"hash/fnv"
	"maps"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	sluicev1beta1 "sluice.dev/sluice/api/v1beta1"
	"sluice.dev/sluice/pkg/configtrack"
)

// Kinds of targets.
const (
	KindDeployment = "Deployment"
	KindDaemonSet  = "DaemonSet"
	KindService    = "Service"
)

// PrimarySuffix is appended to the names of the primary workload, its
// Services, configs and autoscaler.
const PrimarySuffix = "-primary"

// New returns an empty object of a target kind, for reading one.
func New(kind string) (client.Object, error) {
	switch kind {
	case KindDeployment:
		return &appsv1.Deployment{}, nil
	case KindDaemonSet:
		return &appsv1.DaemonSet{}, nil
	case KindService:
		return &corev1.Service{}, nil
	}
	return nil, fmt.Errorf("targetRef.kind %s is not supported; use Deployment, DaemonSet or Service", kind)
}

// PodTemplate returns the workload's pod template; a Service has none.
func PodTemplate(obj client.Object) *corev1.PodTemplateSpec {
	switch w := obj.(type) {
	case *appsv1.Deployment:
		return &w.Spec.Template
	case *appsv1.DaemonSet:
		return &w.Spec.Template
	}
	return nil
}

// Selector returns the workload's pod selector.
func Selector(obj client.Object) *metav1.LabelSelector {
	switch w := obj.(type) {
	case *appsv1.Deployment:
		return w.Spec.Selector
	case *appsv1.DaemonSet:
		return w.Spec.Selector
	}
	return nil
}

// PodTemplateHash identifies a workload's pod template, or a Service's
// spec. The node selector that holds a DaemonSet at zero is left out: it
// is Sluice's, not a revision; so are the addresses the API server gives
// a Service.
func PodTemplateHash(obj client.Object) string {
	if svc, ok := obj.(*corev1.Service); ok {
		return hash(serviceSpec(svc))
	}
	if IsKnative(obj) {
		// Knative names each revision of the template itself.
		return KnativeLatestRevision(obj)
	}
	t := PodTemplate(obj).DeepCopy()
	delete(t.Spec.NodeSelector, sluicev1beta1.ScaleToZeroNodeSelector)
	if len(t.Spec.NodeSelector) == 0 {
		t.Spec.NodeSelector = nil
	}
	return hash(t)
}

// serviceSpec is what a Service's user wrote: its spec without the
// addresses and ports the API server allocates.
func serviceSpec(svc *corev1.Service) corev1.ServiceSpec {
	spec := *svc.Spec.DeepCopy()
	spec.ClusterIP, spec.ClusterIPs = "", nil
	spec.IPFamilies, spec.IPFamilyPolicy = nil, nil
	spec.HealthCheckNodePort = 0
	for i := range spec.Ports {
		spec.Ports[i].NodePort = 0
	}
	return spec
}

func hash(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		// A pod template always marshals; should it not, every call fails
		// alike and the revision stays stable.
		return "unhashable"
	}
	h := fnv.New64a()
	_, _ = h.Write(b)
	return fmt.Sprintf("%016x", h.Sum64())
}

// Revision identifies what a target runs: its pod template and, when it
// reads tracked configs, their data.
func Revision(podTemplateHash string, configs map[string]string) string {
	if sum := configtrack.Checksum(configs); sum != "" {
		return podTemplateHash + "-" + sum[:8]
	}
	return podTemplateHash
}

// ScaledToZero reports whether a workload is held at zero: a Deployment
// with no replicas, a DaemonSet with Sluice's impossible node selector.
func ScaledToZero(obj client.Object) bool {
	switch w := obj.(type) {
	case *appsv1.Deployment:
		return w.Spec.Replicas != nil && *w.Spec.Replicas == 0
	case *appsv1.DaemonSet:
		_, ok := w.Spec.Template.Spec.NodeSelector[sluicev1beta1.ScaleToZeroNodeSelector]
		return ok
	}
	return false
}

// ScaleToZero holds a workload at zero. A Deployment's autoscaler stops
// acting on it while it has no replicas.
func ScaleToZero(obj client.Object) {
	switch w := obj.(type) {
	case *appsv1.Deployment:
		zero := int32(0)
		w.Spec.Replicas = &zero
	case *appsv1.DaemonSet:
		if w.Spec.Template.Spec.NodeSelector == nil {
			w.Spec.Template.Spec.NodeSelector = map[string]string{}
		}
		w.Spec.Template.Spec.NodeSelector[sluicev1beta1.ScaleToZeroNodeSelector] = "true"
	}
}

// ScaleUp brings a workload back from zero; a Deployment gets the given
// number of replicas.
func ScaleUp(obj client.Object, replicas int32) {
	switch w := obj.(type) {
	case *appsv1.Deployment:
		w.Spec.Replicas = &replicas
	case *appsv1.DaemonSet:
		delete(w.Spec.Template.Spec.NodeSelector, sluicev1beta1.ScaleToZeroNodeSelector)
		if len(w.Spec.Template.Spec.NodeSelector) == 0 {
			w.Spec.Template.Spec.NodeSelector = nil
		}
	}
}

// Replicas returns a Deployment's desired replicas, or 0 for a DaemonSet.
func Replicas(obj client.Object) int32 {
	if d, ok := obj.(*appsv1.Deployment); ok {
		if d.Spec.Replicas == nil {
			return 1
		}
		return *d.Spec.Replicas
	}
	return 0
}

// ReadyReplicas returns a Deployment's ready replicas, or 0 for a
// DaemonSet.
func ReadyReplicas(obj client.Object) int32 {
	if d, ok := obj.(*appsv1.Deployment); ok {
		return d.Status.ReadyReplicas
	}
	return 0
}

// SetReplicas sets a Deployment's replicas; DaemonSets have none.
func SetReplicas(obj client.Object, replicas int32) {
	if d, ok := obj.(*appsv1.Deployment); ok {
		d.Spec.Replicas = &replicas
	}
}

// Readiness is the rollout status of a workload. Its fields are those of
// the canary plan's, which converts it, so that this leaf does not import
// the engine.
type Readiness struct {
	// Ready is set when the workload runs its current spec with enough
	// available replicas.
	Ready bool
	// Message says what it waits for when it is not ready.
	Message string
	// Stuck is set when its controller gave up on the rollout (a
	// Deployment's ProgressDeadlineExceeded).
	Stuck bool
	// NotReadySince is when it stopped being ready, if known.
	NotReadySince time.Time
}

// ReadinessOf tells whether a workload runs its current spec with at
// least threshold percent of its updated replicas available, after
// Flagger's rules.
func ReadinessOf(obj client.Object, threshold int) Readiness {
	switch w := obj.(type) {
	case *appsv1.Deployment:
		return deploymentReadiness(w, threshold)
	case *appsv1.DaemonSet:
		return daemonSetReadiness(w, threshold)
	case *corev1.Service:
		// The user's workloads behind it are theirs to roll out.
		return Readiness{Ready: true}
	}
	if IsKnative(obj) {
		return knativeReadiness(obj.(*unstructured.Unstructured))
	}
	return Readiness{Message: fmt.Sprintf("unsupported kind %T", obj)}
}

func deploymentReadiness(d *appsv1.Deployment, threshold int) Readiness {
	s := d.Status
	if d.Generation > s.ObservedGeneration {
		return Readiness{Message: fmt.Sprintf("the deployment controller has not observed generation %d yet", d.Generation)}
	}
	var r Readiness
	for _, c := range s.Conditions {
		switch {
		case c.Type == appsv1.DeploymentProgressing && c.Reason == "ProgressDeadlineExceeded":
			r.Stuck = true
		case c.Type == appsv1.DeploymentAvailable && c.Status == corev1.ConditionFalse:
			r.NotReadySince = c.LastTransitionTime.Time
		}
	}
	want := Replicas(d)
	needed := s.UpdatedReplicas * int32(threshold) / 100
	switch {
	case r.Stuck:
		r.Message = fmt.Sprintf("deployment %s exceeded its progress deadline", d.Name)
	case want == 0:
		r.Message = "scaled to zero"
	case s.UpdatedReplicas < want:
		r.Message = fmt.Sprintf("%d of %d replicas updated", s.UpdatedReplicas, want)
	case s.Replicas > s.UpdatedReplicas:
		r.Message = fmt.Sprintf("%d old replicas pending termination", s.Replicas-s.UpdatedReplicas)
	case s.AvailableReplicas < needed:
		r.Message = fmt.Sprintf("%d of %d updated replicas available (ready threshold %d%%)", s.AvailableReplicas, needed, threshold)
	default:
		return Readiness{Ready: true}
	}
	return r
}

func daemonSetReadiness(ds *appsv1.DaemonSet, threshold int) Readiness {
	s := ds.Status
	if ds.Generation > s.ObservedGeneration {
		return Readiness{Message: fmt.Sprintf("the daemonset controller has not observed generation %d yet", ds.Generation)}
	}
	needed := s.DesiredNumberScheduled * int32(threshold) / 100
	switch {
	case ScaledToZero(ds):
		return Readiness{Message: "scaled to zero"}
	case s.UpdatedNumberScheduled < s.DesiredNumberScheduled:
		return Readiness{Message: fmt.Sprintf("%d of %d pods updated", s.UpdatedNumberScheduled, s.DesiredNumberScheduled)}
	case s.NumberAvailable < needed:
		return Readiness{Message: fmt.Sprintf("%d of %d updated pods available (ready threshold %d%%)", s.NumberAvailable, needed, threshold)}
	}
	return Readiness{Ready: true}
}

// PrimaryOptions say how a primary is made from its target.
type PrimaryOptions struct {
	// Revision is the target revision being copied.
	Revision string
	// ConfigRenames maps tracked configs (configtrack.Ref.Key) to the names
	// of their primary copies.
	ConfigRenames map[string]string
	// ConfigChecksum identifies the tracked configs' data; it goes on the
	// pod template so that a config-only change rolls the primary's pods.
	ConfigChecksum string
	// IncludeLabelPrefixes lists the prefixes of the target's labels and
	// annotations copied to the primary object.
	IncludeLabelPrefixes []string
}

// Copy makes primary (a new or existing object of the target's kind) a
// copy of target: pod template, strategy and settings, with every selector
// label renamed so that the two never select each other's pods. The
// primary's replicas are set only when it has none yet, since its
// autoscaler owns them afterwards.
func Copy(primary, target client.Object, opts PrimaryOptions) error {
	if t, ok := target.(*corev1.Service); ok {
		return copyService(primary, t, opts)
	}
	sel := Selector(target)
	if sel == nil || (len(sel.MatchLabels) == 0 && len(sel.MatchExpressions) == 0) {
		return fmt.Errorf("%s has no selector", target.GetName())
	}
	labels := newRelabeler(sel, PodTemplate(target).Labels)
	template := PodTemplate(target).DeepCopy()
	template.Labels = labels.labels(template.Labels)
	if template.Annotations == nil {
		template.Annotations = map[string]string{}
	}
	if opts.ConfigChecksum != "" {
		template.Annotations[sluicev1beta1.ConfigChecksumAnnotation] = opts.ConfigChecksum
	}
	delete(template.Spec.NodeSelector, sluicev1beta1.ScaleToZeroNodeSelector)
	if len(template.Spec.NodeSelector) == 0 {
		template.Spec.NodeSelector = nil
	}
	labels.affinity(template.Spec.Affinity)
	for i := range template.Spec.TopologySpreadConstraints {
		template.Spec.TopologySpreadConstraints[i].LabelSelector = labels.selector(template.Spec.TopologySpreadConstraints[i].LabelSelector)
	}
	configtrack.Rewrite(&template.Spec, opts.ConfigRenames)

	primary.SetLabels(mergeMetadata(primary.GetLabels(), target.GetLabels(), opts.IncludeLabelPrefixes))
	annotations := mergeMetadata(primary.GetAnnotations(), target.GetAnnotations(), opts.IncludeLabelPrefixes)
	annotations[sluicev1beta1.RevisionAnnotation] = opts.Revision
	primary.SetAnnotations(annotations)

	switch t := target.(type) {
	case *appsv1.Deployment:
		p, ok := primary.(*appsv1.Deployment)
		if !ok {
			return fmt.Errorf("primary of Deployment %s is a %T", t.Name, primary)
		}
		if p.Spec.Replicas == nil {
			replicas := max(Replicas(t), 1)
			p.Spec.Replicas = &replicas
		}
		p.Spec.Selector = labels.selector(t.Spec.Selector)
		p.Spec.Template = *template
		p.Spec.Strategy = t.Spec.Strategy
		p.Spec.MinReadySeconds = t.Spec.MinReadySeconds
		p.Spec.RevisionHistoryLimit = t.Spec.RevisionHistoryLimit
		p.Spec.ProgressDeadlineSeconds = t.Spec.ProgressDeadlineSeconds
		p.Spec.Paused = false
	case *appsv1.DaemonSet:
		p, ok := primary.(*appsv1.DaemonSet)
		if !ok {
			return fmt.Errorf("primary of DaemonSet %s is a %T", t.Name, primary)
		}
		p.Spec.Selector = labels.selector(t.Spec.Selector)
		p.Spec.Template = *template
		p.Spec.UpdateStrategy = t.Spec.UpdateStrategy
		p.Spec.MinReadySeconds = t.Spec.MinReadySeconds
		p.Spec.RevisionHistoryLimit = t.Spec.RevisionHistoryLimit
	default:
		return fmt.Errorf("unsupported target kind %T", target)
	}
	return nil
}

// copyService makes primary a copy of a target Service: its spec, as
// CopyServiceSpec makes it, and its metadata, as for any primary.
func copyService(primary client.Object, target *corev1.Service, opts PrimaryOptions) error {
	p, ok := primary.(*corev1.Service)
	if !ok {
		return fmt.Errorf("primary of Service %s is a %T", target.Name, primary)
	}
	CopyServiceSpec(p, target)
	p.SetLabels(mergeMetadata(p.GetLabels(), target.GetLabels(), opts.IncludeLabelPrefixes))
	annotations := mergeMetadata(p.GetAnnotations(), target.GetAnnotations(), opts.IncludeLabelPrefixes)
	annotations[sluicev1beta1.RevisionAnnotation] = opts.Revision
	p.SetAnnotations(annotations)
	return nil
}

// CopyServiceSpec makes dst, a -primary or -canary Service, route as a
// target Service does: its selector and ports, as the user wrote them,
// keeping the addresses the API server gave dst. The copies are ClusterIP
// Services whatever the target's type: they are for routing inside the
// cluster, and a second node port or load balancer would only cost.
func CopyServiceSpec(dst, target *corev1.Service) {
	spec := serviceSpec(target)
	spec.ClusterIP, spec.ClusterIPs = dst.Spec.ClusterIP, dst.Spec.ClusterIPs
	spec.IPFamilies, spec.IPFamilyPolicy = dst.Spec.IPFamilies, dst.Spec.IPFamilyPolicy
	if spec.Type != corev1.ServiceTypeClusterIP {
		spec.Type, spec.ExternalTrafficPolicy, spec.AllocateLoadBalancerNodePorts = corev1.ServiceTypeClusterIP, "", nil
		spec.LoadBalancerClass, spec.LoadBalancerSourceRanges, spec.ExternalName = nil, nil, ""
		spec.ExternalIPs = nil
	}
	dst.Spec = spec
}

// PrimarySelector is the pod selector of a target's primary, for Services.
func PrimarySelector(target client.Object) map[string]string {
	sel := Selector(target)
	if sel == nil {
		return nil
	}
	return newRelabeler(sel, PodTemplate(target).Labels).labels(sel.MatchLabels)
}

// mergeMetadata sets the target's keys that match a prefix on the
// primary's, keeping the primary's other keys.
func mergeMetadata(primary, target map[string]string, prefixes []string) map[string]string {
	out := maps.Clone(primary)
	if out == nil {
		out = map[string]string{}
	}
	for k, v := range target {
		for _, p := range prefixes {
			if strings.HasPrefix(k, p) {
				out[k] = v
				break
			}
		}
	}
	return out
}

// relabeler renames the values of the target's selector labels for the
// primary. Every selector key is renamed (Flagger keeps only one and drops
// the rest, flagger#1312), and so are the affinity and topology spread
// selectors that point at the target's own pods.
type relabeler struct {
	// podValues are the target pod labels' values of the selector's keys.
	podValues map[string]string
}

func newRelabeler(sel *metav1.LabelSelector, podLabels map[string]string) relabeler {
	r := relabeler{podValues: map[string]string{}}
	for k, v := range sel.MatchLabels {
		r.podValues[k] = v
	}
	for _, e := range sel.MatchExpressions {
		if v, ok := podLabels[e.Key]; ok {
			r.podValues[e.Key] = v
		}
	}
	return r
}

// PrimaryLabelValue is the primary's value of a selector label: the
// target's value with -primary appended, shortened with a hash to stay a
// valid label value.
func PrimaryLabelValue(v string) string {
	if v == "" {
		return strings.TrimPrefix(PrimarySuffix, "-")
	}
	out := v + PrimarySuffix
	if len(out) <= 63 {
		return out
	}
	h := fnv.New32a()
	_, _ = h.Write([]byte(v))
	return fmt.Sprintf("%s-%08x%s", v[:63-len(PrimarySuffix)-9], h.Sum32(), PrimarySuffix)
}

// labels renames the selector keys' values in a label set.
func (r relabeler) labels(in map[string]string) map[string]string {
	out := maps.Clone(in)
	for k, v := range out {
		if _, ok := r.podValues[k]; ok {
			out[k] = PrimaryLabelValue(v)
		}
	}
	return out
}

// value renames v if it is the target pods' value of key.
func (r relabeler) value(key, v string) string {
	if pv, ok := r.podValues[key]; ok && pv == v {
		return PrimaryLabelValue(v)
	}
	return v
}

// selector renames the values in a selector that pick the target's pods.
func (r relabeler) selector(in *metav1.LabelSelector) *metav1.LabelSelector {
	if in == nil {
		return nil
	}
	out := in.DeepCopy()
	for k, v := range out.MatchLabels {
		out.MatchLabels[k] = r.value(k, v)
	}
	for i := range out.MatchExpressions {
		e := &out.MatchExpressions[i]
		for j, v := range e.Values {
			e.Values[j] = r.value(e.Key, v)
		}
	}
	return out
}

func (r relabeler) affinity(a *corev1.Affinity) {
	if a == nil {
		return
	}
	terms := func(required []corev1.PodAffinityTerm, preferred []corev1.WeightedPodAffinityTerm) {
		for i := range required {
			required[i].LabelSelector = r.selector(required[i].LabelSelector)
		}
		for i := range preferred {
			preferred[i].PodAffinityTerm.LabelSelector = r.selector(preferred[i].PodAffinityTerm.LabelSelector)
		}
	}
	if a.PodAffinity != nil {
		terms(a.PodAffinity.RequiredDuringSchedulingIgnoredDuringExecution, a.PodAffinity.PreferredDuringSchedulingIgnoredDuringExecution)
	}
	if a.PodAntiAffinity != nil {
		terms(a.PodAntiAffinity.RequiredDuringSchedulingIgnoredDuringExecution, a.PodAntiAffinity.PreferredDuringSchedulingIgnoredDuringExecution)
	}
}
