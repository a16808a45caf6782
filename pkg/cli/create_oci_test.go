package cli_test

import (
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	sourcev1 "sluice.dev/sluice/api/source/v1"
	syncv1 "sluice.dev/sluice/api/sync/v1"
)

func TestCreateSourceOCIExport(t *testing.T) {
	ns := newNamespace(t)
	digest := "sha256:" + strings.Repeat("ab", 32)
	tests := []struct {
		name  string
		args  []string
		check func(t *testing.T, r *sourcev1.OCIRepository)
	}{
		{
			name: "a tag, an interval and both Secrets",
			args: []string{"--url", "oci://ghcr.io/org/manifests/app", "--tag", "1.0.0", "--interval", "5m", "--secret-ref", "regcred", "--cert-ref", "registry-ca"},
			check: func(t *testing.T, r *sourcev1.OCIRepository) {
				s := r.Spec
				if s.URL != "oci://ghcr.io/org/manifests/app" || s.Reference.Tag != "1.0.0" || s.Interval.Duration != 5*time.Minute || s.SecretRef.Name != "regcred" || s.CertSecretRef.Name != "registry-ca" {
					t.Errorf("got spec %+v", s)
				}
			},
		},
		{
			name: "a semver range follows the tags, at the default interval",
			args: []string{"--url", "oci://ghcr.io/org/manifests/app", "--tag-semver", ">=1.0.0 <2.0.0"},
			check: func(t *testing.T, r *sourcev1.OCIRepository) {
				if r.Spec.Reference.SemVer != ">=1.0.0 <2.0.0" || r.Spec.Reference.Tag != "" || r.Spec.Interval.Duration != time.Minute {
					t.Errorf("got spec %+v", r.Spec)
				}
			},
		},
		{
			name: "a digest pins the artifact",
			args: []string{"--url", "oci://127.0.0.1:5000/app", "--digest", digest, "--insecure"},
			check: func(t *testing.T, r *sourcev1.OCIRepository) {
				if r.Spec.Reference.Digest != digest || !r.Spec.Insecure {
					t.Errorf("got spec %+v", r.Spec)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := run(t, append([]string{"create", "source", "oci", "app", "--export", "-n", ns}, tt.args...)...).mustSucceed(t)
			repo := &sourcev1.OCIRepository{}
			if err := yaml.UnmarshalStrict([]byte(strings.TrimPrefix(r.out, "---\n")), repo); err != nil {
				t.Fatalf("parse the export: %v\n%s", err, r.out)
			}
			if repo.Kind != "OCIRepository" || repo.APIVersion != "source.sluice.dev/v1" || repo.Namespace != ns {
				t.Errorf("got %s %s in %q", repo.APIVersion, repo.Kind, repo.Namespace)
			}
			tt.check(t, repo)
			if err := cp.Client.Create(t.Context(), repo, client.DryRunAll); err != nil {
				t.Errorf("the API server refuses the export: %v\n%s", err, r.out)
			}
		})
	}
	t.Run("a Kustomization may build an OCIRepository", func(t *testing.T) {
		t.Parallel()
		r := run(t, "create", "kustomization", "apps", "--source", "OCIRepository/app", "--export", "-n", ns).mustSucceed(t)
		ks := &syncv1.Kustomization{}
		if err := yaml.UnmarshalStrict([]byte(strings.TrimPrefix(r.out, "---\n")), ks); err != nil {
			t.Fatal(err)
		}
		if ks.Spec.SourceRef.Kind != "OCIRepository" || ks.Spec.SourceRef.Name != "app" {
			t.Errorf("got sourceRef %+v", ks.Spec.SourceRef)
		}
		if err := cp.Client.Create(t.Context(), ks, client.DryRunAll); err != nil {
			t.Errorf("the API server refuses the export: %v", err)
		}
	})
}

func TestCreateSourceOCIRefusesBadFlags(t *testing.T) {
	oci := []string{"create", "source", "oci", "app"}
	url := []string{"--url", "oci://ghcr.io/org/app"}
	tests := []struct {
		name string
		args []string
		err  string
	}{
		{"it needs --url", append(oci, "--tag", "1.0.0"), `required flag(s) "url" not set`},
		{"it needs a tag, range or digest", append(oci, url...), "[tag tag-semver digest] is required"},
		{"--tag and --digest exclude each other", append(oci, append(url, "--tag", "1", "--digest", "sha256:"+strings.Repeat("a", 64))...), "were all set"},
		{"--url must be oci://", append(oci, "--url", "https://ghcr.io/org/app", "--tag", "1"), "must start with oci://"},
		{"--url has no tag", append(oci, "--url", "oci://ghcr.io/org/app:1.0.0", "--tag", "1"), "must not have a tag or digest"},
		{"--tag-semver must be a range", append(oci, append(url, "--tag-semver", "newest")...), `--tag-semver "newest" is not a semver range`},
		{"--digest must be sha256:<hex>", append(oci, append(url, "--digest", "abc")...), `--digest "abc" must be sha256:`},
		{"--interval must be positive", append(oci, append(url, "--tag", "1", "--interval", "0s")...), "--interval 0s must be positive"},
		{"a Kustomization's source is a GitRepository or an OCIRepository", []string{"create", "ks", "apps", "--source", "HelmRepository/charts"}, "the kind must be GitRepository or OCIRepository"},
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
