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

	sluicev1beta1 "sluice.dev/sluice/api/v1beta1"
	"sluice.dev/sluice/test/controlplane"
	"sluice.dev/sluice/test/inprocess"
)

func TestAnAlertProviderSaysWhyItCannotWorkBeforeAnyAlert(t *testing.T) {
	e := newEnv(t)
	inprocess.Start(t, cp.Config, e.ns, testr.NewWithOptions(t, testr.Options{Verbosity: 0}))
	tests := []struct {
		name    string
		spec    sluicev1beta1.AlertProviderSpec
		secret  map[string]string
		status  metav1.ConditionStatus
		reason  string
		says    string
		stalled bool
	}{
		{"an address in the spec resolves", sluicev1beta1.AlertProviderSpec{Type: "slack", Address: "https://hooks.example.com/services/T0/B0/x"}, nil,
			metav1.ConditionTrue, sluicev1beta1.AlertProviderReasonResolved, "resolve", false},
		{"an address in the Secret resolves", sluicev1beta1.AlertProviderSpec{Type: "msteams"}, map[string]string{"address": "https://example.webhook.office.com/x"},
			metav1.ConditionTrue, sluicev1beta1.AlertProviderReasonResolved, "resolve", false},
		{"a missing Secret is named", sluicev1beta1.AlertProviderSpec{Type: "discord", SecretRef: &corev1.LocalObjectReference{Name: "nowhere"}}, nil,
			metav1.ConditionFalse, sluicev1beta1.AlertProviderReasonSecretNotFound, "Secret " + "NS/nowhere not found", true},
		{"a Secret without an address, and no spec.address, has none", sluicev1beta1.AlertProviderSpec{Type: "rocket"}, map[string]string{"user": "x"},
			metav1.ConditionFalse, sluicev1beta1.AlertProviderReasonAddressNotFound, "no address", true},
		{"an address that is not http or https is refused without being shown", sluicev1beta1.AlertProviderSpec{Type: "gchat"}, map[string]string{"address": "ftp://chat.example.com/secret-token"},
			metav1.ConditionFalse, sluicev1beta1.AlertProviderReasonInvalidAddress, "not an http or https URL", true},
		{"a Slack bot token needs no address", sluicev1beta1.AlertProviderSpec{Type: "slack"}, map[string]string{"token": "xoxb-1"},
			metav1.ConditionTrue, sluicev1beta1.AlertProviderReasonResolved, "resolve", false},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			name := fmt.Sprintf("provider-%d", i)
			e.provider(name, tt.spec, tt.secret)
			key := client.ObjectKey{Namespace: e.ns, Name: name}
			p := &sluicev1beta1.AlertProvider{}
			controlplane.Eventually(t, 20*time.Second, "Ready "+tt.reason, func(ctx context.Context) (bool, string) {
				if err := cp.Client.Get(ctx, key, p); err != nil {
					return false, err.Error()
				}
				c := meta.FindStatusCondition(p.Status.Conditions, sluicev1beta1.ReadyCondition)
				return c != nil && c.Status == tt.status && c.Reason == tt.reason, fmt.Sprintf("conditions %+v", p.Status.Conditions)
			})
			ready := meta.FindStatusCondition(p.Status.Conditions, sluicev1beta1.ReadyCondition)
			if says := strings.ReplaceAll(tt.says, "NS", e.ns); !strings.Contains(ready.Message, says) || strings.Contains(ready.Message, "secret-token") {
				t.Errorf("Ready message %q, want it to say %q and show no address", ready.Message, says)
			}
			if got := meta.IsStatusConditionTrue(p.Status.Conditions, sluicev1beta1.StalledCondition); got != tt.stalled {
				t.Errorf("Stalled %v, want %v", got, tt.stalled)
			}
			if p.Status.ObservedGeneration != p.Generation {
				t.Errorf("observedGeneration %d, generation %d", p.Status.ObservedGeneration, p.Generation)
			}
		})
	}
}
