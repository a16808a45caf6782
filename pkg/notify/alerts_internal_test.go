package notify

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	nv1beta3 "sluice.dev/sluice/api/notification/v1beta3"
)

func TestAnAlertSelectsTheEventsOfItsSources(t *testing.T) {
	kustomization := corev1.ObjectReference{Kind: "Kustomization", APIVersion: "sync.sluice.dev/v1", Namespace: "apps", Name: "podinfo"}
	canary := corev1.ObjectReference{Kind: "Canary", APIVersion: "sluice.dev/v1beta1", Namespace: "apps", Name: "web"}
	source := func(kind, name string) nv1beta3.CrossNamespaceObjectReference {
		return nv1beta3.CrossNamespaceObjectReference{Kind: kind, Name: name}
	}
	tests := []struct {
		name     string
		spec     nv1beta3.AlertSpec
		obj      corev1.ObjectReference
		labels   map[string]string
		severity string
		message  string
		selected bool
	}{
		{name: "a source by kind and name selects its object", spec: nv1beta3.AlertSpec{EventSources: []nv1beta3.CrossNamespaceObjectReference{source("Kustomization", "podinfo")}}, obj: kustomization, selected: true},
		{name: "another name is not selected", spec: nv1beta3.AlertSpec{EventSources: []nv1beta3.CrossNamespaceObjectReference{source("Kustomization", "other")}}, obj: kustomization},
		{name: "another kind of the same name is not selected", spec: nv1beta3.AlertSpec{EventSources: []nv1beta3.CrossNamespaceObjectReference{source("HelmRelease", "podinfo")}}, obj: kustomization},
		{name: "a star selects every object of the kind", spec: nv1beta3.AlertSpec{EventSources: []nv1beta3.CrossNamespaceObjectReference{source("Canary", "*")}}, obj: canary, selected: true},
		{name: "a star with matchLabels selects the objects with those labels", spec: nv1beta3.AlertSpec{EventSources: []nv1beta3.CrossNamespaceObjectReference{{Kind: "Canary", Name: "*", MatchLabels: map[string]string{"team": "web"}}}},
			obj: canary, labels: map[string]string{"team": "web", "tier": "front"}, selected: true},
		{name: "a star with matchLabels leaves out the others", spec: nv1beta3.AlertSpec{EventSources: []nv1beta3.CrossNamespaceObjectReference{{Kind: "Canary", Name: "*", MatchLabels: map[string]string{"team": "web"}}}},
			obj: canary, labels: map[string]string{"team": "data"}},
		{name: "a source in another namespace selects there", spec: nv1beta3.AlertSpec{EventSources: []nv1beta3.CrossNamespaceObjectReference{{Kind: "Canary", Name: "web", Namespace: "apps"}}},
			obj: canary, selected: true},
		{name: "without a namespace the source is in the Alert's", spec: nv1beta3.AlertSpec{EventSources: []nv1beta3.CrossNamespaceObjectReference{source("Canary", "web")}},
			obj: corev1.ObjectReference{Kind: "Canary", Namespace: "other", Name: "web"}},
		{name: "an apiVersion of Flux's group does not select Sluice's kind", spec: nv1beta3.AlertSpec{EventSources: []nv1beta3.CrossNamespaceObjectReference{{Kind: "Kustomization", Name: "podinfo", APIVersion: "kustomize.toolkit.fluxcd.io/v1"}}},
			obj: kustomization},
		{name: "an apiVersion of another version of the group selects", spec: nv1beta3.AlertSpec{EventSources: []nv1beta3.CrossNamespaceObjectReference{{Kind: "Kustomization", Name: "podinfo", APIVersion: "sync.sluice.dev/v1beta2"}}},
			obj: kustomization, selected: true},
		{name: "error severity leaves out info events", spec: nv1beta3.AlertSpec{EventSeverity: "error", EventSources: []nv1beta3.CrossNamespaceObjectReference{source("Canary", "*")}}, obj: canary, severity: severityInfo},
		{name: "error severity sends error events", spec: nv1beta3.AlertSpec{EventSeverity: "error", EventSources: []nv1beta3.CrossNamespaceObjectReference{source("Canary", "*")}}, obj: canary, severity: severityError, selected: true},
		{name: "an inclusion list sends only matching messages", spec: nv1beta3.AlertSpec{InclusionList: []string{"^Rolled back"}, EventSources: []nv1beta3.CrossNamespaceObjectReference{source("Canary", "*")}},
			obj: canary, message: "Promotion completed"},
		{name: "an inclusion list sends a matching message", spec: nv1beta3.AlertSpec{InclusionList: []string{"^Rolled back"}, EventSources: []nv1beta3.CrossNamespaceObjectReference{source("Canary", "*")}},
			obj: canary, message: "Rolled back web", selected: true},
		{name: "an exclusion list drops a matching message", spec: nv1beta3.AlertSpec{ExclusionList: []string{"waiting"}, EventSources: []nv1beta3.CrossNamespaceObjectReference{source("Canary", "*")}},
			obj: canary, message: "web is waiting for approval"},
		{name: "a suspended Alert sends nothing", spec: nv1beta3.AlertSpec{Suspend: true, EventSources: []nv1beta3.CrossNamespaceObjectReference{source("Canary", "*")}}, obj: canary},
		{name: "a list that does not compile sends nothing", spec: nv1beta3.AlertSpec{ExclusionList: []string{"(x"}, EventSources: []nv1beta3.CrossNamespaceObjectReference{source("Canary", "*")}}, obj: canary},
	}
	d, err := NewDispatcher(Options{Reader: noReader{}})
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := &nv1beta3.Alert{ObjectMeta: metav1.ObjectMeta{Namespace: "apps", Name: "a"}, Spec: tt.spec}
			e := Event{InvolvedObject: tt.obj, Severity: cmpOr(tt.severity, severityError), Message: cmpOr(tt.message, "something happened")}
			if got := d.selects(a, e, tt.labels); got != tt.selected {
				t.Errorf("selected %v, want %v", got, tt.selected)
			}
		})
	}
}

func TestAnAlertsMetadataNeverReplacesTheEvents(t *testing.T) {
	a := &nv1beta3.Alert{Spec: nv1beta3.AlertSpec{EventMetadata: map[string]string{"cluster": "prod", "revision": "forged"}, Summary: "web releases"}}
	event := map[string]string{"revision": "main@sha1:abc"}
	got := withAlertMetadata(event, a)
	want := map[string]string{"cluster": "prod", "revision": "main@sha1:abc", "summary": "web releases"}
	if len(got) != len(want) {
		t.Fatalf("metadata %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("metadata %s = %q, want %q", k, got[k], v)
		}
	}
	if len(event) != 1 {
		t.Errorf("the Event's own metadata was changed: %v", event)
	}
}
