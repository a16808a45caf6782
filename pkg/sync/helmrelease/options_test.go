package helmrelease_test

import (
	"context"
	"fmt"
	"maps"
	"strings"
	"testing"
	"time"

	"helm.sh/helm/v4/pkg/chart/common"
	chart "helm.sh/helm/v4/pkg/chart/v2"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	sourcev1 "sluice.dev/sluice/api/source/v1"
	syncv2 "sluice.dev/sluice/api/sync/v2"
	"sluice.dev/sluice/test/helmrepo"
)

// widgetCRD is a CRD of group <group> whose one version has the given
// description, as a chart ships it in crds/.
func widgetCRD(group, kind, description string) string {
	plural := strings.ToLower(kind) + "s"
	return fmt.Sprintf(`apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: %[3]s.%[1]s
spec:
  group: %[1]s
  names: {kind: %[2]s, plural: %[3]s}
  scope: Namespaced
  versions:
    - name: v1
      served: true
      storage: true
      schema:
        openAPIV3Schema:
          type: object
          description: %[4]s
          x-kubernetes-preserve-unknown-fields: true
`, group, kind, plural, description)
}

// customObject is a template of an object of the kind of widgetCRD.
func customObject(group, kind string) string {
	return fmt.Sprintf("apiVersion: %s/v1\nkind: %s\nmetadata:\n  name: '{{ .Release.Name }}-%s'\nspec: {size: 1}\n", group, kind, strings.ToLower(kind))
}

// chartWithCRDs is chart "app" at version with the CRDs in crds/, and
// templates beside the settings.
func chartWithCRDs(version string, crds, templates map[string]string) *chart.Chart {
	all := map[string]string{"settings.yaml": settings}
	maps.Copy(all, templates)
	ch := helmrepo.NewChart("app", version, all, defaults)
	for name, data := range crds {
		ch.Files = append(ch.Files, &common.File{Name: "crds/" + name, Data: []byte(data)})
	}
	return ch
}

func crdDescription(t *testing.T, name string) (string, bool) {
	t.Helper()
	crd := &apiextensionsv1.CustomResourceDefinition{}
	if err := cp.Client.Get(t.Context(), client.ObjectKey{Name: name}, crd); apierrors.IsNotFound(err) {
		return "", false
	} else if err != nil {
		t.Fatal(err)
	}
	return crd.Spec.Versions[0].Schema.OpenAPIV3Schema.Description, true
}

// TestTheChartsCRDsAreInstalledAndUpgradedAsInstallAndUpgradeCRDsSay
// releases a chart with a crds/ folder: install.crds Create (the default)
// creates them, Skip does not, and CreateReplace also updates one that is
// there already, which Helm's own install never does; upgrade.crds
// CreateReplace updates those that changed and creates the new ones,
// which Helm's own upgrade never does. Objects of a kind the chart's CRDs
// bring are released with them, on install and on upgrade.
func TestTheChartsCRDsAreInstalledAndUpgradedAsInstallAndUpgradeCRDsSay(t *testing.T) {
	const ns = "helm-crds"
	group := "crds.helm.sluice.test"
	t.Cleanup(func() {
		for _, name := range []string{"widgets." + group, "gadgets." + group, "things." + group} {
			_ = cp.Client.Delete(context.Background(), &apiextensionsv1.CustomResourceDefinition{ObjectMeta: metav1.ObjectMeta{Name: name}})
		}
	})
	repo := helmrepo.NewHTTP(t)
	repo.Add(t, chartWithCRDs("1.0.0", map[string]string{"widgets.yaml": widgetCRD(group, "Widget", "first")}, nil))
	create(t,
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}},
		&sourcev1.HelmRepository{ObjectMeta: metav1.ObjectMeta{Name: "charts", Namespace: ns}, Spec: sourcev1.HelmRepositorySpec{URL: repo.URL, Interval: metav1.Duration{Duration: time.Hour}}},
	)
	startControllers(t)

	skipped := helmRelease(ns, "skipped", "1.0.0", func(hr *syncv2.HelmRelease) {
		hr.Spec.Install = &syncv2.Install{CRDs: "Skip"}
		hr.Spec.ReleaseName = "skipped"
	})
	create(t, skipped)
	waitFor(t, skipped, "installed without its CRDs", readyWith("1.0.0"))
	if _, ok := crdDescription(t, "widgets."+group); ok {
		t.Fatal("install.crds Skip installed the chart's CRDs")
	}
	if err := cp.Client.Delete(t.Context(), skipped); err != nil {
		t.Fatal(err)
	}

	hr := helmRelease(ns, "web", "1.x", func(hr *syncv2.HelmRelease) {
		hr.Spec.Upgrade = &syncv2.Upgrade{CRDs: "CreateReplace"}
	})
	create(t, hr)
	waitFor(t, hr, "installed", readyWith("1.0.0"))
	if d, ok := crdDescription(t, "widgets."+group); !ok || d != "first" {
		t.Fatalf("after the install the Widget CRD is there %v, described %q; want the chart's", ok, d)
	}

	repo.Add(t, chartWithCRDs("1.1.0", map[string]string{
		"widgets.yaml": widgetCRD(group, "Widget", "second"),
		"gadgets.yaml": widgetCRD(group, "Gadget", "new"),
	}, map[string]string{"gadget.yaml": customObject(group, "Gadget")}))
	waitFor(t, hr, "upgraded", readyWith("1.1.0"))
	if d, _ := crdDescription(t, "widgets."+group); d != "second" {
		t.Errorf("upgrade.crds CreateReplace left the Widget CRD described %q, want the new chart's", d)
	}
	if d, ok := crdDescription(t, "gadgets."+group); !ok || d != "new" {
		t.Errorf("upgrade.crds CreateReplace did not create the new Gadget CRD (%v, %q)", ok, d)
	}
	customObjectExists(t, group, "Gadget", ns, "web-gadget")

	// A CRD that is there already, older than the chart's, is updated by
	// an install under install.crds CreateReplace.
	older := &apiextensionsv1.CustomResourceDefinition{}
	if err := yaml.Unmarshal([]byte(widgetCRD(group, "Thing", "older")), older); err != nil {
		t.Fatal(err)
	}
	create(t, older)
	repo.Add(t, chartWithCRDs("2.0.0", map[string]string{"things.yaml": widgetCRD(group, "Thing", "from the chart")},
		map[string]string{"thing.yaml": customObject(group, "Thing")}))
	replaced := helmRelease(ns, "replaced", "2.0.0", func(hr *syncv2.HelmRelease) {
		hr.Spec.Install = &syncv2.Install{CRDs: "CreateReplace"}
	})
	create(t, replaced)
	waitFor(t, replaced, "installed", readyWith("2.0.0"))
	if d, _ := crdDescription(t, "things."+group); d != "from the chart" {
		t.Errorf("install.crds CreateReplace left the Thing CRD described %q, want the chart's", d)
	}
	customObjectExists(t, group, "Thing", ns, "replaced-thing")
}

// customObjectExists fails the test unless the object of kind (a
// widgetCRD's) is there.
func customObjectExists(t *testing.T, group, kind, ns, name string) {
	t.Helper()
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(schema.GroupVersionKind{Group: group, Version: "v1", Kind: kind})
	if err := cp.Client.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: name}, u); err != nil {
		t.Errorf("the %s the chart releases: %v", kind, err)
	}
}

// TestPreserveValuesKeepsTheLastReleasesValues upgrades with
// upgrade.preserveValues: values given before stay unless given again.
func TestPreserveValuesKeepsTheLastReleasesValues(t *testing.T) {
	const ns = "helm-preserve"
	namespaceWithRepo(t, ns, chartOf("1.0.0", map[string]string{"settings.yaml": settings}))
	startControllers(t)
	hr := helmRelease(ns, "web", "1.0.0", func(hr *syncv2.HelmRelease) {
		hr.Spec.Values = &apiextensionsv1.JSON{Raw: []byte(`{"greeting": "hello"}`)}
		hr.Spec.Upgrade = &syncv2.Upgrade{PreserveValues: true}
	})
	create(t, hr)
	waitFor(t, hr, "installed", readyWith("1.0.0"))

	change(t, hr, func(hr *syncv2.HelmRelease) {
		hr.Spec.Values = &apiextensionsv1.JSON{Raw: []byte(`{"auth": {"password": "s3cret"}}`)}
	})
	waitFor(t, hr, "upgraded with the new values", func(hr *syncv2.HelmRelease) bool {
		return readyWith("1.0.0")(hr) && hr.Status.History[0].Version == 2
	})
	if data := configMap(t, ns, "web-settings"); data["greeting"] != "hello" || data["password"] != "s3cret" {
		t.Fatalf("with preserveValues the release renders %v, want the old greeting and the new password", data)
	}
}

// TestRollbackRecreateIsAcceptedAsFluxAcceptsIt: Helm 4 removed pod
// recreation, and Flux v2.8 and later accept the field with no effect.
func TestRollbackRecreateIsAcceptedAsFluxAcceptsIt(t *testing.T) {
	hr := helmRelease("default", "recreate", "1.0.0", func(hr *syncv2.HelmRelease) {
		hr.Spec.Rollback = &syncv2.Rollback{Recreate: true}
	})
	if err := cp.Client.Create(t.Context(), hr); err != nil {
		t.Fatalf("creating a HelmRelease with rollback.recreate: %v", err)
	}
	got := &syncv2.HelmRelease{}
	if err := cp.Client.Get(t.Context(), client.ObjectKeyFromObject(hr), got); err != nil || got.Spec.Rollback == nil || !got.Spec.Rollback.Recreate {
		t.Fatalf("read back %+v, %v: want rollback.recreate kept", got.Spec.Rollback, err)
	}
	if err := cp.Client.Delete(t.Context(), hr); err != nil {
		t.Fatal(err)
	}
}
