package notify_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	nv1beta3 "sluice.dev/sluice/api/notification/v1beta3"
	"sluice.dev/sluice/test/controlplane"
	"sluice.dev/sluice/test/inprocess"
)

// waitReady waits for an object's Ready condition to have a status, a
// reason and a message that says says, and returns it.
func waitReady(t *testing.T, obj client.Object, conditions func() []metav1.Condition, status metav1.ConditionStatus, reason, says string) metav1.Condition {
	t.Helper()
	var got metav1.Condition
	controlplane.Eventually(t, 20*time.Second, "Ready "+reason+" saying "+says, func(ctx context.Context) (bool, string) {
		if err := cp.Client.Get(ctx, client.ObjectKeyFromObject(obj), obj); err != nil {
			return false, err.Error()
		}
		c := meta.FindStatusCondition(conditions(), nv1beta3.ReadyCondition)
		if c == nil {
			return false, "no Ready condition"
		}
		got = *c
		return c.Status == status && c.Reason == reason && strings.Contains(c.Message, says), fmt.Sprintf("conditions %+v", conditions())
	})
	return got
}

func TestAProviderSaysWhyItCannotWorkBeforeAnyEventAndItsAlertsSayItToo(t *testing.T) {
	e := newEnv(t)
	inprocess.Start(t, cp.Config, e.ns, testr.NewWithOptions(t, testr.Options{Verbosity: 0}))
	secretRef := func(name string) *nv1beta3.LocalObjectReference { return &nv1beta3.LocalObjectReference{Name: name} }
	tests := []struct {
		name   string
		spec   nv1beta3.ProviderSpec
		secret map[string]string
		status metav1.ConditionStatus
		reason string
		says   string
	}{
		{"a missing Secret is named", nv1beta3.ProviderSpec{Type: "slack", SecretRef: secretRef("nowhere")}, nil,
			metav1.ConditionFalse, nv1beta3.ReasonSecretNotFound, "spec.secretRef: Secret NS/nowhere not found"},
		{"a missing certificate Secret is named", nv1beta3.ProviderSpec{Type: "generic", Address: "https://hooks.example.com/x", CertSecretRef: secretRef("no-ca")}, nil,
			metav1.ConditionFalse, nv1beta3.ReasonCertSecretNotFound, "spec.certSecretRef: Secret NS/no-ca not found"},
		{"a commit status without a token says so", nv1beta3.ProviderSpec{Type: "github", Address: "https://github.com/acme/app", SecretRef: secretRef("SECRET")}, map[string]string{"user": "x"},
			metav1.ConditionFalse, nv1beta3.ReasonTokenNotFound, "token"},
		{"a commit status needs a repository URL", nv1beta3.ProviderSpec{Type: "gitlab", Address: "https://gitlab.com", SecretRef: secretRef("SECRET")}, map[string]string{"token": "x"},
			metav1.ConditionFalse, nv1beta3.ReasonInvalidAddress, "repository"},
		{"headers that are not a map are refused", nv1beta3.ProviderSpec{Type: "generic", Address: "https://hooks.example.com/x", SecretRef: secretRef("SECRET")}, map[string]string{"headers": "- a list"},
			metav1.ConditionFalse, nv1beta3.ReasonInvalidSpec, "headers"},
		{"Alertmanager with an address resolves", nv1beta3.ProviderSpec{Type: "alertmanager", Address: "http://alertmanager.example.com:9093"}, nil,
			metav1.ConditionTrue, nv1beta3.ReasonResolved, "resolve"},
		{"a Telegram bot token in the Secret resolves", nv1beta3.ProviderSpec{Type: "telegram", Channel: "-100", SecretRef: secretRef("SECRET")}, map[string]string{"token": "1:x"},
			metav1.ConditionTrue, nv1beta3.ReasonResolved, "resolve"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			name := fmt.Sprintf("provider-%d", i)
			if tt.spec.SecretRef != nil && tt.spec.SecretRef.Name == "SECRET" {
				tt.spec.SecretRef.Name = name
				e.create(&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: e.ns}, StringData: tt.secret})
			}
			p := &nv1beta3.Provider{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: e.ns}, Spec: tt.spec}
			a := &nv1beta3.Alert{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: e.ns}, Spec: nv1beta3.AlertSpec{
				ProviderRef:  nv1beta3.LocalObjectReference{Name: name},
				EventSources: []nv1beta3.CrossNamespaceObjectReference{{Kind: "Kustomization", Name: "*"}},
			}}
			e.create(p, a)
			waitReady(t, p, func() []metav1.Condition { return p.Status.Conditions }, tt.status, tt.reason, strings.ReplaceAll(tt.says, "NS", e.ns))
			if tt.status == metav1.ConditionTrue {
				waitReady(t, a, func() []metav1.Condition { return a.Status.Conditions }, metav1.ConditionTrue, nv1beta3.ReasonProviderReady, "")
				return
			}
			// The Alert names its Provider and the Provider's reason, and a
			// Warning Event says it on the Provider.
			waitReady(t, a, func() []metav1.Condition { return a.Status.Conditions }, metav1.ConditionFalse, nv1beta3.ReasonProviderNotReady,
				"Provider "+e.ns+"/"+name+" is not ready: "+tt.reason)
			controlplane.Eventually(t, 20*time.Second, "a Warning Event on the Provider", func(ctx context.Context) (bool, string) {
				var events corev1.EventList
				if err := cp.Client.List(ctx, &events, client.InNamespace(e.ns)); err != nil {
					return false, err.Error()
				}
				for _, ev := range events.Items {
					if ev.InvolvedObject.Kind == "Provider" && ev.InvolvedObject.Name == name && ev.Type == corev1.EventTypeWarning && ev.Reason == tt.reason {
						return true, ""
					}
				}
				return false, fmt.Sprintf("%d events", len(events.Items))
			})
		})
	}
}

func TestAnAlertSaysWhenItsProviderIsMissingOrItsListsDoNotCompile(t *testing.T) {
	e := newEnv(t)
	inprocess.Start(t, cp.Config, e.ns, testr.NewWithOptions(t, testr.Options{Verbosity: 0}))
	tests := []struct {
		name      string
		provider  string
		exclusion []string
		reason    string
		says      string
	}{
		{"a missing Provider is named", "nowhere", nil, nv1beta3.ReasonProviderNotFound, "spec.providerRef: Provider NS/nowhere not found"},
		{"an exclusion that is not a regular expression is named", "nowhere", []string{"ok", "(unclosed"}, nv1beta3.ReasonInvalidRegex, "spec.exclusionList[1]"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := &nv1beta3.Alert{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("alert-%d", i), Namespace: e.ns}, Spec: nv1beta3.AlertSpec{
				ProviderRef:   nv1beta3.LocalObjectReference{Name: tt.provider},
				EventSources:  []nv1beta3.CrossNamespaceObjectReference{{Kind: "Canary", Name: "*"}},
				ExclusionList: tt.exclusion,
			}}
			e.create(a)
			waitReady(t, a, func() []metav1.Condition { return a.Status.Conditions }, metav1.ConditionFalse, tt.reason, strings.ReplaceAll(tt.says, "NS", e.ns))
		})
	}
}
