package cli_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/yaml"

	sluicev1beta1 "sluice.dev/sluice/api/v1beta1"
)

func TestGetCanaries(t *testing.T) {
	ns := newNamespace(t)
	other := newNamespace(t)
	deployment(t, ns, "podinfo", "ghcr.io/stefanprodan/podinfo:6.0.1")
	daemonSet(t, ns, "agent", "fluent/fluent-bit:3.0")
	updateStatus(t, newCanary(t, ns, "podinfo", "Deployment", "podinfo"), progressing)
	newCanary(t, ns, "agent", "DaemonSet", "agent")
	newCanary(t, ns, "orphan", "Deployment", "gone")
	newCanary(t, other, "frontend", "Deployment", "frontend")

	tests := []struct {
		name  string
		args  []string
		check func(t *testing.T, r result)
	}{
		{
			name: "the table shows each Canary's phase, weight, failed checks, last transition and target image",
			args: []string{"get", "canaries", "-n", ns},
			check: func(t *testing.T, r result) {
				want := [][]string{
					{"NAME", "PHASE", "WEIGHT", "FAILED", "LAST TRANSITION", "REVISION"},
					{"agent", "-", "0", "0", "-", "fluent/fluent-bit:3.0"},
					{"orphan", "-", "0", "0", "-", "-"},
					{"podinfo", "Progressing", "20", "1", "3d", "ghcr.io/stefanprodan/podinfo:6.0.1"},
				}
				if got := rows(r.out); !slices.EqualFunc(got, want, slices.Equal) {
					t.Errorf("got rows %q, want %q", got, want)
				}
			},
		},
		{
			name: "the singular with a name shows only that Canary",
			args: []string{"get", "canary", "podinfo", "-n", ns},
			check: func(t *testing.T, r result) {
				got := rows(r.out)
				if len(got) != 2 || got[1][0] != "podinfo" {
					t.Errorf("got rows %q, want the header and podinfo", got)
				}
			},
		},
		{
			name: "all namespaces adds a NAMESPACE column",
			args: []string{"get", "canaries", "-A"},
			check: func(t *testing.T, r result) {
				got := rows(r.out)
				if got[0][0] != "NAMESPACE" || got[0][1] != "NAME" {
					t.Fatalf("got header %q, want NAMESPACE then NAME", got[0])
				}
				for _, want := range [][2]string{{ns, "podinfo"}, {other, "frontend"}} {
					if !slices.ContainsFunc(got, func(row []string) bool { return row[0] == want[0] && row[1] == want[1] }) {
						t.Errorf("no row for %s/%s in %q", want[0], want[1], got)
					}
				}
			},
		},
		{
			name: "json prints a List of Canaries that parses",
			args: []string{"get", "canaries", "-n", ns, "-o", "json"},
			check: func(t *testing.T, r result) {
				var list struct {
					Kind  string                 `json:"kind"`
					Items []sluicev1beta1.Canary `json:"items"`
				}
				if err := json.Unmarshal([]byte(r.out), &list); err != nil {
					t.Fatalf("parse %s: %v", r.out, err)
				}
				if list.Kind != "List" || len(list.Items) != 3 {
					t.Fatalf("got a %s of %d items, want a List of 3", list.Kind, len(list.Items))
				}
				c := list.Items[2]
				if c.APIVersion != "sluice.dev/v1beta1" || c.Kind != "Canary" || c.Name != "podinfo" || c.Status.CanaryWeight != 20 {
					t.Errorf("got %s %s %s with weight %d, want sluice.dev/v1beta1 Canary podinfo with weight 20", c.APIVersion, c.Kind, c.Name, c.Status.CanaryWeight)
				}
				if len(c.ManagedFields) > 0 {
					t.Error("the output has managed fields")
				}
			},
		},
		{
			name: "yaml with a name prints that Canary, which parses",
			args: []string{"get", "canary", "podinfo", "-n", ns, "-o", "yaml"},
			check: func(t *testing.T, r result) {
				var c sluicev1beta1.Canary
				if err := yaml.UnmarshalStrict([]byte(r.out), &c); err != nil {
					t.Fatalf("parse %s: %v", r.out, err)
				}
				if c.Kind != "Canary" || c.Name != "podinfo" || c.Status.Phase != sluicev1beta1.CanaryPhaseProgressing {
					t.Errorf("got %s %s in phase %s, want Canary podinfo Progressing", c.Kind, c.Name, c.Status.Phase)
				}
			},
		},
		{
			name: "an empty namespace prints nothing and says so on stderr",
			args: []string{"get", "canaries", "-n", "default"},
			check: func(t *testing.T, r result) {
				if r.out != "" || !strings.Contains(r.err, `No Canaries found in namespace "default"`) {
					t.Errorf("got out %q and err %q, want nothing and a note", r.out, r.err)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.check(t, run(t, tt.args...).mustSucceed(t))
		})
	}
}

func TestBadArgumentsFail(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"an unknown output format", []string{"get", "canaries", "-o", "xml"}, `unknown output format "xml"`},
		{"an unknown kind", []string{"get", "pods"}, `unknown command "pods" for "sluicectl get"`},
		{"a name with all namespaces", []string{"get", "canary", "podinfo", "-A"}, "drop --all-namespaces or the name"},
		{"status without a name", []string{"status"}, "accepts 1 arg(s)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := run(t, tt.args...)
			if r.code != 1 || r.error == nil || !strings.Contains(r.error.Error(), tt.want) {
				t.Errorf("got code %d and error %v, want code 1 and an error with %q", r.code, r.error, tt.want)
			}
		})
	}
}

func TestTheNamespaceDefaultsToTheKubeconfigContexts(t *testing.T) {
	ns := newNamespace(t)
	newCanary(t, ns, "podinfo", "Deployment", "podinfo")

	config, err := clientcmd.LoadFromFile(cp.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	config.Contexts[config.CurrentContext].Namespace = ns
	path := filepath.Join(t.TempDir(), "config")
	if err := clientcmd.WriteToFile(*config, path); err != nil {
		t.Fatal(err)
	}

	t.Run("with --kubeconfig", func(t *testing.T) {
		got := rows(runWithKubeconfig(t, path, "get", "canaries").mustSucceed(t).out)
		if len(got) != 2 || got[1][0] != "podinfo" {
			t.Errorf("got rows %q, want podinfo of the context's namespace", got)
		}
	})
	t.Run("with $KUBECONFIG", func(t *testing.T) {
		t.Setenv("KUBECONFIG", path)
		got := rows(runWithKubeconfig(t, "", "get", "canaries").mustSucceed(t).out)
		if len(got) != 2 || got[1][0] != "podinfo" {
			t.Errorf("got rows %q, want podinfo of the context's namespace", got)
		}
	})
	t.Run("--namespace overrides it", func(t *testing.T) {
		r := runWithKubeconfig(t, path, "get", "canaries", "-n", "default").mustSucceed(t)
		if r.out != "" {
			t.Errorf("got %q, want no Canaries in default", r.out)
		}
	})
}

func TestVersion(t *testing.T) {
	unreachable := filepath.Join(t.TempDir(), "unreachable")
	config, err := clientcmd.LoadFromFile(cp.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	for _, cluster := range config.Clusters {
		// Nothing listens on port 1 of the loopback.
		cluster.Server = "https://127.0.0.1:1"
	}
	if err := clientcmd.WriteToFile(*config, unreachable); err != nil {
		t.Fatal(err)
	}

	t.Run("it prints the client and the server versions", func(t *testing.T) {
		r := run(t, "version").mustSucceed(t)
		want := "Client Version: " + testVersion + "\nServer Version: v" + "1.37.1" + "\n"
		if r.out != want {
			t.Errorf("got %q, want %q", r.out, want)
		}
	})
	t.Run("json has both versions", func(t *testing.T) {
		r := run(t, "version", "-o", "json").mustSucceed(t)
		var v struct {
			ClientVersion string `json:"clientVersion"`
			ServerVersion struct {
				GitVersion string `json:"gitVersion"`
			} `json:"serverVersion"`
		}
		if err := json.Unmarshal([]byte(r.out), &v); err != nil {
			t.Fatalf("parse %s: %v", r.out, err)
		}
		if v.ClientVersion != testVersion || !strings.HasPrefix(v.ServerVersion.GitVersion, "v1.") {
			t.Errorf("got %+v", v)
		}
	})
	t.Run("an unreachable server still gets the client version", func(t *testing.T) {
		r := runWithKubeconfig(t, unreachable, "version").mustSucceed(t)
		if r.out != "Client Version: "+testVersion+"\n" || !strings.Contains(r.err, "Server version unavailable") {
			t.Errorf("got out %q and err %q, want the client version and a note", r.out, r.err)
		}
	})
	t.Run("no kubeconfig at all still gets the client version", func(t *testing.T) {
		missing := filepath.Join(t.TempDir(), "missing")
		if _, err := os.Stat(missing); !os.IsNotExist(err) {
			t.Fatal("the missing kubeconfig exists")
		}
		r := runWithKubeconfig(t, missing, "version").mustSucceed(t)
		if r.out != "Client Version: "+testVersion+"\n" {
			t.Errorf("got %q, want the client version", r.out)
		}
	})
}
