package e2e_test

import (
	"maps"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"

	"helm.sh/helm/v4/pkg/action"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"sluice.dev/sluice/test/controlplane"
)

var (
	cp *controlplane.ControlPlane
	// workDir holds what the tests build once, such as the operator binary.
	workDir string
)

func TestMain(m *testing.M) {
	var err error
	if workDir, err = os.MkdirTemp("", "sluice-e2e-"); err != nil {
		panic(err)
	}
	code := controlplane.RunTests(m, controlplane.Options{APIOnly: true}, &cp)
	_ = os.RemoveAll(workDir)
	os.Exit(code)
}

// installKinds is what both install paths must render.
var installKinds = map[string]int{
	"CustomResourceDefinition": 17, // Canary, MetricTemplate, AlertProvider, ReleasePolicy, GitRepository, HelmRepository, HelmChart, OCIRepository, Bucket, Kustomization, HelmRelease, Receiver, Provider, Alert, ImageRepository, ImagePolicy, ImageUpdateAutomation
	"ServiceAccount":           1,
	"ClusterRole":              1,
	"ClusterRoleBinding":       1,
	"Role":                     1,
	"RoleBinding":              1,
	"Deployment":               1,
	"Service":                  2, // metrics and the webhook receiver
}

func TestInstallManifests(t *testing.T) {
	kustomized := kustomizeBuild(t)
	const chartNamespace = "sluice-helm"
	if err := cp.Client.Create(t.Context(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: chartNamespace}}); err != nil {
		t.Fatal(err)
	}
	charted := helmTemplate(t, chartNamespace, nil)

	t.Run("kustomize renders the namespace, CRDs, RBAC and operator", func(t *testing.T) {
		want := maps.Clone(installKinds)
		want["Namespace"] = 1
		if got := kindsOf(kustomized); !reflect.DeepEqual(got, want) {
			t.Fatalf("kinds %v, want %v", got, want)
		}
		for _, o := range kustomized {
			if ns := o.GetNamespace(); ns != "" && ns != "sluice-system" {
				t.Errorf("%s %s is in namespace %s, want sluice-system", o.GetKind(), o.GetName(), ns)
			}
		}
	})

	t.Run("the Helm chart renders the same kinds", func(t *testing.T) {
		if got := kindsOf(charted); !reflect.DeepEqual(got, installKinds) {
			t.Fatalf("kinds %v, want %v", got, installKinds)
		}
	})

	t.Run("both grant the same cluster permissions, none of them a wildcard", func(t *testing.T) {
		kr, hr := find(kustomized, "ClusterRole").Object["rules"], find(charted, "ClusterRole").Object["rules"]
		if !reflect.DeepEqual(kr, hr) {
			t.Fatalf("kustomize rules %v\nhelm rules %v", kr, hr)
		}
		noWildcard(t, kr)
		noWildcard(t, find(kustomized, "Role").Object["rules"])
		noWildcard(t, find(charted, "Role").Object["rules"])
	})

	t.Run("both grant Secrets exactly the verbs the code needs, and only cluster-wide", func(t *testing.T) {
		// Why each verb: get, list and watch feed the informer that reads
		// the credentials of MetricTemplates, AlertProviders, Providers,
		// Receivers and sources, and a target's tracked Secrets; create
		// and patch copy a tracked Secret to its -primary copy
		// (controllerutil.CreateOrPatch) and server-side apply the Secrets
		// of a Kustomization; update is Helm's storage driver writing a
		// release's record; delete prunes a Kustomization's Secrets and
		// Helm's records of uninstalled or expired releases.
		want := []string{"create", "delete", "get", "list", "patch", "update", "watch"}
		for name, objs := range map[string][]*unstructured.Unstructured{"kustomize": kustomized, "helm": charted} {
			if got := verbsOn(find(objs, "ClusterRole").Object["rules"], "", "secrets"); !slices.Equal(got, want) {
				t.Errorf("%s: the ClusterRole grants secrets %v, want %v", name, got, want)
			}
			if got := verbsOn(find(objs, "Role").Object["rules"], "", "secrets"); len(got) > 0 {
				t.Errorf("%s: the Role grants secrets %v besides", name, got)
			}
		}
	})

	t.Run("the Helm chart grants the external metrics it is given, by name", func(t *testing.T) {
		objs := helmTemplate(t, chartNamespace, map[string]any{"rbac": map[string]any{"externalMetrics": []any{"s0-prometheus-http_requests"}}})
		var role *unstructured.Unstructured
		for _, o := range objs {
			if o.GetKind() == "ClusterRole" && o.GetName() == "sluice-external-metrics" {
				role = o
			}
		}
		if role == nil {
			t.Fatal("no external metrics ClusterRole")
		}
		rules := role.Object["rules"]
		noWildcard(t, rules)
		rule := rules.([]any)[0].(map[string]any)
		if got := toStrings(rule["resources"]); !reflect.DeepEqual(got, []string{"s0-prometheus-http_requests"}) {
			t.Fatalf("resources %v", got)
		}
		if kindsOf(objs)["ClusterRoleBinding"] != 2 {
			t.Fatalf("kinds %v, want the external metrics ClusterRole bound", kindsOf(objs))
		}
		lint := action.NewLint()
		if result := lint.Run([]string{chartPath()}, map[string]any{"rbac": map[string]any{"externalMetrics": []any{"*"}}}); len(result.Errors) == 0 {
			t.Fatal("a wildcard external metric passed the values schema")
		}
	})

	t.Run("both run the operator hardened", func(t *testing.T) {
		for name, objs := range map[string][]*unstructured.Unstructured{"kustomize": kustomized, "helm": charted} {
			d := find(objs, "Deployment")
			container := d.Object["spec"].(map[string]any)["template"].(map[string]any)["spec"].(map[string]any)["containers"].([]any)[0].(map[string]any)
			sc := container["securityContext"].(map[string]any)
			if sc["readOnlyRootFilesystem"] != true || sc["allowPrivilegeEscalation"] != false {
				t.Errorf("%s: container securityContext %v", name, sc)
			}
			if _, ok := container["resources"].(map[string]any)["requests"]; !ok {
				t.Errorf("%s: no resource requests", name)
			}
			args := strings.Join(toStrings(container["args"]), " ")
			if !strings.Contains(args, "--leader-elect=true") {
				t.Errorf("%s: leader election is not on: %s", name, args)
			}
		}
	})

	t.Run("the API server accepts the kustomize objects in a server-side dry-run", func(t *testing.T) {
		// A dry-run Namespace is not stored, and namespaced objects need it.
		apply(t, []*unstructured.Unstructured{find(kustomized, "Namespace")})
		apply(t, kustomized, client.DryRunAll)
	})

	t.Run("the API server accepts the Helm objects in a server-side dry-run", func(t *testing.T) {
		apply(t, charted, client.DryRunAll)
	})

	t.Run("the Helm chart lints clean", func(t *testing.T) {
		lint := action.NewLint()
		lint.Strict = true
		lint.Namespace = chartNamespace
		result := lint.Run([]string{chartPath()}, nil)
		if len(result.Errors) > 0 || result.TotalChartsLinted != 1 {
			t.Fatalf("lint: %d charts linted, errors %v", result.TotalChartsLinted, result.Errors)
		}
		for _, m := range result.Messages {
			t.Logf("lint: %s", m)
		}
	})

	t.Run("the Helm chart honours its values", func(t *testing.T) {
		objs := helmTemplate(t, chartNamespace, map[string]any{
			"watchNamespace":  "apps",
			"defaultProvider": "istio",
			"leaderElection":  map[string]any{"enabled": false},
			"rbac":            map[string]any{"create": false},
		})
		d := find(objs, "Deployment")
		args := toStrings(d.Object["spec"].(map[string]any)["template"].(map[string]any)["spec"].(map[string]any)["containers"].([]any)[0].(map[string]any)["args"])
		for _, want := range []string{"--namespace=apps", "--default-provider=istio", "--leader-elect=false"} {
			if !slices.Contains(args, want) {
				t.Errorf("args %v lack %s", args, want)
			}
		}
		if slices.ContainsFunc(args, func(a string) bool { return strings.HasPrefix(a, "--leader-election-") }) {
			t.Errorf("args %v set lease timings with leader election off", args)
		}
		leased := helmTemplate(t, chartNamespace, map[string]any{"leaderElection": map[string]any{"leaseDuration": "8s", "renewDeadline": "6s", "retryPeriod": "1s"}})
		args = toStrings(find(leased, "Deployment").Object["spec"].(map[string]any)["template"].(map[string]any)["spec"].(map[string]any)["containers"].([]any)[0].(map[string]any)["args"])
		for _, want := range []string{"--leader-elect=true", "--leader-election-lease-duration=8s", "--leader-election-renew-deadline=6s", "--leader-election-retry-period=1s"} {
			if !slices.Contains(args, want) {
				t.Errorf("args %v lack %s", args, want)
			}
		}
		if find(objs, "ClusterRole") != nil || find(objs, "Role") != nil {
			t.Errorf("rbac.create=false still renders roles")
		}
	})

	t.Run("the Helm chart rejects values outside its schema", func(t *testing.T) {
		lint := action.NewLint()
		result := lint.Run([]string{chartPath()}, map[string]any{"defaultProvider": "envoy"})
		if len(result.Errors) == 0 {
			t.Fatal("an unknown default provider passed the values schema")
		}
	})
}

// noWildcard fails the test for a rule that grants any verb, group,
// resource or resource name as *.
func noWildcard(t *testing.T, rules any) {
	t.Helper()
	for _, r := range rules.([]any) {
		rule := r.(map[string]any)
		for _, field := range []string{"verbs", "apiGroups", "resources", "resourceNames", "nonResourceURLs"} {
			values, _ := rule[field].([]any)
			for _, v := range values {
				if s, _ := v.(string); s == "*" || strings.HasSuffix(s, "/*") {
					t.Errorf("rule %v grants %s %s", rule, field, s)
				}
			}
		}
	}
}

// verbsOn lists, sorted, the verbs that rules grant on resource of group,
// by name or as a wildcard.
func verbsOn(rules any, group, resource string) []string {
	verbs := map[string]bool{}
	for _, r := range rules.([]any) {
		rule := r.(map[string]any)
		groups, _ := rule["apiGroups"].([]any)
		resources, _ := rule["resources"].([]any)
		if !slices.ContainsFunc(groups, func(g any) bool { return g == group || g == "*" }) ||
			!slices.ContainsFunc(resources, func(r any) bool { return r == resource || r == "*" }) {
			continue
		}
		for _, v := range toStrings(rule["verbs"]) {
			verbs[v] = true
		}
	}
	out := slices.Collect(maps.Keys(verbs))
	slices.Sort(out)
	return out
}

func toStrings(v any) []string {
	var out []string
	for _, s := range v.([]any) {
		out = append(out, s.(string))
	}
	return out
}
