package helmrelease_test

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	releasev1 "helm.sh/helm/v4/pkg/release/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	syncv1 "sluice.dev/sluice/api/sync/v1"
	syncv2 "sluice.dev/sluice/api/sync/v2"
	"sluice.dev/sluice/test/controlplane"
)

// event finds an Event about the HelmRelease of that reason whose note
// holds text.
func event(t *testing.T, ns, name, reason, text string) (eventsv1.Event, bool) {
	t.Helper()
	var list eventsv1.EventList
	if err := cp.Client.List(t.Context(), &list, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	for _, e := range list.Items {
		if e.Regarding.Name == name && e.Reason == reason && strings.Contains(e.Note, text) {
			return e, true
		}
	}
	return eventsv1.Event{}, false
}

// TestAChangedTargetNamespaceUninstallsTheOldReleaseAndInstallsTheNew
// moves an installed release to another targetNamespace, which also
// renames it: as Flux does, the release of the old target is uninstalled
// from its namespace, not left installed and forgotten, and the chart is
// installed afresh in the new one.
func TestAChangedTargetNamespaceUninstallsTheOldReleaseAndInstallsTheNew(t *testing.T) {
	const ns, first, second = "helm-target", "helm-target-a", "helm-target-b"
	namespaceWithRepo(t, ns, chartOf("1.0.0", map[string]string{"settings.yaml": settings}))
	create(t, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: first}}, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: second}})
	startControllers(t)
	hr := helmRelease(ns, "web", "*", func(hr *syncv2.HelmRelease) { hr.Spec.TargetNamespace = first })
	create(t, hr)
	waitFor(t, hr, "installed in "+first, readyWith("1.0.0"))
	configMap(t, first, first+"-web-settings")

	change(t, hr, func(hr *syncv2.HelmRelease) { hr.Spec.TargetNamespace = second })
	got := waitFor(t, hr, "installed in "+second, func(hr *syncv2.HelmRelease) bool {
		return readyWith("1.0.0")(hr) && hr.Status.History[0].Namespace == second
	})
	if h := got.Status.History; len(h) != 1 || h[0].Name != second+"-web" || h[0].Version != 1 {
		t.Errorf("history %+v, want only revision 1 of the new release", h)
	}
	if c := condition(got, "Released"); c == nil || c.Reason != syncv2.ReasonInstallSucceeded {
		t.Errorf("Released %+v, want the chart installed afresh", c)
	}
	configMap(t, second, second+"-web-settings")
	if err := cp.Client.Get(t.Context(), client.ObjectKey{Namespace: first, Name: first + "-web-settings"}, &corev1.ConfigMap{}); !apierrors.IsNotFound(err) {
		t.Errorf("the old release's ConfigMap: %v, want it uninstalled", err)
	}
	var names []string
	for _, r := range releases(t, ns) {
		names = append(names, r.Name+" in "+r.Namespace)
	}
	if want := []string{second + "-web in " + second}; !slices.Equal(names, want) {
		t.Errorf("helm list in %s: %v, want %v", ns, names, want)
	}
	if _, ok := event(t, ns, "web", syncv2.ReasonUninstallSucceeded, "the release namespace changed"); !ok {
		t.Error("no UninstallSucceeded Event says the old release was uninstalled for the new target")
	}
}

// TestADeletedHelmReleaseGoesWhenWhatItsUninstallNeedsIsGone deletes,
// before the HelmRelease, what its uninstall needs: the ServiceAccount
// it acts as, with its RoleBinding, as a terminating namespace does, or
// the Secret of its spec.kubeConfig. The uninstall could only fail, so,
// as in Flux, the HelmRelease goes without it, and a Warning Event names
// the field and the release left installed.
func TestADeletedHelmReleaseGoesWhenWhatItsUninstallNeedsIsGone(t *testing.T) {
	startControllers(t)
	admin, err := cp.KubeconfigFor("helm-remote-admin", []string{"system:masters"})
	if err != nil {
		t.Fatal(err)
	}
	kubeconfig, err := os.ReadFile(admin)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		field string
		// needs are made before the HelmRelease, and deleted before it is.
		needs func(ns string) []client.Object
		spec  func(*syncv2.HelmReleaseSpec)
	}{
		{"the ServiceAccount it acts as", "spec.serviceAccountName", func(ns string) []client.Object {
			return []client.Object{
				&rbacv1.RoleBinding{
					ObjectMeta: metav1.ObjectMeta{Name: "deployer", Namespace: ns},
					RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: "deployer"},
					Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Name: "deployer", Namespace: ns}},
				},
				&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "deployer", Namespace: ns}},
			}
		}, func(s *syncv2.HelmReleaseSpec) { s.ServiceAccountName = "deployer" }},
		{"the Secret of its kubeConfig", "spec.kubeConfig.secretRef", func(ns string) []client.Object {
			return []client.Object{&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "cluster", Namespace: ns}, Data: map[string][]byte{"value": kubeconfig}}}
		}, func(s *syncv2.HelmReleaseSpec) {
			s.KubeConfig = &syncv1.KubeConfigReference{SecretRef: &syncv1.SecretKeyReference{Name: "cluster"}}
		}},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ns := fmt.Sprintf("helm-needs-gone-%d", i)
			namespaceWithRepo(t, ns, chartOf("1.0.0", map[string]string{"settings.yaml": settings}))
			create(t, &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: "deployer", Namespace: ns}, Rules: []rbacv1.PolicyRule{
				{APIGroups: []string{""}, Resources: []string{"secrets", "configmaps"}, Verbs: []string{"*"}},
			}})
			needs := tt.needs(ns)
			create(t, needs...)
			hr := helmRelease(ns, "web", "*", func(hr *syncv2.HelmRelease) { tt.spec(&hr.Spec) })
			create(t, hr)
			waitFor(t, hr, "installed", readyWith("1.0.0"))

			for _, o := range append(needs, hr) {
				if err := cp.Client.Delete(t.Context(), o); err != nil {
					t.Fatal(err)
				}
			}
			controlplane.Eventually(t, 30*time.Second, "the HelmRelease gone", func(ctx context.Context) (bool, string) {
				err := cp.Client.Get(ctx, client.ObjectKeyFromObject(hr), &syncv2.HelmRelease{})
				return apierrors.IsNotFound(err), fmt.Sprint(err)
			})
			e, ok := event(t, ns, "web", syncv2.ReasonUninstallSkipped, tt.field)
			if !ok || e.Type != corev1.EventTypeWarning || !strings.Contains(e.Note, "release "+ns+"/web") {
				t.Errorf("Event %+v, want a Warning naming %s and the release left installed", e, tt.field)
			}
			if !slices.ContainsFunc(releases(t, ns), func(r *releasev1.Release) bool { return r.Name == "web" }) {
				t.Error("the release the Event says is left installed is not in helm list")
			}
		})
	}
}
