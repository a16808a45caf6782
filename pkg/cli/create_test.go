package cli_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	imagev1 "sluice.dev/sluice/api/image/v1"
	sourcev1 "sluice.dev/sluice/api/source/v1"
	syncv1 "sluice.dev/sluice/api/sync/v1"
	syncv2 "sluice.dev/sluice/api/sync/v2"
	sluicev1beta1 "sluice.dev/sluice/api/v1beta1"
	"sluice.dev/sluice/pkg/cli"
)

func TestCreateExport(t *testing.T) {
	ns := newNamespace(t)
	values := filepath.Join(t.TempDir(), "values.yaml")
	if err := os.WriteFile(values, []byte("replicaCount: 2\nui:\n  color: '#34577c'\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		args  []string
		obj   client.Object
		check func(t *testing.T, obj client.Object)
	}{
		{
			name: "a GitRepository has its URL, branch, interval and secret",
			args: []string{"create", "source", "git", "podinfo", "--url", "https://github.com/stefanprodan/podinfo", "--branch", "master", "--interval", "5m", "--secret-ref", "git-auth"},
			obj:  &sourcev1.GitRepository{},
			check: func(t *testing.T, obj client.Object) {
				r := obj.(*sourcev1.GitRepository)
				if r.Spec.URL != "https://github.com/stefanprodan/podinfo" || r.Spec.Reference.Branch != "master" || r.Spec.Interval.Duration != 5*time.Minute || r.Spec.SecretRef.Name != "git-auth" {
					t.Errorf("got spec %+v", r.Spec)
				}
			},
		},
		{
			name: "a GitRepository may follow a semver range",
			args: []string{"create", "source", "git", "podinfo", "--url", "ssh://git@github.com/stefanprodan/podinfo", "--semver", ">=6.0.0 <7.0.0"},
			obj:  &sourcev1.GitRepository{},
			check: func(t *testing.T, obj client.Object) {
				r := obj.(*sourcev1.GitRepository)
				if r.Spec.Reference.SemVer != ">=6.0.0 <7.0.0" || r.Spec.Interval.Duration != time.Minute {
					t.Errorf("got spec %+v", r.Spec)
				}
			},
		},
		{
			name: "an ImageRepository has its image, interval, credentials and exclusions",
			args: []string{"create", "image", "repository", "podinfo", "--image", "ghcr.io/stefanprodan/podinfo", "--interval", "5m", "--secret-ref", "regcred", "--exclusion-list", "^.*\\.sig$,^dev-"},
			obj:  &imagev1.ImageRepository{},
			check: func(t *testing.T, obj client.Object) {
				r := obj.(*imagev1.ImageRepository)
				if r.Spec.Image != "ghcr.io/stefanprodan/podinfo" || r.Spec.Interval.Duration != 5*time.Minute || r.Spec.SecretRef.Name != "regcred" || len(r.Spec.ExclusionList) != 2 {
					t.Errorf("got spec %+v", r.Spec)
				}
			},
		},
		{
			name: "an ImagePolicy has its repository, rule and tag filter",
			args: []string{"create", "image", "policy", "podinfo", "--image-ref", "podinfo", "--select-numeric", "asc", "--filter-regex", "^main-[a-f0-9]+-(?P<ts>[0-9]+)", "--filter-extract", "$ts"},
			obj:  &imagev1.ImagePolicy{},
			check: func(t *testing.T, obj client.Object) {
				p := obj.(*imagev1.ImagePolicy)
				if p.Spec.ImageRepositoryRef.Name != "podinfo" || p.Spec.Policy.Numerical == nil || p.Spec.Policy.Numerical.Order != "asc" || p.Spec.FilterTags.Extract != "$ts" {
					t.Errorf("got spec %+v", p.Spec)
				}
			},
		},
		{
			name: "an ImageUpdateAutomation has its source, path, branches, author and canary failure action",
			args: []string{"create", "image", "update", "apps", "--git-repo-ref", "fleet", "--git-repo-path", "./clusters/prod", "--checkout-branch", "main", "--push-branch", "auto",
				"--author-name", "sluice", "--author-email", "sluice@example.com", "--commit-template", "{{ range .Changed.Changes }}{{ .NewValue }}{{ end }}", "--on-canary-failure", "Revert"},
			obj: &imagev1.ImageUpdateAutomation{},
			check: func(t *testing.T, obj client.Object) {
				a := obj.(*imagev1.ImageUpdateAutomation)
				if a.Spec.SourceRef.Name != "fleet" || a.Spec.Update.Path != "./clusters/prod" || a.Spec.GitSpec.Checkout.Reference.Branch != "main" ||
					a.Spec.GitSpec.Push.Branch != "auto" || a.Spec.GitSpec.Commit.Author.Email != "sluice@example.com" || a.Spec.OnCanaryFailure != "Revert" {
					t.Errorf("got spec %+v", a.Spec)
				}
			},
		},
		{
			name: "a Kustomization has its source, path, prune, wait and dependencies",
			args: []string{"create", "kustomization", "apps", "--source", "GitRepository/flux-system/podinfo", "--path", "./kustomize", "--prune", "--wait",
				"--target-namespace", "prod", "--depends-on", "infra,monitoring/prometheus", "--service-account", "deployer", "--interval", "10m"},
			obj: &syncv1.Kustomization{},
			check: func(t *testing.T, obj client.Object) {
				k := obj.(*syncv1.Kustomization)
				want := syncv1.KustomizationSpec{
					SourceRef: syncv1.CrossNamespaceSourceReference{Kind: "GitRepository", Namespace: "flux-system", Name: "podinfo"},
					Path:      "./kustomize", Interval: metav1.Duration{Duration: 10 * time.Minute}, Prune: true, Wait: true,
					TargetNamespace: "prod", ServiceAccountName: "deployer",
					DependsOn: []syncv1.DependencyReference{{Name: "infra"}, {Namespace: "monitoring", Name: "prometheus"}},
				}
				if got, _ := json.Marshal(k.Spec); string(got) != string(must(json.Marshal(want))) {
					t.Errorf("got spec %s, want %s", got, must(json.Marshal(want)))
				}
			},
		},
		{
			name: "a HelmRelease has its chart, version and the values of the file",
			args: []string{"create", "helmrelease", "podinfo", "--source", "HelmRepository/podinfo", "--chart", "podinfo", "--chart-version", ">=6.0.0", "--values", values, "--target-namespace", "prod"},
			obj:  &syncv2.HelmRelease{},
			check: func(t *testing.T, obj client.Object) {
				hr := obj.(*syncv2.HelmRelease)
				c := hr.Spec.Chart.Spec
				if c.Chart != "podinfo" || c.Version != ">=6.0.0" || c.SourceRef.Kind != "HelmRepository" || c.SourceRef.Name != "podinfo" || hr.Spec.TargetNamespace != "prod" {
					t.Errorf("got spec %+v", hr.Spec)
				}
				if got := string(hr.Spec.Values.Raw); got != `{"replicaCount":2,"ui":{"color":"#34577c"}}` {
					t.Errorf("got values %s", got)
				}
			},
		},
		{
			name: "a Canary has its target, port, weights and metrics",
			args: []string{"create", "canary", "podinfo", "--target-ref", "Deployment/podinfo", "--provider", "gatewayapi:v1", "--port", "9898", "--interval", "30s",
				"--threshold", "3", "--max-weight", "60", "--step-weight", "20", "--metric", "request-success-rate:min=99", "--metric", "request-duration:max=500,interval=1m"},
			obj: &sluicev1beta1.Canary{},
			check: func(t *testing.T, obj client.Object) {
				c := obj.(*sluicev1beta1.Canary)
				a := c.Spec.Analysis
				if c.Spec.TargetRef != (sluicev1beta1.TargetReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "podinfo"}) || c.Spec.Provider != "gatewayapi:v1" || c.Spec.Service.Port != 9898 || c.Spec.Service.TargetPort.IntValue() != 9898 {
					t.Errorf("got spec %+v", c.Spec)
				}
				if a.Interval != "30s" || a.Threshold != 3 || a.MaxWeight != 60 || a.StepWeight != 20 || a.Iterations != 0 {
					t.Errorf("got analysis %+v", a)
				}
				if len(a.Metrics) != 2 || *a.Metrics[0].ThresholdRange.Min != 99 || a.Metrics[0].ThresholdRange.Max != nil ||
					*a.Metrics[1].ThresholdRange.Max != 500 || a.Metrics[1].Interval != "1m" {
					t.Errorf("got metrics %s", must(json.Marshal(a.Metrics)))
				}
			},
		},
		{
			name: "a Canary with iterations has no weights",
			args: []string{"create", "canary", "podinfo", "--target-ref", "DaemonSet/agent", "--port", "8080", "--target-port", "http", "--iterations", "10"},
			obj:  &sluicev1beta1.Canary{},
			check: func(t *testing.T, obj client.Object) {
				c := obj.(*sluicev1beta1.Canary)
				a := c.Spec.Analysis
				if c.Spec.TargetRef.Kind != "DaemonSet" || c.Spec.Service.TargetPort.String() != "http" || a.Iterations != 10 || a.StepWeight != 0 || a.MaxWeight != 0 || a.Threshold != 5 || a.Interval != "1m" {
					t.Errorf("got spec %+v, analysis %+v", c.Spec, a)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := run(t, append(tt.args, "--export", "-n", ns)...).mustSucceed(t)
			if !strings.HasPrefix(r.out, "---\n") {
				t.Errorf("the export does not start a YAML document:\n%s", r.out)
			}
			for _, noise := range []string{"status", "creationTimestamp", "resourceVersion"} {
				if strings.Contains(r.out, noise) {
					t.Errorf("the export has %s:\n%s", noise, r.out)
				}
			}
			// Strict: every field of the export is one of the type's.
			if err := yaml.UnmarshalStrict([]byte(strings.TrimPrefix(r.out, "---\n")), tt.obj); err != nil {
				t.Fatalf("parse the export: %v\n%s", err, r.out)
			}
			if tt.obj.GetNamespace() != ns || tt.obj.GetObjectKind().GroupVersionKind().Kind == "" {
				t.Errorf("got %s in namespace %q, want a kind in %s", tt.obj.GetName(), tt.obj.GetNamespace(), ns)
			}
			tt.check(t, tt.obj)
			if err := cp.Client.Create(t.Context(), tt.obj, client.DryRunAll); err != nil {
				t.Errorf("the API server refuses the export: %v\n%s", err, r.out)
			}
		})
	}
}

func must(b []byte, err error) []byte {
	if err != nil {
		panic(err)
	}
	return b
}

func TestCreateRefusesBadFlags(t *testing.T) {
	git := []string{"create", "source", "git", "app"}
	url := []string{"--url", "https://git.example.com/app.git"}
	canary := []string{"create", "canary", "app", "--target-ref", "Deployment/app", "--port", "80"}
	tests := []struct {
		name string
		args []string
		err  string
	}{
		{"a GitRepository needs --url", append(git, "--branch", "main"), `required flag(s) "url" not set`},
		{"a GitRepository needs a ref", append(git, url...), "[branch tag semver commit] is required"},
		{"--branch and --tag exclude each other", append(git, append(url, "--branch", "main", "--tag", "v1")...), "[branch tag] were all set"},
		{"--url must be http, https or ssh", append(git, "--url", "ftp://git.example.com/app.git", "--branch", "main"), `--url "ftp://git.example.com/app.git" must be an absolute URL with one of the schemes http, https, ssh`},
		{"--semver must be a range", append(git, append(url, "--semver", "six")...), `--semver "six" is not a semver range`},
		{"--commit must be a full SHA-1", append(git, append(url, "--commit", "abc123")...), `--commit "abc123" must be a full SHA-1`},
		{"--interval must be positive", append(git, append(url, "--branch", "main", "--interval", "0s")...), "--interval 0s must be positive"},
		{"an ImageRepository needs --image", []string{"create", "image", "repository", "app"}, "--image is required"},
		{"--exclusion-list holds regular expressions", []string{"create", "image", "repository", "app", "--image", "ghcr.io/org/app", "--exclusion-list", "(["}, `--exclusion-list "([" is not a regular expression`},
		{"an ImagePolicy needs exactly one rule", []string{"create", "image", "policy", "app", "--image-ref", "app", "--select-semver", "^1.x", "--select-alpha", "asc"}, "set exactly one of --select-semver, --select-alpha and --select-numeric"},
		{"--select-semver must be a range", []string{"create", "image", "policy", "app", "--image-ref", "app", "--select-semver", "newest"}, `--select-semver "newest" is not a semver range`},
		{"--select-alpha is asc or desc", []string{"create", "image", "policy", "app", "--image-ref", "app", "--select-alpha", "up"}, `--select-alpha "up" must be asc or desc`},
		{"an ImageUpdateAutomation needs an author", []string{"create", "image", "update", "app", "--git-repo-ref", "fleet"}, "--author-email is required"},
		{"--on-canary-failure is Ignore or Revert", []string{"create", "image", "update", "app", "--git-repo-ref", "fleet", "--author-email", "a@b.c", "--on-canary-failure", "Rollback"}, `--on-canary-failure "Rollback" must be Ignore or Revert`},
		{"--commit-template must parse", []string{"create", "image", "update", "app", "--git-repo-ref", "fleet", "--author-email", "a@b.c", "--commit-template", "{{ .Changed"}, "--commit-template: template: message"},
		{"a Kustomization needs --source", []string{"create", "ks", "apps"}, `required flag(s) "source" not set`},
		{"a Kustomization's source is a GitRepository", []string{"create", "ks", "apps", "--source", "HelmRepository/charts"}, `--source "HelmRepository/charts": the kind must be GitRepository`},
		{"--depends-on is NAME or NAMESPACE/NAME", []string{"create", "ks", "apps", "--source", "app", "--depends-on", "a/b/c"}, `--depends-on "a/b/c": use NAME or NAMESPACE/NAME`},
		{"a HelmRelease needs --chart", []string{"create", "hr", "podinfo", "--source", "HelmRepository/charts"}, `required flag(s) "chart" not set`},
		{"--chart-version must be a range", []string{"create", "hr", "podinfo", "--source", "charts", "--chart", "podinfo", "--chart-version", "latest"}, `--chart-version "latest" is not a semver range`},
		{"--values must exist", []string{"create", "hr", "podinfo", "--source", "charts", "--chart", "podinfo", "--values", "/nonexistent/values.yaml"}, "--values: open /nonexistent/values.yaml"},
		{"a Canary needs --port", []string{"create", "canary", "app", "--target-ref", "Deployment/app"}, `required flag(s) "port" not set`},
		{"--target-ref is a Deployment, DaemonSet or Service", []string{"create", "canary", "app", "--target-ref", "StatefulSet/db", "--port", "80"}, "the kind must be Deployment or DaemonSet or Service"},
		{"--provider must be known", append(canary, "--provider", "envoy"), `--provider "envoy" is not one of apisix,`},
		{"--port must be a port", []string{"create", "canary", "app", "--target-ref", "Deployment/app", "--port", "70000"}, "--port 70000 must be between 1 and 65535"},
		{"--interval must be at least 10s", append(canary, "--interval", "5s"), `--interval "5s" must be a duration of at least 10s`},
		{"--step-weight must not pass --max-weight", append(canary, "--step-weight", "60", "--max-weight", "50"), "--step-weight 60 must be between 1 and --max-weight (50)"},
		{"--iterations excludes --step-weight", append(canary, "--iterations", "5", "--step-weight", "10"), "[iterations step-weight] were all set"},
		{"--metric needs a bound", append(canary, "--metric", "request-success-rate"), `--metric "request-success-rate" sets no bound`},
		{"--metric bounds are numbers", append(canary, "--metric", "request-duration:max=fast"), `--metric "request-duration:max=fast": max=fast is not a number`},
		{"--metric settings are known", append(canary, "--metric", "request-duration:avg=5"), `--metric "request-duration:avg=5": unknown setting "avg"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := run(t, append(tt.args, "--export")...)
			if r.error == nil || !strings.Contains(r.error.Error(), tt.err) {
				t.Errorf("got error %v, want one with %q", r.error, tt.err)
			}
			if r.out != "" {
				t.Errorf("a refused create printed %q", r.out)
			}
		})
	}
}

func TestCreateApplies(t *testing.T) {
	t.Run("a Canary is applied with the sluicectl field manager", func(t *testing.T) {
		t.Parallel()
		ns := newNamespace(t)
		r := run(t, "create", "canary", "podinfo", "--target-ref", "Deployment/podinfo", "--port", "9898", "-n", ns).mustSucceed(t)
		if r.out != "Canary "+ns+"/podinfo applied\n" {
			t.Errorf("got output %q", r.out)
		}
		c := &sluicev1beta1.Canary{}
		if err := cp.Client.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: "podinfo"}, c); err != nil {
			t.Fatal(err)
		}
		if len(c.ManagedFields) != 1 || c.ManagedFields[0].Manager != cli.FieldManager || c.ManagedFields[0].Operation != metav1.ManagedFieldsOperationApply {
			t.Errorf("got managed fields %+v, want one apply by %s", c.ManagedFields, cli.FieldManager)
		}
	})
	t.Run("a GitRepository is applied, then reconciled and Ready", func(t *testing.T) {
		t.Parallel()
		ns := newNamespace(t)
		repo := &sourcev1.GitRepository{ObjectMeta: metav1.ObjectMeta{Name: "app", Namespace: ns}}
		answerReconciles(t, repo, metav1.ConditionTrue, "Succeeded", "stored artifact for revision 'main@sha1:4444'")
		r := run(t, "create", "source", "git", "app", "--url", "https://git.example.com/app.git", "--branch", "main", "-n", ns).mustSucceed(t)
		want := "GitRepository " + ns + "/app applied\nGitRepository " + ns + "/app reconciled: Ready=True: stored artifact for revision 'main@sha1:4444'\n"
		if r.out != want {
			t.Errorf("got output %q, want %q", r.out, want)
		}
	})
	t.Run("a Kustomization that is not Ready fails after its apply", func(t *testing.T) {
		t.Parallel()
		ns := newNamespace(t)
		ks := &syncv1.Kustomization{ObjectMeta: metav1.ObjectMeta{Name: "apps", Namespace: ns}}
		answerReconciles(t, ks, metav1.ConditionFalse, "ArtifactFailed", "spec.sourceRef: GitRepository app has no artifact yet")
		r := run(t, "create", "ks", "apps", "--source", "app", "-n", ns)
		if r.code != cli.ExitFailure || !strings.Contains(r.out, "Kustomization "+ns+"/apps applied\n") || !strings.Contains(r.error.Error(), "has no artifact yet") {
			t.Errorf("got code %d, output %q, error %v; want 1 after the apply", r.code, r.out, r.error)
		}
	})
	t.Run("--no-wait returns once applied, and a second create updates the object", func(t *testing.T) {
		t.Parallel()
		ns := newNamespace(t)
		args := []string{"create", "hr", "podinfo", "--source", "charts", "--chart", "podinfo", "--no-wait", "-n", ns}
		run(t, append(args, "--chart-version", "6.x")...).mustSucceed(t)
		r := run(t, append(args, "--chart-version", "7.x", "--interval", "2m")...).mustSucceed(t)
		if r.out != "HelmRelease "+ns+"/podinfo applied\n" {
			t.Errorf("got output %q", r.out)
		}
		hr := &syncv2.HelmRelease{ObjectMeta: metav1.ObjectMeta{Name: "podinfo", Namespace: ns}}
		if v := field(t, hr, "spec", "chart", "spec", "version"); v != "7.x" || hr.Spec.Interval.Duration != 2*time.Minute {
			t.Errorf("got version %q and interval %s, want 7.x and 2m", v, hr.Spec.Interval.Duration)
		}
	})
	t.Run("without an operator the wait times out with exit code 2", func(t *testing.T) {
		t.Parallel()
		ns := newNamespace(t)
		r := run(t, "create", "source", "git", "app", "--url", "https://git.example.com/app.git", "--branch", "main", "--timeout", "1s", "-n", ns)
		if r.code != cli.ExitTimeout {
			t.Errorf("got code %d (%v), want %d", r.code, r.error, cli.ExitTimeout)
		}
	})
}

func TestCreateExportNeedsNoKubeconfig(t *testing.T) {
	t.Setenv("KUBECONFIG", filepath.Join(t.TempDir(), "missing"))
	t.Setenv("HOME", t.TempDir())
	r := runWithKubeconfig(t, "", "create", "source", "git", "apps", "--url", "https://git.example.com/apps", "--branch", "main", "--export").mustSucceed(t)
	if !strings.Contains(r.out, "namespace: default") || !strings.Contains(r.out, "kind: GitRepository") {
		t.Fatalf("got:\n%s", r.out)
	}
}
