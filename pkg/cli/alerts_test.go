package cli_test

import (
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	nv1beta3 "sluice.dev/sluice/api/notification/v1beta3"
)

func TestCreateAlertAndProviderExportWhatTheAPIServerAccepts(t *testing.T) {
	ns := newNamespace(t)
	tests := []struct {
		name  string
		args  []string
		obj   client.Object
		check func(t *testing.T, obj client.Object)
	}{
		{
			name: "an Alert has its Provider, sources, severity, lists and metadata",
			args: []string{"create", "alert", "releases", "--provider-ref", "slack", "--event-source", "Canary/*", "--event-source", "Kustomization/apps.flux-system",
				"--event-severity", "error", "--exclusion-list", "^Dependencies", "--event-metadata", "cluster=prod", "--summary", "prod releases"},
			obj: &nv1beta3.Alert{},
			check: func(t *testing.T, obj client.Object) {
				s := obj.(*nv1beta3.Alert).Spec
				if s.ProviderRef.Name != "slack" || s.EventSeverity != "error" || len(s.EventSources) != 2 || s.EventSources[0].Name != "*" ||
					s.EventSources[1].Namespace != "flux-system" || s.EventMetadata["cluster"] != "prod" || s.Summary != "prod releases" || s.ExclusionList[0] != "^Dependencies" {
					t.Errorf("got spec %+v", s)
				}
			},
		},
		{
			name: "a commit status Provider has its repository and token Secret",
			args: []string{"create", "alert-provider", "github", "--type", "github", "--address", "https://github.com/acme/app", "--secret-ref", "github-token", "--timeout", "30s"},
			obj:  &nv1beta3.Provider{},
			check: func(t *testing.T, obj client.Object) {
				s := obj.(*nv1beta3.Provider).Spec
				if s.Type != "github" || s.Address != "https://github.com/acme/app" || s.SecretRef.Name != "github-token" || s.Timeout.Duration.String() != "30s" {
					t.Errorf("got spec %+v", s)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := run(t, append(tt.args, "--export", "-n", ns)...).mustSucceed(t)
			if err := yaml.UnmarshalStrict([]byte(strings.TrimPrefix(r.out, "---\n")), tt.obj); err != nil {
				t.Fatalf("parse the export: %v\n%s", err, r.out)
			}
			tt.check(t, tt.obj)
			if err := cp.Client.Create(t.Context(), tt.obj, client.DryRunAll); err != nil {
				t.Errorf("the API server refuses the export: %v\n%s", err, r.out)
			}
		})
	}
}

func TestCreateAlertAndProviderRefuseBadFlags(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"an Alert without sources", []string{"create", "alert", "a", "--provider-ref", "p"}, "--event-source is required"},
		{"an Alert with a bad severity", []string{"create", "alert", "a", "--provider-ref", "p", "--event-source", "Canary/*", "--event-severity", "warn"}, `--event-severity "warn" must be info or error`},
		{"an Alert with a bad pattern", []string{"create", "alert", "a", "--provider-ref", "p", "--event-source", "Canary/*", "--inclusion-list", "(x"}, `--inclusion-list "(x" is not a regular expression`},
		{"a source without a name", []string{"create", "alert", "a", "--provider-ref", "p", "--event-source", "Canary"}, `--event-source "Canary" is not Kind/name`},
		{"an unknown Provider type", []string{"create", "alert-provider", "p", "--type", "pagerduty"}, `--type "pagerduty" is not one of`},
		{"a commit status without a token", []string{"create", "alert-provider", "p", "--type", "gitlab", "--address", "https://gitlab.com/a/b"}, "--type gitlab needs --secret-ref"},
		{"Telegram without a chat", []string{"create", "alert-provider", "p", "--type", "telegram", "--secret-ref", "bot"}, "--type telegram needs --channel"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := run(t, append(tt.args, "--export")...)
			if r.error == nil || !strings.Contains(r.error.Error(), tt.want) {
				t.Errorf("got %v, want an error with %q", r.error, tt.want)
			}
		})
	}
}

func TestGetAlertsShowsTheirProviderAndWhyTheyAreNotReady(t *testing.T) {
	ns := newNamespace(t)
	a := &nv1beta3.Alert{ObjectMeta: metav1.ObjectMeta{Name: "releases", Namespace: ns}, Spec: nv1beta3.AlertSpec{
		ProviderRef: nv1beta3.LocalObjectReference{Name: "slack"}, EventSeverity: "error",
		EventSources: []nv1beta3.CrossNamespaceObjectReference{{Kind: "Canary", Name: "*"}},
	}}
	p := &nv1beta3.Provider{ObjectMeta: metav1.ObjectMeta{Name: "slack", Namespace: ns}, Spec: nv1beta3.ProviderSpec{
		Type: "slack", SecretRef: &nv1beta3.LocalObjectReference{Name: "webhook"},
	}}
	for _, o := range []client.Object{a, p} {
		if err := cp.Client.Create(t.Context(), o); err != nil {
			t.Fatal(err)
		}
	}
	// The operator's status, written here as it would be.
	a.Status.Conditions = []metav1.Condition{{Type: "Ready", Status: metav1.ConditionFalse, Reason: nv1beta3.ReasonProviderNotReady,
		Message: "spec.providerRef: Provider " + ns + "/slack is not ready: SecretNotFound", LastTransitionTime: metav1.Now()}}
	if err := cp.Client.Status().Update(t.Context(), a); err != nil {
		t.Fatal(err)
	}
	got := rows(run(t, "get", "alerts", "-n", ns).mustSucceed(t).out)
	want := []string{"releases", "False", "false", "slack", "error", "spec.providerRef: Provider " + ns + "/slack is not ready: SecretNotFound"}
	if len(got) != 2 || strings.Join(got[1], "|") != strings.Join(want, "|") {
		t.Errorf("got rows %q, want %q", got, want)
	}
	got = rows(run(t, "get", "alert-providers", "-n", ns).mustSucceed(t).out)
	if len(got) != 2 || got[1][0] != "slack" || got[1][1] != "Unknown" || got[1][3] != "slack" {
		t.Errorf("got rows %q", got)
	}
}
