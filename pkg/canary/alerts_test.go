package canary_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	sluicev1beta1 "sluice.dev/sluice/api/v1beta1"
	"sluice.dev/sluice/test/controlplane"
)

// chat is a Slack incoming webhook on loopback that answers every post
// with code and keeps the texts it got.
type chat struct {
	*httptest.Server
	mu    sync.Mutex
	code  int
	texts []string
}

func newChat(t *testing.T, code int) *chat {
	t.Helper()
	c := &chat{code: code}
	c.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		c.mu.Lock()
		c.texts = append(c.texts, string(body))
		code := c.code
		c.mu.Unlock()
		w.WriteHeader(code)
		_, _ = io.WriteString(w, "ok")
	}))
	t.Cleanup(c.Close)
	return c
}

// got reports whether a post mentioned text.
func (c *chat) got(text string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, t := range c.texts {
		if strings.Contains(t, text) {
			return true
		}
	}
	return false
}

// slackProvider is an AlertProvider whose address is in Secret secret.
func slackProvider(ns, name, secret string) *sluicev1beta1.AlertProvider {
	return &sluicev1beta1.AlertProvider{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec:       sluicev1beta1.AlertProviderSpec{Type: "slack", Channel: "releases", SecretRef: &corev1.LocalObjectReference{Name: secret}},
	}
}

// waitCondition waits until the condition typ of obj, read again each
// time, has status and a message holding words.
func waitCondition(t *testing.T, obj interface {
	client.Object
	GetConditions() []metav1.Condition
}, typ string, status metav1.ConditionStatus, reason string, words ...string) {
	t.Helper()
	controlplane.Eventually(t, 30*time.Second, fmt.Sprintf("%T %s %s=%s %s", obj, obj.GetName(), typ, status, reason), func(ctx context.Context) (bool, string) {
		if err := cp.Client.Get(ctx, client.ObjectKeyFromObject(obj), obj); err != nil {
			return false, err.Error()
		}
		c := meta.FindStatusCondition(obj.GetConditions(), typ)
		if c == nil || c.Status != status || c.Reason != reason {
			return false, fmt.Sprintf("conditions %+v", obj.GetConditions())
		}
		for _, w := range words {
			if !strings.Contains(c.Message, w) {
				return false, fmt.Sprintf("%s message %q", typ, c.Message)
			}
		}
		return true, ""
	})
}

// waitWarning waits for a Warning Event about the object kind/name with
// reason.
func waitWarning(t *testing.T, ns, kind, name, reason string) eventsv1.Event {
	t.Helper()
	var found eventsv1.Event
	controlplane.Eventually(t, 30*time.Second, "Warning "+reason+" about "+kind+"/"+name, func(ctx context.Context) (bool, string) {
		var list eventsv1.EventList
		if err := cp.Client.List(ctx, &list, client.InNamespace(ns)); err != nil {
			return false, err.Error()
		}
		var seen []string
		for _, e := range list.Items {
			if e.Regarding.Kind == kind && e.Regarding.Name == name && e.Reason == reason && e.Type == corev1.EventTypeWarning {
				found = e
				return true, ""
			}
			seen = append(seen, e.Regarding.Kind+"/"+e.Reason)
		}
		return false, fmt.Sprintf("events %v", seen)
	})
	return found
}

func TestAnAlertProviderThatCannotDeliverIsReportedOnItselfAndOnItsCanaries(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "alert-provider")
	startOperator(t, f.ns)
	// The provider comes first, with its Secret missing: it says so at
	// once, before any alert is due.
	provider := slackProvider(f.ns, "chat", "chat-url")
	f.create(provider)
	waitCondition(t, provider, sluicev1beta1.ReadyCondition, metav1.ConditionFalse, sluicev1beta1.AlertProviderReasonSecretNotFound, "spec.secretRef", "chat-url")
	if !meta.IsStatusConditionTrue(provider.Status.Conditions, sluicev1beta1.StalledCondition) {
		t.Errorf("conditions %+v, want Stalled until the Secret exists", provider.Status.Conditions)
	}
	waitWarning(t, f.ns, "AlertProvider", "chat", sluicev1beta1.AlertProviderReasonSecretNotFound)

	// A Canary that alerts through it says so too, and is not held back.
	c := f.canary("Deployment", sluicev1beta1.CanaryAnalysis{
		Iterations: 1,
		Alerts:     []sluicev1beta1.CanaryAlert{{Name: "chat", Severity: sluicev1beta1.SeverityInfo, ProviderRef: sluicev1beta1.CrossNamespaceObjectReference{Name: "chat"}}},
	})
	f.create(f.deployment("podinfo:6.0.0"), c)
	f.initialized()
	waitCondition(t, c, sluicev1beta1.AlertsReadyCondition, metav1.ConditionFalse, "AlertProviderNotReady",
		"spec.analysis.alerts[0].providerRef", "AlertProvider alert-provider/chat is not ready", "SecretNotFound")
	waitWarning(t, f.ns, "Canary", "podinfo", "AlertProviderNotReady")

	// The Secret arrives, naming a service that refuses the posts.
	service := newChat(t, http.StatusBadRequest)
	f.create(&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "chat-url", Namespace: f.ns}, StringData: map[string]string{"address": service.URL}})
	waitCondition(t, provider, sluicev1beta1.ReadyCondition, metav1.ConditionTrue, sluicev1beta1.AlertProviderReasonResolved)
	waitCondition(t, c, sluicev1beta1.AlertsReadyCondition, metav1.ConditionTrue, "AlertProvidersReady")

	// The next alert fails, and both say so.
	target := &appsv1.Deployment{}
	f.update(target, "podinfo", func() { target.Spec.Template.Spec.Containers[0].Image = "podinfo:6.0.1" })
	waitCondition(t, provider, sluicev1beta1.ReadyCondition, metav1.ConditionFalse, sluicev1beta1.AlertProviderReasonDeliveryFailed, "NewRevision", "400")
	waitWarning(t, f.ns, "AlertProvider", "chat", sluicev1beta1.AlertProviderReasonDeliveryFailed)
	waitCondition(t, c, sluicev1beta1.AlertsReadyCondition, metav1.ConditionFalse, "AlertProviderNotReady", "DeliveryFailed")
	if !service.got("NewRevision") && !service.got("New revision") {
		t.Errorf("the service never got the alert")
	}
	// The release went on regardless.
	f.waitPhase(sluicev1beta1.CanaryPhaseSucceeded, 90*time.Second)
}
