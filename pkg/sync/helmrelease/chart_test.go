package helmrelease

import (
	"maps"
	"testing"

	sourcev1 "sluice.dev/sluice/api/source/v1"
	syncv2 "sluice.dev/sluice/api/sync/v2"
)

// TestTheHelmChartsMetadataIsTheTemplatesAsInFlux: the HelmChart made
// from spec.chart carries spec.chart.metadata as it is now, so that what
// the template no longer sets goes; the owner labels, and a reconcile
// request set on the HelmChart itself, stay.
func TestTheHelmChartsMetadataIsTheTemplatesAsInFlux(t *testing.T) {
	owner := map[string]string{OwnerNameLabel: "web", OwnerNamespaceLabel: "apps"}
	with := func(labels, annotations map[string]string) *syncv2.HelmRelease {
		hr := &syncv2.HelmRelease{Spec: syncv2.HelmReleaseSpec{Chart: &syncv2.HelmChartTemplate{}}}
		hr.Name, hr.Namespace = "web", "apps"
		if labels != nil || annotations != nil {
			hr.Spec.Chart.ObjectMeta = &syncv2.HelmChartTemplateObjectMeta{Labels: labels, Annotations: annotations}
		}
		return hr
	}
	union := func(a, b map[string]string) map[string]string {
		out := maps.Clone(a)
		maps.Copy(out, b)
		return out
	}
	request := map[string]string{sourcev1.ReconcileRequestAnnotation: "now"}
	tests := []struct {
		name                    string
		hr                      *syncv2.HelmRelease
		current                 map[string]string
		labels, wantAnnotations map[string]string
	}{
		{"the template's labels and annotations are set", with(map[string]string{"team": "web"}, map[string]string{"note": "x"}), nil,
			union(owner, map[string]string{"team": "web"}), map[string]string{"note": "x"}},
		{"what the template no longer sets goes", with(nil, nil), map[string]string{"note": "x", "other": "y"}, owner, nil},
		{"a reconcile request on the HelmChart stays", with(nil, map[string]string{"note": "x"}), union(request, map[string]string{"old": "y"}),
			owner, union(request, map[string]string{"note": "x"})},
		{"the owner labels win over the template's", with(map[string]string{OwnerNameLabel: "other"}, nil), nil, owner, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := chartLabels(tt.hr); !maps.Equal(got, tt.labels) {
				t.Errorf("labels %v, want %v", got, tt.labels)
			}
			if got := chartAnnotations(tt.hr, tt.current); !maps.Equal(got, tt.wantAnnotations) {
				t.Errorf("annotations %v, want %v", got, tt.wantAnnotations)
			}
		})
	}
}
