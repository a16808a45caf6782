package kustomization

import (
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	syncv1 "sluice.dev/sluice/api/sync/v1"
)

func TestAHealthCheckNamingAFluxGroupChecksSluicesKind(t *testing.T) {
	tests := []struct {
		name, apiVersion, kind, wantGroup string
	}{
		{"a HelmRelease of Flux's helm group is Sluice's", "helm.toolkit.fluxcd.io/v2", "HelmRelease", "sync.sluice.dev"},
		{"a Kustomization of Flux's kustomize group is Sluice's", "kustomize.toolkit.fluxcd.io/v1", "Kustomization", "sync.sluice.dev"},
		{"a source of Flux's source group is Sluice's", "source.toolkit.fluxcd.io/v1", "GitRepository", "source.sluice.dev"},
		{"a Deployment keeps its group", "apps/v1", "Deployment", "apps"},
		{"a core object keeps the empty group", "v1", "Service", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ks := &syncv1.Kustomization{ObjectMeta: metav1.ObjectMeta{Namespace: "apps"}, Spec: syncv1.KustomizationSpec{
				HealthChecks: []syncv1.NamespacedObjectKindReference{{APIVersion: tt.apiVersion, Kind: tt.kind, Name: "app"}},
			}}
			set, err := HealthChecks(ks)
			if err != nil {
				t.Fatal(err)
			}
			if len(set) != 1 || set[0].GroupKind.Group != tt.wantGroup || set[0].GroupKind.Kind != tt.kind || set[0].Namespace != "apps" {
				t.Fatalf("health checks %v, want %s %s in apps", set, tt.wantGroup, tt.kind)
			}
		})
	}
}
