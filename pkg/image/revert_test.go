package image

import (
	"fmt"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	imagev1 "sluice.dev/sluice/api/image/v1"
)

func automationAt(tag string, recorded ...imagev1.CanaryFailure) *imagev1.ImageUpdateAutomation {
	a := &imagev1.ImageUpdateAutomation{ObjectMeta: metav1.ObjectMeta{Namespace: "flux-system", Name: "apps"}}
	a.Status.ObservedPolicies = map[string]imagev1.ImageRef{"podinfo": {Name: "ghcr.io/org/podinfo", Tag: tag}}
	a.Status.CanaryFailures = recorded
	return a
}

func TestNewFailures(t *testing.T) {
	now := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	failedOn := func(target, primary string) rolledBack {
		return rolledBack{Canary: "apps/podinfo", Revision: "7d9f8b6c5d", Reason: "Rolled back: request-success-rate 70 < 99",
			Target: []string{"busybox:1", target}, Primary: []string{"busybox:1", primary}}
	}
	tests := []struct {
		name       string
		automation *imagev1.ImageUpdateAutomation
		canaries   []rolledBack
		want       []string // policy tag->revertedTo
	}{
		{
			name:       "a canary that rolled back the tag the automation wrote is a failure to revert to the primary's tag",
			automation: automationAt("1.2.0"),
			canaries:   []rolledBack{failedOn("ghcr.io/org/podinfo:1.2.0", "ghcr.io/org/podinfo:1.1.0")},
			want:       []string{"flux-system/podinfo 1.2.0->1.1.0"},
		},
		{
			name:       "a digest-pinned image is read by its tag",
			automation: automationAt("1.2.0"),
			canaries:   []rolledBack{failedOn("ghcr.io/org/podinfo:1.2.0@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", "ghcr.io/org/podinfo:1.1.0")},
			want:       []string{"flux-system/podinfo 1.2.0->1.1.0"},
		},
		{
			name:       "a canary that failed another tag than the one written is not the automation's",
			automation: automationAt("1.3.0"),
			canaries:   []rolledBack{failedOn("ghcr.io/org/podinfo:1.2.0", "ghcr.io/org/podinfo:1.1.0")},
		},
		{
			name:       "a canary running another image is not the automation's",
			automation: automationAt("1.2.0"),
			canaries:   []rolledBack{failedOn("ghcr.io/org/other:1.2.0", "ghcr.io/org/other:1.1.0")},
		},
		{
			name:       "a failure whose primary runs the same tag failed for another reason than the image",
			automation: automationAt("1.2.0"),
			canaries:   []rolledBack{failedOn("ghcr.io/org/podinfo:1.2.0", "ghcr.io/org/podinfo:1.2.0")},
		},
		{
			name:       "a failure without a primary has no tag to go back to",
			automation: automationAt("1.2.0"),
			canaries:   []rolledBack{{Canary: "apps/podinfo", Target: []string{"ghcr.io/org/podinfo:1.2.0"}}},
		},
		{
			name:       "a failure already recorded is not found again",
			automation: automationAt("1.2.0", imagev1.CanaryFailure{Policy: "flux-system/podinfo", Tag: "1.2.0"}),
			canaries:   []rolledBack{failedOn("ghcr.io/org/podinfo:1.2.0", "ghcr.io/org/podinfo:1.1.0")},
		},
		{
			name:       "two canaries failing the same tag make one failure",
			automation: automationAt("1.2.0"),
			canaries: []rolledBack{
				failedOn("ghcr.io/org/podinfo:1.2.0", "ghcr.io/org/podinfo:1.1.0"),
				failedOn("ghcr.io/org/podinfo:1.2.0", "ghcr.io/org/podinfo:1.0.0"),
			},
			want: []string{"flux-system/podinfo 1.2.0->1.1.0"},
		},
		{
			name: "Docker Hub names match in any spelling",
			automation: func() *imagev1.ImageUpdateAutomation {
				a := automationAt("")
				a.Status.ObservedPolicies = map[string]imagev1.ImageRef{"nginx": {Name: "nginx", Tag: "1.27"}}
				return a
			}(),
			canaries: []rolledBack{{Canary: "web/nginx", Target: []string{"docker.io/library/nginx:1.27"}, Primary: []string{"index.docker.io/library/nginx:1.26"}}},
			want:     []string{"flux-system/nginx 1.27->1.26"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := newFailures(tt.automation, tt.canaries, now)
			var short []string
			for _, f := range got {
				short = append(short, fmt.Sprintf("%s %s->%s", f.Policy, f.Tag, f.RevertedTo))
				if !f.Time.Time.Equal(now) {
					t.Errorf("failure time %v", f.Time)
				}
			}
			if strings.Join(short, ",") != strings.Join(tt.want, ",") {
				t.Fatalf("got %v, want %v", short, tt.want)
			}
		})
	}
}

func TestRevertMessageNamesTheCanaryTheRevisionAndTheReason(t *testing.T) {
	a := automationAt("1.2.0")
	msg := revertMessage(a, []imagev1.CanaryFailure{{
		Policy: "flux-system/podinfo", Image: "ghcr.io/org/podinfo", Tag: "1.2.0", RevertedTo: "1.1.0",
		Canary: "apps/podinfo", Revision: "7d9f8b6c5d", Reason: "Rolled back: request-success-rate 70 < 99",
	}})
	subject, _, _ := strings.Cut(msg, "\n")
	if subject != "Revert ghcr.io/org/podinfo to 1.1.0: Canary apps/podinfo rolled back 1.2.0" {
		t.Errorf("subject %q", subject)
	}
	for _, want := range []string{"7d9f8b6c5d", "request-success-rate 70 < 99", "ImagePolicy flux-system/podinfo skips 1.2.0", "ImageUpdateAutomation flux-system/apps"} {
		if !strings.Contains(msg, want) {
			t.Errorf("the message does not say %q:\n%s", want, msg)
		}
	}
}

func TestRememberFailuresKeepsTheNewest(t *testing.T) {
	var recorded []imagev1.CanaryFailure
	for i := range maxCanaryFailures + 3 {
		recorded = rememberFailures(recorded, []imagev1.CanaryFailure{{Tag: fmt.Sprint(i)}})
	}
	if len(recorded) != maxCanaryFailures || recorded[0].Tag != "3" || recorded[len(recorded)-1].Tag != fmt.Sprint(maxCanaryFailures+2) {
		t.Fatalf("kept %+v", recorded)
	}
}
