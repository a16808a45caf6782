package cli_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"sluice.dev/sluice/pkg/cli"
)

func TestAnUnknownNameListsTheCloseMatches(t *testing.T) {
	ns := newNamespace(t)
	newCanary(t, ns, "podinfo", "Deployment", "podinfo")
	newCanary(t, ns, "backend", "Deployment", "backend")
	kustomization(t, ns, "apps", false)
	kustomization(t, ns, "infrastructure", false)
	helmRelease(t, ns, "podinfo")

	tests := []struct {
		name string
		args []string
		want string
	}{
		{
			name: "a Canary one letter short",
			args: []string{"status", "podinf"},
			want: `Canary "podinf" not found in namespace "` + ns + `"; did you mean: podinfo?`,
		},
		{
			name: "a Canary with a suffix too many, as a prefix match",
			args: []string{"get", "canary", "podinfo-primary"},
			want: `Canary "podinfo-primary" not found in namespace "` + ns + `"; did you mean: podinfo?`,
		},
		{
			name: "a Kustomization with a typo",
			args: []string{"reconcile", "ks", "apsp"},
			want: `Kustomization "apsp" not found in namespace "` + ns + `"; did you mean: apps?`,
		},
		{
			name: "a Kustomization by the start of its name",
			args: []string{"suspend", "kustomization", "infra"},
			want: `Kustomization "infra" not found in namespace "` + ns + `"; did you mean: infrastructure?`,
		},
		{
			name: "a HelmRelease with a character too many",
			args: []string{"resume", "hr", "podinfo2"},
			want: `HelmRelease "podinfo2" not found in namespace "` + ns + `"; did you mean: podinfo?`,
		},
		{
			name: "a name close to nothing",
			args: []string{"get", "canary", "something-else"},
			want: `Canary "something-else" not found in namespace "` + ns + `"`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := run(t, append(tt.args, "-n", ns)...)
			if r.error == nil || r.error.Error() != tt.want {
				t.Fatalf("got error %v, want %s", r.error, tt.want)
			}
			var nf *cli.NotFoundError
			if !errors.As(r.error, &nf) || !apierrors.IsNotFound(r.error) || r.code != cli.ExitFailure {
				t.Errorf("got a %T with code %d, want a NotFoundError from the API server with code 1", r.error, r.code)
			}
		})
	}
}

func TestCompletionListsTheNamesOfTheKind(t *testing.T) {
	ns := newNamespace(t)
	newCanary(t, ns, "podinfo", "Deployment", "podinfo")
	newCanary(t, ns, "backend", "Deployment", "backend")
	kustomization(t, ns, "apps", false)
	kustomization(t, ns, "infrastructure", false)

	tests := []struct {
		name string
		args []string
		want []string
	}{
		{"Canaries for get", []string{"get", "canaries", ""}, []string{"backend", "podinfo"}},
		{"Canaries for status, by prefix", []string{"status", "po"}, []string{"podinfo"}},
		{"Kustomizations for reconcile", []string{"reconcile", "ks", ""}, []string{"apps", "infrastructure"}},
		{"nothing after the name", []string{"status", "podinfo", ""}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"__complete", "-n", ns}, tt.args...)
			r := run(t, args...).mustSucceed(t)
			// The completions, one a line, then the directive.
			lines := strings.Split(strings.TrimSpace(r.out), "\n")
			got, directive := lines[:len(lines)-1], lines[len(lines)-1]
			if strings.Join(got, ",") != strings.Join(tt.want, ",") || directive != ":4" {
				t.Errorf("got %q with directive %s, want %q with :4 (no files)", got, directive, tt.want)
			}
		})
	}
}

func TestAsKubectlSluiceTheHelpReadsKubectlSluice(t *testing.T) {
	tests := []struct {
		name string
		arg0 string
		want string
	}{
		{"run as kubectl-sluice", "/usr/local/bin/kubectl-sluice", "kubectl sluice get [command]"},
		{"run as sluicectl", "./sluicectl", "sluicectl get [command]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			root := cli.NewRoot(cli.Streams{Out: &out, Err: &out})
			cli.SetBinaryName(root, tt.arg0)
			root.SetArgs([]string{"get", "--help"})
			if err := root.Execute(); err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(out.String(), "\n  "+tt.want+"\n") {
				t.Errorf("the help does not read %q:\n%s", tt.want, out.String())
			}
		})
	}
}
