package helmrelease

import (
	"testing"

	"helm.sh/helm/v4/pkg/release/common"
	releasev1 "helm.sh/helm/v4/pkg/release/v1"

	syncv2 "sluice.dev/sluice/api/sync/v2"
)

func TestTheReleaseRecordSaysWhatItWasPostRenderedWithNotAStaleStatus(t *testing.T) {
	hr := &syncv2.HelmRelease{}
	want := postRenderersDigest(hr)
	other := "sha256:" + labelDigest("sha256:0123456789abcdef0123456789abcdef0123456789abcdef")
	tests := []struct {
		name     string
		labels   map[string]string
		status   string
		observed string
	}{
		{"a record rendered as the spec says is up to date, though the status has not caught up", map[string]string{postRenderersLabel: labelDigest(want)}, "", want},
		{"a record rendered otherwise is not, though the status says it is", map[string]string{postRenderersLabel: "0123456789abcdef0123456789abcdef01234567"}, want, other},
		{"a record of an older Sluice leaves it to the status", nil, "sha256:from-status", "sha256:from-status"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hr.Status.ObservedPostRenderersDigest = tt.status
			rel := &releasev1.Release{Name: "app", Version: 1, Labels: tt.labels, Info: &releasev1.Info{Status: common.StatusDeployed}}
			o := observe(hr, rel, []*releasev1.Release{rel}, "1.0.0", "sha256:values")
			if o.ObservedPostRenderersDigest != tt.observed {
				t.Fatalf("observed %q, want %q", o.ObservedPostRenderersDigest, tt.observed)
			}
			if got := releaseLabels(o)[postRenderersLabel]; len(got) > 63 || got != labelDigest(want) {
				t.Fatalf("label %q is not a label value of the spec's digest", got)
			}
		})
	}
}
