package workload

import (
	"reflect"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/utils/ptr"

	sluicev1beta1 "sluice.dev/sluice/api/v1beta1"
)

// target is a Deployment with a two-label selector, an extra pod label,
// anti-affinity to its own pods and to another app, a topology spread and
// a ConfigMap.
func target() *appsv1.Deployment {
	own := &metav1.LabelSelector{MatchLabels: map[string]string{"app": "podinfo"}}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "podinfo", Namespace: "test",
			Labels:      map[string]string{"app.kubernetes.io/part-of": "shop", "team": "web"},
			Annotations: map[string]string{"app.kubernetes.io/managed-by": "flux", "note": "x"}},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](3),
			Selector: &metav1.LabelSelector{
				MatchLabels:      map[string]string{"app": "podinfo"},
				MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "component", Operator: metav1.LabelSelectorOpIn, Values: []string{"api"}}},
			},
			Strategy:        appsv1.DeploymentStrategy{Type: appsv1.RecreateDeploymentStrategyType},
			MinReadySeconds: 5,
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "podinfo", "component": "api", "version": "6.0"}},
				Spec: corev1.PodSpec{
					Containers: []corev1.Container{{Name: "app", Image: "podinfo:6.0", EnvFrom: []corev1.EnvFromSource{
						{ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "podinfo-env"}}},
					}}},
					Affinity: &corev1.Affinity{PodAntiAffinity: &corev1.PodAntiAffinity{
						RequiredDuringSchedulingIgnoredDuringExecution: []corev1.PodAffinityTerm{
							{LabelSelector: own.DeepCopy(), TopologyKey: "kubernetes.io/hostname"},
							{LabelSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "redis"}}, TopologyKey: "kubernetes.io/hostname"},
						},
						PreferredDuringSchedulingIgnoredDuringExecution: []corev1.WeightedPodAffinityTerm{
							{Weight: 10, PodAffinityTerm: corev1.PodAffinityTerm{LabelSelector: &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "component", Operator: metav1.LabelSelectorOpIn, Values: []string{"api", "worker"}}}}, TopologyKey: "zone"}},
						},
					}},
					TopologySpreadConstraints: []corev1.TopologySpreadConstraint{{MaxSkew: 1, TopologyKey: "zone", LabelSelector: own.DeepCopy()}},
				},
			},
		},
	}
}

func TestCopyMakesAPrimaryThatNeverSelectsTheTargetsPods(t *testing.T) {
	p := &appsv1.Deployment{}
	err := Copy(p, target(), PrimaryOptions{
		Revision: "rev1", ConfigChecksum: "sum1",
		ConfigRenames:        map[string]string{"configmap/podinfo-env": "podinfo-env-primary"},
		IncludeLabelPrefixes: []string{"app.kubernetes.io/"},
	})
	if err != nil {
		t.Fatal(err)
	}
	spec := p.Spec.Template.Spec
	checks := map[string][2]any{
		"selector labels":           {p.Spec.Selector.MatchLabels, map[string]string{"app": "podinfo-primary"}},
		"selector expressions":      {p.Spec.Selector.MatchExpressions[0].Values, []string{"api-primary"}},
		"pod labels":                {p.Spec.Template.Labels, map[string]string{"app": "podinfo-primary", "component": "api-primary", "version": "6.0"}},
		"own anti-affinity":         {spec.Affinity.PodAntiAffinity.RequiredDuringSchedulingIgnoredDuringExecution[0].LabelSelector.MatchLabels, map[string]string{"app": "podinfo-primary"}},
		"other app's anti-affinity": {spec.Affinity.PodAntiAffinity.RequiredDuringSchedulingIgnoredDuringExecution[1].LabelSelector.MatchLabels, map[string]string{"app": "redis"}},
		"preferred affinity":        {spec.Affinity.PodAntiAffinity.PreferredDuringSchedulingIgnoredDuringExecution[0].PodAffinityTerm.LabelSelector.MatchExpressions[0].Values, []string{"api-primary", "worker"}},
		"topology spread":           {spec.TopologySpreadConstraints[0].LabelSelector.MatchLabels, map[string]string{"app": "podinfo-primary"}},
		"config reference":          {spec.Containers[0].EnvFrom[0].ConfigMapRef.Name, "podinfo-env-primary"},
		"config checksum":           {p.Spec.Template.Annotations[sluicev1beta1.ConfigChecksumAnnotation], "sum1"},
		"revision":                  {p.Annotations[sluicev1beta1.RevisionAnnotation], "rev1"},
		"labels under the prefixes": {p.Labels, map[string]string{"app.kubernetes.io/part-of": "shop"}},
		"replicas":                  {*p.Spec.Replicas, int32(3)},
		"strategy":                  {p.Spec.Strategy.Type, appsv1.RecreateDeploymentStrategyType},
		"minReadySeconds":           {p.Spec.MinReadySeconds, int32(5)},
	}
	for name, c := range checks {
		if !reflect.DeepEqual(c[0], c[1]) {
			t.Errorf("%s: got %v, want %v", name, c[0], c[1])
		}
	}
	if tt := target(); tt.Spec.Template.Labels["app"] != "podinfo" {
		t.Error("Copy changed the target")
	}
}

func TestCopyKeepsTheReplicasOfAnExistingPrimary(t *testing.T) {
	p := &appsv1.Deployment{Spec: appsv1.DeploymentSpec{Replicas: ptr.To[int32](7)}}
	if err := Copy(p, target(), PrimaryOptions{Revision: "r"}); err != nil {
		t.Fatal(err)
	}
	if *p.Spec.Replicas != 7 {
		t.Fatalf("replicas %d, want the autoscaled 7", *p.Spec.Replicas)
	}
}

func TestCopyOfAScaledDownDaemonSetRunsEverywhere(t *testing.T) {
	ds := &appsv1.DaemonSet{ObjectMeta: metav1.ObjectMeta{Name: "agent"}, Spec: appsv1.DaemonSetSpec{
		Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "agent"}},
		Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "agent"}}},
	}}
	ScaleToZero(ds)
	p := &appsv1.DaemonSet{}
	if err := Copy(p, ds, PrimaryOptions{Revision: "r"}); err != nil {
		t.Fatal(err)
	}
	if p.Spec.Template.Spec.NodeSelector != nil || p.Spec.Selector.MatchLabels["app"] != "agent-primary" {
		t.Fatalf("primary node selector %v selector %v", p.Spec.Template.Spec.NodeSelector, p.Spec.Selector)
	}
}

func TestPrimaryLabelValuesStayValid(t *testing.T) {
	long := strings.Repeat("a", 63)
	for _, v := range []string{"podinfo", "", long, strings.Repeat("b", 58)} {
		got := PrimaryLabelValue(v)
		if errs := validation.IsValidLabelValue(got); len(errs) > 0 {
			t.Errorf("%q became the invalid %q: %v", v, got, errs)
		}
	}
	if PrimaryLabelValue(long) == PrimaryLabelValue(long[:62]+"c") {
		t.Error("two long values share a primary value")
	}
}

func TestRevisionFollowsThePodTemplateAndTheConfigs(t *testing.T) {
	d := target()
	h := PodTemplateHash(d)
	changed := target()
	changed.Spec.Template.Spec.Containers[0].Image = "podinfo:6.1"
	scaled := target()
	ScaleToZero(scaled)
	replicas := target()
	replicas.Spec.Replicas = ptr.To[int32](9)
	if h == PodTemplateHash(changed) {
		t.Error("an image change kept the hash")
	}
	if h != PodTemplateHash(replicas) {
		t.Error("a replica change moved the hash")
	}
	ds := &appsv1.DaemonSet{Spec: appsv1.DaemonSetSpec{Template: target().Spec.Template}}
	before := PodTemplateHash(ds)
	ScaleToZero(ds)
	if PodTemplateHash(ds) != before {
		t.Error("holding a DaemonSet at zero moved its hash")
	}
	if Revision(h, nil) != h || Revision(h, map[string]string{"configmap/a": "1"}) == Revision(h, map[string]string{"configmap/a": "2"}) {
		t.Error("the revision does not follow the configs")
	}
}

func TestScalingToZeroAndBack(t *testing.T) {
	d := target()
	ds := &appsv1.DaemonSet{Spec: appsv1.DaemonSetSpec{Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{NodeSelector: map[string]string{"disk": "ssd"}}}}}
	ScaleToZero(d)
	ScaleToZero(ds)
	if !ScaledToZero(d) || !ScaledToZero(ds) {
		t.Fatal("not held at zero")
	}
	ScaleUp(d, 2)
	ScaleUp(ds, 2)
	if ScaledToZero(d) || *d.Spec.Replicas != 2 || ScaledToZero(ds) || ds.Spec.Template.Spec.NodeSelector["disk"] != "ssd" {
		t.Fatalf("after scaling up: replicas %d, node selector %v", *d.Spec.Replicas, ds.Spec.Template.Spec.NodeSelector)
	}
}

func TestReadiness(t *testing.T) {
	since := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	dep := func(gen, observed int64, replicas, updated, total, available int32, conds ...appsv1.DeploymentCondition) *appsv1.Deployment {
		return &appsv1.Deployment{
			ObjectMeta: metav1.ObjectMeta{Name: "d", Generation: gen},
			Spec:       appsv1.DeploymentSpec{Replicas: &replicas},
			Status:     appsv1.DeploymentStatus{ObservedGeneration: observed, UpdatedReplicas: updated, Replicas: total, AvailableReplicas: available, Conditions: conds},
		}
	}
	ds := func(zero bool, desired, updated, available int32) *appsv1.DaemonSet {
		d := &appsv1.DaemonSet{Status: appsv1.DaemonSetStatus{DesiredNumberScheduled: desired, UpdatedNumberScheduled: updated, NumberAvailable: available}}
		if zero {
			ScaleToZero(d)
		}
		return d
	}
	tests := []struct {
		name      string
		obj       interface{ GetName() string }
		threshold int
		ready     bool
		stuck     bool
		message   string
	}{
		{"a rolled out Deployment is ready", dep(2, 2, 3, 3, 3, 3), 100, true, false, ""},
		{"an unobserved generation is not ready", dep(3, 2, 3, 3, 3, 3), 100, false, false, "not observed generation 3"},
		{"replicas still updating are not ready", dep(2, 2, 3, 1, 4, 1), 100, false, false, "1 of 3 replicas updated"},
		{"old replicas still terminating are not ready", dep(2, 2, 3, 3, 4, 3), 100, false, false, "1 old replicas pending termination"},
		{"too few available replicas are not ready", dep(2, 2, 4, 4, 4, 2), 100, false, false, "2 of 4 updated replicas available"},
		{"a ready threshold accepts fewer available replicas", dep(2, 2, 4, 4, 4, 3), 75, true, false, ""},
		{"a Deployment at zero is not ready", dep(2, 2, 0, 0, 0, 0), 100, false, false, "scaled to zero"},
		{"a Deployment past its progress deadline is stuck", dep(2, 2, 3, 1, 3, 0, appsv1.DeploymentCondition{Type: appsv1.DeploymentProgressing, Reason: "ProgressDeadlineExceeded"}), 100, false, true, "exceeded its progress deadline"},
		{"a rolled out DaemonSet is ready", ds(false, 2, 2, 2), 100, true, false, ""},
		{"a DaemonSet updating its pods is not ready", ds(false, 2, 1, 2), 100, false, false, "1 of 2 pods updated"},
		{"a DaemonSet held at zero is not ready", ds(true, 0, 0, 0), 100, false, false, "scaled to zero"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var r = ReadinessOf(nil, 0)
			switch o := tt.obj.(type) {
			case *appsv1.Deployment:
				r = ReadinessOf(o, tt.threshold)
			case *appsv1.DaemonSet:
				r = ReadinessOf(o, tt.threshold)
			}
			if r.Ready != tt.ready || r.Stuck != tt.stuck || !strings.Contains(r.Message, tt.message) {
				t.Fatalf("readiness %+v, want ready %v stuck %v message containing %q", r, tt.ready, tt.stuck, tt.message)
			}
		})
	}
	unavailable := dep(2, 2, 3, 3, 3, 1, appsv1.DeploymentCondition{Type: appsv1.DeploymentAvailable, Status: corev1.ConditionFalse, LastTransitionTime: metav1.NewTime(since)})
	if r := ReadinessOf(unavailable, 100); !r.NotReadySince.Equal(since) {
		t.Errorf("not ready since %v, want the Available condition's %v", r.NotReadySince, since)
	}
}
