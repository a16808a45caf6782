package helmrelease

import (
	"testing"

	"helm.sh/helm/v4/pkg/release/common"
	releasev1 "helm.sh/helm/v4/pkg/release/v1"

	syncv1 "sluice.dev/sluice/api/sync/v1"
	syncv2 "sluice.dev/sluice/api/sync/v2"
)

func TestTheReleaseRecordSaysWhatItWasPostRenderedWithNotAStaleStatus(t *testing.T) {
	plain := &syncv2.HelmRelease{}
	rendered := &syncv2.HelmRelease{Spec: syncv2.HelmReleaseSpec{PostRenderers: []syncv2.PostRenderer{
		{Kustomize: &syncv2.KustomizePostRenderer{Images: []syncv1.Image{{Name: "app", NewTag: "2"}}}},
	}}}
	other := "sha256:" + labelDigest("sha256:0123456789abcdef0123456789abcdef0123456789abcdef")
	tests := []struct {
		name     string
		hr       *syncv2.HelmRelease
		labels   map[string]string
		status   string
		observed string
	}{
		{"a record rendered as the spec says is up to date, though the status has not caught up", plain, map[string]string{postRenderersLabel: labelDigest(postRenderersDigest(plain))}, "", postRenderersDigest(plain)},
		{"a record rendered otherwise is not, though the status says it is", plain, map[string]string{postRenderersLabel: "0123456789abcdef0123456789abcdef01234567"}, postRenderersDigest(plain), other},
		{"a record of an older Sluice leaves it to the status", plain, nil, "sha256:from-status", "sha256:from-status"},
		{"a record made with the post-renderers of the spec is up to date, though the status has not caught up", rendered, map[string]string{postRenderersLabel: labelDigest(postRenderersDigest(rendered))}, "", postRenderersDigest(rendered)},
		{"a record made without the post-renderers the spec has now is not up to date", rendered, map[string]string{postRenderersLabel: ""}, postRenderersDigest(rendered), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.hr.Status.ObservedPostRenderersDigest = tt.status
			rel := &releasev1.Release{Name: "app", Version: 1, Labels: tt.labels, Info: &releasev1.Info{Status: common.StatusDeployed}}
			o := observe(tt.hr, rel, []*releasev1.Release{rel}, "1.0.0", "sha256:values")
			if o.ObservedPostRenderersDigest != tt.observed {
				t.Fatalf("observed %q, want %q", o.ObservedPostRenderersDigest, tt.observed)
			}
			want := labelDigest(postRenderersDigest(tt.hr))
			if got := releaseLabels(o)[postRenderersLabel]; len(got) > 63 || got != want {
				t.Fatalf("label %q is not a label value of the spec's digest %q", got, want)
			}
		})
	}
}
