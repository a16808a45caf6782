package flagger

import (
	"fmt"
	"maps"
	"slices"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	sluicev1beta1 "sluice.dev/sluice/api/v1beta1"
)

func TestAConfigChangeStartsANewRevision(t *testing.T) {
	t.Parallel()
	const (
		configMap = "configmap/podinfo-config-env"
		secret    = "secret/podinfo-config-vol"
	)
	tests := []struct {
		name string
		ns   string
		// key is the changed config's key in status.trackedConfigs.
		key    string
		change func(s *scenario)
		// copied reads the changed config's primary copy.
		copied func(s *scenario) string
	}{
		{
			name: "a ConfigMap change is released", ns: "config-configmap", key: configMap,
			change: func(s *scenario) {
				cm := &corev1.ConfigMap{}
				s.update(cm, "podinfo-config-env", func() { cm.Data["PODINFO_UI_MESSAGE"] = "green" })
			},
			copied: func(s *scenario) string {
				cm := &corev1.ConfigMap{}
				s.get(cm, "podinfo-config-env-primary")
				return cm.Data["PODINFO_UI_MESSAGE"]
			},
		},
		{
			name: "a Secret change is released", ns: "config-secret", key: secret,
			change: func(s *scenario) {
				sec := &corev1.Secret{}
				s.update(sec, "podinfo-config-vol", func() { sec.Data["secret.yaml"] = []byte("green") })
			},
			copied: func(s *scenario) string {
				sec := &corev1.Secret{}
				s.get(sec, "podinfo-config-vol-primary")
				return string(sec.Data["secret.yaml"])
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := newScenario(t, tt.ns, "podinfo")
			s.apply("tracked-configs.yaml")
			c := s.waitPhase(initialized, time.Minute)

			// Flagger copies the configs to <name>-primary, points the
			// primary at the copies and tracks their checksums.
			before := maps.Clone(c.Status.TrackedConfigs)
			if keys := slices.Sorted(maps.Keys(before)); !slices.Equal(keys, []string{configMap, secret}) {
				t.Fatalf("status.trackedConfigs holds %v, want %s and %s", keys, configMap, secret)
			}
			primary := &appsv1.Deployment{}
			s.get(primary, "podinfo-primary")
			spec := primary.Spec.Template.Spec
			if got := spec.Containers[0].EnvFrom[0].ConfigMapRef.Name; got != "podinfo-config-env-primary" {
				t.Fatalf("the primary reads the ConfigMap %s, want its copy", got)
			}
			if got := spec.Volumes[0].Secret.SecretName; got != "podinfo-config-vol-primary" {
				t.Fatalf("the primary mounts the Secret %s, want its copy", got)
			}
			if got := tt.copied(s); got == "green" {
				t.Fatalf("the copy holds %q before the change", got)
			}

			release := s.history.mark()
			tt.change(s)
			c = s.waitPhase(succeeded, 90*time.Second)
			s.checkPhases(release, promoted)
			if got := tt.copied(s); got != "green" {
				t.Fatalf("the primary's copy holds %q after the promotion, want the change", got)
			}
			for key, sum := range c.Status.TrackedConfigs {
				if changed := sum != before[key]; changed != (key == tt.key) {
					t.Fatalf("checksum of %s went from %s to %s", key, before[key], sum)
				}
			}
			if img := s.image("Deployment", "podinfo-primary"); img != podinfo600 {
				t.Fatalf("the primary runs %s: a config change is not an image change", img)
			}
			s.waitEventMessage("", "New revision", 10*time.Second)
		})
	}
}

// daemonSet reads a DaemonSet of the namespace.
func (s *scenario) daemonSet(name string) *appsv1.DaemonSet {
	s.T.Helper()
	ds := &appsv1.DaemonSet{}
	s.get(ds, name)
	return ds
}

func TestADaemonSetIsReleasedAndGivenItsPodsBackWhenItsCanaryIsDeleted(t *testing.T) {
	t.Parallel()
	s := newScenario(t, "daemonset", "podinfo-ds")
	s.apply("daemonset.yaml")
	s.waitPhase(initialized, time.Minute)
	s.checkServices("podinfo-ds", "podinfo-ds")
	// The target runs nowhere while the primary runs on every node: the
	// test cluster has one.
	eventually(t, 30*time.Second, "the target DaemonSet scaled to zero", func() (bool, string) {
		st := s.daemonSet("podinfo-ds").Status
		return st.DesiredNumberScheduled == 0 && st.NumberReady == 0, fmt.Sprintf("target status %+v", st)
	})
	if st := s.daemonSet("podinfo-ds-primary").Status; st.NumberReady != 1 {
		t.Fatalf("the primary DaemonSet has %d ready pods, want 1", st.NumberReady)
	}

	release := s.history.mark()
	s.release("DaemonSet", podinfo601)
	s.waitPhase(succeeded, 90*time.Second)
	s.checkPhases(release, promoted)
	if img := s.image("DaemonSet", "podinfo-ds-primary"); img != podinfo601 {
		t.Fatalf("the primary DaemonSet runs %s after the promotion", img)
	}
	eventually(t, 30*time.Second, "the target DaemonSet back at zero", func() (bool, string) {
		st := s.daemonSet("podinfo-ds").Status
		return st.DesiredNumberScheduled == 0, fmt.Sprintf("target status %+v", st)
	})
	if len(s.loadTester.received("/gate/approve")) == 0 {
		t.Fatal("the confirm-rollout gate was not asked")
	}

	// revertOnDeletion: the Canary holds a finalizer, and deleting it
	// gives the DaemonSet its pods back and the apex Service to them.
	s.deleteReverting()
	eventually(t, time.Minute, "the target DaemonSet ready again", func() (bool, string) {
		st := s.daemonSet("podinfo-ds").Status
		return st.NumberReady == 1, fmt.Sprintf("target status %+v", st)
	})
	if got := s.selector("podinfo-ds"); !maps.Equal(got, map[string]string{"app": "podinfo-ds"}) {
		t.Fatalf("the apex Service selects %v after the deletion, want the target's pods", got)
	}
}

// scaledObject reads a KEDA ScaledObject of the namespace.
func (s *scenario) scaledObject(name string) *unstructured.Unstructured {
	s.T.Helper()
	u := &unstructured.Unstructured{}
	u.SetAPIVersion("keda.sh/v1alpha1")
	u.SetKind("ScaledObject")
	s.get(u, name)
	return u
}

// pausedReplicas is KEDA's annotation that holds a ScaledObject's target
// at a replica count.
const pausedReplicas = "autoscaling.keda.sh/paused-replicas"

func TestAKEDAScaledDeploymentGetsAPrimaryScaledObjectAndItsOwnIsPausedWhileIdle(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, ns, manifest string
		// queries are the primary ScaledObject's triggers' queries.
		queries  []string
		min, max int64
	}{
		{
			name: "the primary's queries name the primary where they named the target or its canary", ns: "keda-queries",
			manifest: "keda-scaledobject.yaml",
			queries: []string{
				`sum(rate(http_requests_total{ app="podinfo-primary" }[30s]))`,
				`sum(rate(http_requests_total{ service="podinfo-primary" }[30s]))`,
			},
			min: 1, max: 3,
		},
		{
			name: "primaryScalerQueries and primaryScalerReplicas shape the primary's ScaledObject", ns: "keda-primary-scaler",
			manifest: "keda-primary-scaler.yaml",
			queries:  []string{`sum(rate(http_requests_total{ app="podinfo-primary" }[10s]))`},
			min:      2, max: 5,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := newScenario(t, tt.ns, "podinfo")
			s.apply("podinfo-deployment.yaml", tt.manifest)
			s.waitPhase(initialized, time.Minute)

			so := s.scaledObject("podinfo-so-primary")
			if got, _, _ := unstructured.NestedString(so.Object, "spec", "scaleTargetRef", "name"); got != "podinfo-primary" {
				t.Fatalf("podinfo-so-primary scales %q, want podinfo-primary", got)
			}
			triggers, _, _ := unstructured.NestedSlice(so.Object, "spec", "triggers")
			var queries []string
			for _, tr := range triggers {
				q, _, _ := unstructured.NestedString(tr.(map[string]any), "metadata", "query")
				queries = append(queries, q)
			}
			if !slices.Equal(queries, tt.queries) {
				t.Errorf("podinfo-so-primary's queries are %q, want %q", queries, tt.queries)
			}
			minReplicas, _, _ := unstructured.NestedInt64(so.Object, "spec", "minReplicaCount")
			maxReplicas, _, _ := unstructured.NestedInt64(so.Object, "spec", "maxReplicaCount")
			if minReplicas != tt.min || maxReplicas != tt.max {
				t.Fatalf("podinfo-so-primary scales between %d and %d, want %d and %d", minReplicas, maxReplicas, tt.min, tt.max)
			}
			paused := func() string { return s.scaledObject("podinfo-so").GetAnnotations()[pausedReplicas] }
			if p := paused(); p != "0" {
				t.Fatalf("the target's ScaledObject is paused at %q after initialization, want 0", p)
			}

			// A release resumes the target's ScaledObject for the canary
			// and pauses it again at zero once promoted.
			s.release("Deployment", podinfo601)
			s.waitPhase(progressing, 30*time.Second)
			eventually(t, 30*time.Second, "the target's ScaledObject resumed and the canary scaled up", func() (bool, string) {
				r := s.replicas("podinfo")
				return paused() == "" && r > 0, fmt.Sprintf("paused at %q, %d replicas", paused(), r)
			})
			s.waitPhase(succeeded, 90*time.Second)
			eventually(t, 30*time.Second, "the target's ScaledObject paused again", func() (bool, string) {
				return paused() == "0", fmt.Sprintf("paused at %q", paused())
			})
			if img := s.image("Deployment", "podinfo-primary"); img != podinfo601 {
				t.Fatalf("the primary runs %s after the promotion", img)
			}
		})
	}
}

// deleteReverting deletes a Canary with revertOnDeletion, which holds a
// finalizer until its changes are reverted, and waits until it is gone.
func (s *scenario) deleteReverting() {
	s.T.Helper()
	c := s.canary()
	if len(c.Finalizers) == 0 {
		s.T.Fatal("no finalizer on a Canary with revertOnDeletion")
	}
	if err := cp.Client.Delete(s.T.Context(), c); err != nil {
		s.T.Fatal(err)
	}
	eventually(s.T, time.Minute, "the Canary gone", func() (bool, string) {
		err := cp.Client.Get(s.T.Context(), client.ObjectKey{Namespace: s.Name, Name: s.canaryName}, &sluicev1beta1.Canary{})
		return apierrors.IsNotFound(err), fmt.Sprint(err)
	})
}
