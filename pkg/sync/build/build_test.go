package build

import (
	"sort"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/kustomize/api/types"
	"sigs.k8s.io/kustomize/kyaml/resid"
)

const deployment = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: podinfo
spec:
  replicas: ${REPLICAS:=2}
  selector:
    matchLabels: {app: podinfo}
  template:
    metadata:
      labels: {app: podinfo}
    spec:
      containers:
      - name: app
        image: ghcr.io/stefanprodan/podinfo:6.0.0
        env:
        - name: CLUSTER
          value: ${CLUSTER}
`

const service = `apiVersion: v1
kind: Service
metadata:
  name: podinfo
  annotations:
    kustomize.toolkit.fluxcd.io/substitute: disabled
    note: keeps ${CLUSTER} as written
spec:
  ports:
  - port: 80
`

func find(t *testing.T, objs []*unstructured.Unstructured, kind string) *unstructured.Unstructured {
	t.Helper()
	for _, o := range objs {
		if o.GetKind() == kind {
			return o
		}
	}
	t.Fatalf("no %s among %d objects", kind, len(objs))
	return nil
}

func TestBuildProducesWhatAFluxKustomizationWould(t *testing.T) {
	plain := map[string][]byte{"apps/podinfo/deploy.yaml": []byte(deployment), "apps/podinfo/svc.yml": []byte(service), "README.md": []byte("# not a manifest")}
	tests := []struct {
		name  string
		files map[string][]byte
		opts  Options
		check func(t *testing.T, objs []*unstructured.Unstructured)
	}{
		{"a folder without kustomization.yaml gets one from its manifests", plain, Options{Path: "apps/podinfo"}, func(t *testing.T, objs []*unstructured.Unstructured) {
			if len(objs) != 2 {
				t.Fatalf("%d objects, want the Deployment and the Service", len(objs))
			}
		}},
		{"an empty path builds the artifact's root", map[string][]byte{"deploy.yaml": []byte(deployment), "svc.yml": []byte(service)}, Options{}, func(t *testing.T, objs []*unstructured.Unstructured) {
			if len(objs) != 2 {
				t.Fatalf("%d objects, want the Deployment and the Service", len(objs))
			}
		}},
		{"targetNamespace moves every object", plain, Options{Path: "apps/podinfo", TargetNamespace: "prod"}, func(t *testing.T, objs []*unstructured.Unstructured) {
			for _, o := range objs {
				if o.GetNamespace() != "prod" {
					t.Errorf("%s in %q", o.GetKind(), o.GetNamespace())
				}
			}
		}},
		{"a strategic merge patch applies to its target", plain, Options{Path: "apps/podinfo", Patches: []types.Patch{{
			Patch:  "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: podinfo\nspec:\n  minReadySeconds: 7\n",
			Target: &types.Selector{ResId: resID("Deployment")},
		}}}, func(t *testing.T, objs []*unstructured.Unstructured) {
			if v, _, _ := unstructured.NestedInt64(find(t, objs, "Deployment").Object, "spec", "minReadySeconds"); v != 7 {
				t.Errorf("minReadySeconds %d", v)
			}
		}},
		{"a JSON 6902 patch applies to its target", plain, Options{Path: "apps/podinfo", Patches: []types.Patch{{
			Patch:  `[{"op": "replace", "path": "/spec/ports/0/port", "value": 8080}]`,
			Target: &types.Selector{ResId: resID("Service")},
		}}}, func(t *testing.T, objs []*unstructured.Unstructured) {
			ports, _, _ := unstructured.NestedSlice(find(t, objs, "Service").Object, "spec", "ports")
			if ports[0].(map[string]any)["port"] != int64(8080) {
				t.Errorf("ports %v", ports)
			}
		}},
		{"images set the tag", plain, Options{Path: "apps/podinfo", Images: []types.Image{{Name: "ghcr.io/stefanprodan/podinfo", NewTag: "6.1.0"}}}, func(t *testing.T, objs []*unstructured.Unstructured) {
			containers, _, _ := unstructured.NestedSlice(find(t, objs, "Deployment").Object, "spec", "template", "spec", "containers")
			if img := containers[0].(map[string]any)["image"]; img != "ghcr.io/stefanprodan/podinfo:6.1.0" {
				t.Errorf("image %v", img)
			}
		}},
		{"substitution fills variables and defaults, as numbers where they are numbers", plain, Options{Path: "apps/podinfo", Substitute: map[string]string{"CLUSTER": "eu-1"}}, func(t *testing.T, objs []*unstructured.Unstructured) {
			d := find(t, objs, "Deployment")
			if r, _, _ := unstructured.NestedInt64(d.Object, "spec", "replicas"); r != 2 {
				t.Errorf("replicas %v", d.Object["spec"].(map[string]any)["replicas"])
			}
			containers, _, _ := unstructured.NestedSlice(d.Object, "spec", "template", "spec", "containers")
			if env := containers[0].(map[string]any)["env"].([]any)[0].(map[string]any)["value"]; env != "eu-1" {
				t.Errorf("CLUSTER %v", env)
			}
			if note := find(t, objs, "Service").GetAnnotations()["note"]; note != "keeps ${CLUSTER} as written" {
				t.Errorf("an object with substitution disabled changed: %q", note)
			}
		}},
		{"a component applies from spec.components", map[string][]byte{
			"app/kustomization.yaml":               []byte("resources: [deploy.yaml]\n"),
			"app/deploy.yaml":                      []byte(deployment),
			"app/components/ha/kustomization.yaml": []byte("apiVersion: kustomize.config.k8s.io/v1alpha1\nkind: Component\nlabels:\n- pairs: {tier: ha}\n"),
		}, Options{Path: "app", Components: []string{"components/ha"}}, func(t *testing.T, objs []*unstructured.Unstructured) {
			if find(t, objs, "Deployment").GetLabels()["tier"] != "ha" {
				t.Errorf("labels %v", find(t, objs, "Deployment").GetLabels())
			}
		}},
		{"namePrefix and nameSuffix rename every object", plain, Options{Path: "apps/podinfo", NamePrefix: "eu-", NameSuffix: "-v2"}, func(t *testing.T, objs []*unstructured.Unstructured) {
			for _, o := range objs {
				if o.GetName() != "eu-podinfo-v2" {
					t.Errorf("%s named %s, want eu-podinfo-v2", o.GetKind(), o.GetName())
				}
			}
		}},
		{"commonMetadata labels and annotates every object but leaves selectors and pod templates alone", plain, Options{Path: "apps/podinfo", Labels: map[string]string{"team": "web"}, Annotations: map[string]string{"owner": "sre"}}, func(t *testing.T, objs []*unstructured.Unstructured) {
			for _, o := range objs {
				if o.GetLabels()["team"] != "web" || o.GetAnnotations()["owner"] != "sre" {
					t.Errorf("%s has labels %v and annotations %v", o.GetKind(), o.GetLabels(), o.GetAnnotations())
				}
			}
			sel, _, _ := unstructured.NestedStringMap(find(t, objs, "Deployment").Object, "spec", "selector", "matchLabels")
			if _, ok := sel["team"]; ok {
				t.Errorf("the Deployment's selector %v got the label", sel)
			}
			svcSel, _, _ := unstructured.NestedStringMap(find(t, objs, "Service").Object, "spec", "selector")
			if _, ok := svcSel["team"]; ok {
				t.Errorf("the Service's selector %v got the label", svcSel)
			}
			// A pod template that changed would roll the Deployment out.
			tpl, _, _ := unstructured.NestedMap(find(t, objs, "Deployment").Object, "spec", "template", "metadata")
			if labels, _ := tpl["labels"].(map[string]any); labels["team"] != nil {
				t.Errorf("the pod template got the label: %v", tpl)
			}
			if annotations, _ := tpl["annotations"].(map[string]any); annotations["owner"] != nil {
				t.Errorf("the pod template got the annotation: %v", tpl)
			}
		}},
		{"a sub-folder with its own kustomization.yaml is one resource, built by its kustomization, as Flux lists it", map[string][]byte{
			"clusters/dev/sluice-system/kustomization.yaml": []byte("resources: [deploy.yaml]\n"),
			"clusters/dev/sluice-system/deploy.yaml":        []byte(deployment),
			"clusters/dev/sluice-system/ignored.yaml":       []byte(service),
			"clusters/dev/apps/svc.yaml":                    []byte(service),
		}, Options{Path: "clusters/dev"}, func(t *testing.T, objs []*unstructured.Unstructured) {
			var kinds []string
			for _, o := range objs {
				kinds = append(kinds, o.GetKind())
			}
			sort.Strings(kinds)
			if strings.Join(kinds, ",") != "Deployment,Service" {
				t.Errorf("objects %v, want the sub-kustomization's Deployment and the plain Service only", kinds)
			}
		}},
		{"a missing component is dropped with ignoreMissingComponents", map[string][]byte{
			"app/kustomization.yaml":               []byte("resources: [deploy.yaml]\n"),
			"app/deploy.yaml":                      []byte(deployment),
			"app/components/ha/kustomization.yaml": []byte("apiVersion: kustomize.config.k8s.io/v1alpha1\nkind: Component\nlabels:\n- pairs: {tier: ha}\n"),
		}, Options{Path: "app", Components: []string{"components/ha", "components/tls"}, IgnoreMissingComponents: true}, func(t *testing.T, objs []*unstructured.Unstructured) {
			if find(t, objs, "Deployment").GetLabels()["tier"] != "ha" {
				t.Errorf("the component that exists was not applied: labels %v", find(t, objs, "Deployment").GetLabels())
			}
		}},
		{"substituteStrategy Always fills defaults with no variables", plain, Options{Path: "apps/podinfo", SubstituteAlways: true}, func(t *testing.T, objs []*unstructured.Unstructured) {
			if r, _, _ := unstructured.NestedInt64(find(t, objs, "Deployment").Object, "spec", "replicas"); r != 2 {
				t.Errorf("replicas %v, want the default 2", find(t, objs, "Deployment").Object["spec"].(map[string]any)["replicas"])
			}
		}},
		{"originAnnotations says which file of spec.path each object came from", plain, Options{Path: "apps/podinfo", BuildMetadata: []string{"originAnnotations"}}, func(t *testing.T, objs []*unstructured.Unstructured) {
			if origin := find(t, objs, "Deployment").GetAnnotations()["config.kubernetes.io/origin"]; origin != "path: deploy.yaml\n" {
				t.Errorf("origin %q, want path: deploy.yaml", origin)
			}
		}},
		{"transformerAnnotations says which transformers changed an object", plain, Options{Path: "apps/podinfo", TargetNamespace: "prod", BuildMetadata: []string{"transformerAnnotations"}}, func(t *testing.T, objs []*unstructured.Unstructured) {
			if got := find(t, objs, "Deployment").GetAnnotations()["alpha.config.kubernetes.io/transformations"]; !strings.Contains(got, "NamespaceTransformer") {
				t.Errorf("transformations %q, want the NamespaceTransformer", got)
			}
		}},
		{"an existing kustomization.yaml is used as written", map[string][]byte{
			"app/kustomization.yaml": []byte("resources: [deploy.yaml]\nconfigMapGenerator:\n- name: settings\n  literals: [mode=fast]\n"),
			"app/deploy.yaml":        []byte(deployment),
			"app/ignored.yaml":       []byte(service),
		}, Options{Path: "app"}, func(t *testing.T, objs []*unstructured.Unstructured) {
			cm := find(t, objs, "ConfigMap")
			if !strings.HasPrefix(cm.GetName(), "settings-") || len(objs) != 2 {
				t.Errorf("objects %d, ConfigMap %s", len(objs), cm.GetName())
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			objs, err := Build(tt.files, tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, objs)
		})
	}
}

func TestABadBuildSaysWhere(t *testing.T) {
	tests := []struct {
		name  string
		files map[string][]byte
		opts  Options
		want  string
	}{
		{"a missing path names spec.path", map[string][]byte{"a.yaml": []byte(service)}, Options{Path: "nope"}, `spec.path "nope"`},
		{"a broken manifest names the file", map[string][]byte{"app/bad.yaml": []byte("kind: [\n")}, Options{Path: "app"}, "bad.yaml"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Build(tt.files, tt.opts)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want it to mention %q", err, tt.want)
			}
		})
	}
}

func resID(kind string) resid.ResId {
	return resid.ResId{Gvk: resid.Gvk{Kind: kind}, Name: "podinfo"}
}

// Substitution works on the YAML kustomize writes from JSON, where the
// quotes of "${VAR}" are gone, so YAML types the value, as in Flux.
func TestASubstitutedValueIsTypedByYAMLAsFluxTypesIt(t *testing.T) {
	for _, tc := range []struct {
		value string
		want  any
	}{
		{"eu-1", "eu-1"},
		{"Y", true},
		{"no", false},
		{"42", int64(42)},
	} {
		t.Run(tc.value, func(t *testing.T) {
			files := map[string][]byte{"app/cm.yaml": []byte("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  cluster: \"${CLUSTER}\"\n")}
			objs, err := Build(files, Options{Path: "app", Substitute: map[string]string{"CLUSTER": tc.value}})
			if err != nil {
				t.Fatal(err)
			}
			if got := objs[0].Object["data"].(map[string]any)["cluster"]; got != tc.want {
				t.Fatalf("%q landed as %#v, want %#v", tc.value, got, tc.want)
			}
		})
	}
}
