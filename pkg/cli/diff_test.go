package cli_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	syncv1 "sluice.dev/sluice/api/sync/v1"
	"sluice.dev/sluice/pkg/cli"
	"sluice.dev/sluice/pkg/sync/apply"
	"sluice.dev/sluice/pkg/sync/build"
)

// folder writes files (relative paths to contents) into a new folder.
func folder(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, data := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// The manifests of the diff tests. They have no namespace: the
// Kustomization's targetNamespace sets it, and ${color} is a postBuild
// variable, so that a preview that skipped either would show drift.
const (
	settingsBlue = `apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
data:
  color: ${color}
`
	settingsGreen = `apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
data:
  color: green
`
	extra = `apiVersion: v1
kind: ConfigMap
metadata:
  name: extra
data:
  size: large
`
	credsHunter2 = `apiVersion: v1
kind: Secret
metadata:
  name: creds
stringData:
  password: hunter2
`
	credsHunter3 = `apiVersion: v1
kind: Secret
metadata:
  name: creds
stringData:
  password: hunter3
`
	web = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  selector:
    matchLabels:
      app: web
  template:
    metadata:
      labels:
        app: web
    spec:
      containers:
        - name: web
          image: nginx:1.27
          ports:
            - containerPort: 80
`
)

// appliedKustomization creates the Kustomization apps in ns and applies
// files as the operator would, with its inventory in the status.
func appliedKustomization(t *testing.T, ns string, files map[string]string) {
	t.Helper()
	ks := &syncv1.Kustomization{
		ObjectMeta: metav1.ObjectMeta{Name: "apps", Namespace: ns},
		Spec: syncv1.KustomizationSpec{
			SourceRef:       syncv1.CrossNamespaceSourceReference{Kind: "GitRepository", Name: "app"},
			Interval:        metav1.Duration{Duration: time.Minute},
			Prune:           true,
			TargetNamespace: ns,
			PostBuild:       &syncv1.PostBuild{Substitute: map[string]string{"color": "blue"}},
		},
	}
	create(t, ks)
	artifact := map[string][]byte{}
	for name, data := range files {
		artifact["app/"+name] = []byte(data)
	}
	vars, err := build.Variables(t.Context(), cp.Client, ks)
	if err != nil {
		t.Fatal(err)
	}
	buildOpts := build.ForKustomization(ks, vars)
	buildOpts.Path = "app"
	objs, err := build.Build(artifact, buildOpts)
	if err != nil {
		t.Fatal(err)
	}
	res, err := apply.New(cp.Client, cp.Client).Apply(t.Context(), objs, apply.ForKustomization(ks))
	if err != nil {
		t.Fatalf("apply as the operator: %v", err)
	}
	updateStatus(t, ks, func(k *syncv1.Kustomization) {
		k.Status.Inventory = &syncv1.ResourceInventory{}
		for _, e := range res.Inventory {
			k.Status.Inventory.Entries = append(k.Status.Inventory.Entries, syncv1.ResourceRef{ID: e.ID, Version: e.Version})
		}
	})
}

func TestDiffKustomization(t *testing.T) {
	ns := newNamespace(t)
	base := map[string]string{"settings.yaml": settingsBlue, "creds.yaml": credsHunter2, "web.yaml": web}
	appliedKustomization(t, ns, base)

	tests := []struct {
		name  string
		files map[string]string
		code  int
		// want are in the output, unwanted are not.
		want, unwanted []string
	}{
		{
			name:     "the folder the cluster already has shows nothing and exits 0",
			files:    base,
			unwanted: []string{"►"},
		},
		{
			name:  "a changed field shows as drifted with a unified diff and exits 1",
			files: map[string]string{"settings.yaml": settingsGreen, "creds.yaml": credsHunter2, "web.yaml": web},
			code:  cli.ExitFailure,
			want:  []string{"► ConfigMap/" + ns + "/settings drifted\n", "--- live\n+++ merged\n", "-  color: blue\n", "+  color: green\n"},
			unwanted: []string{
				"Deployment/" + ns + "/web", "Secret/",
			},
		},
		{
			name:  "a new object shows as created",
			files: map[string]string{"settings.yaml": settingsBlue, "creds.yaml": credsHunter2, "web.yaml": web, "extra.yaml": extra},
			code:  cli.ExitFailure,
			want:  []string{"► ConfigMap/" + ns + "/extra created\n"},
			unwanted: []string{
				"drifted", "size: large",
			},
		},
		{
			name:  "an object of the inventory that the build drops shows as deleted",
			files: map[string]string{"settings.yaml": settingsBlue, "web.yaml": web},
			code:  cli.ExitFailure,
			want:  []string{"► Secret/" + ns + "/creds deleted\n"},
		},
		{
			name:     "a changed Secret shows as drifted with its data masked",
			files:    map[string]string{"settings.yaml": settingsBlue, "creds.yaml": credsHunter3, "web.yaml": web},
			code:     cli.ExitFailure,
			want:     []string{"► Secret/" + ns + "/creds drifted\n", "***"},
			unwanted: []string{"hunter", "aHVudGVy"}, // aHVudGVy is base64 for "hunter"
		},
		{
			name:  "a changed image drifts the Deployment only",
			files: map[string]string{"settings.yaml": settingsBlue, "creds.yaml": credsHunter2, "web.yaml": strings.Replace(web, "nginx:1.27", "nginx:1.28", 1)},
			code:  cli.ExitFailure,
			want:  []string{"► Deployment/" + ns + "/web drifted\n", "-      - image: nginx:1.27\n", "+      - image: nginx:1.28\n"},
			unwanted: []string{
				"ConfigMap/", "Secret/",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := run(t, "diff", "kustomization", "apps", "--path", folder(t, tt.files), "-n", ns)
			if r.code != tt.code {
				t.Errorf("exit code %d (%v), want %d\nout:\n%s", r.code, r.error, tt.code, r.out)
			}
			for _, s := range tt.want {
				if !strings.Contains(r.out, s) {
					t.Errorf("the output lacks %q:\n%s", s, r.out)
				}
			}
			for _, s := range tt.unwanted {
				if strings.Contains(r.out, s) {
					t.Errorf("the output has %q:\n%s", s, r.out)
				}
			}
		})
	}

	t.Run("an unknown Kustomization names the close matches", func(t *testing.T) {
		r := run(t, "diff", "ks", "app", "--path", folder(t, base), "-n", ns)
		if r.error == nil || !strings.Contains(r.error.Error(), `did you mean: apps?`) {
			t.Errorf("got error %v, want one suggesting apps", r.error)
		}
	})
	t.Run("a missing folder names --path", func(t *testing.T) {
		r := run(t, "diff", "ks", "apps", "--path", filepath.Join(t.TempDir(), "nope"), "-n", ns)
		if r.error == nil || !strings.Contains(r.error.Error(), "--path") {
			t.Errorf("got error %v, want one naming --path", r.error)
		}
	})
}
