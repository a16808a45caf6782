package cli

import (
	"strings"
	"testing"
	"time"
)

// The create commands' options are checked and turned into objects
// without cobra: these tests need no command line and no cluster.

func TestCanaryOptions(t *testing.T) {
	valid := canaryOptions{name: "app", target: "Deployment/app", port: 80, interval: "1m", threshold: 5, maxWeight: 50, stepWeight: 10}
	tests := []struct {
		name   string
		change func(*canaryOptions)
		err    string
		check  func(t *testing.T, o canaryOptions)
	}{
		{name: "the defaults make a progressive release", check: func(t *testing.T, o canaryOptions) {
			a := o.object().Spec.Analysis
			if a.StepWeight != 10 || a.MaxWeight != 50 || a.Iterations != 0 || a.Threshold != 5 {
				t.Errorf("analysis %+v", a)
			}
		}},
		{name: "iterations replace the weights", change: func(o *canaryOptions) { o.byIterations, o.iterations = true, 4 }, check: func(t *testing.T, o canaryOptions) {
			if a := o.object().Spec.Analysis; a.Iterations != 4 || a.StepWeight != 0 || a.MaxWeight != 0 {
				t.Errorf("analysis %+v", a)
			}
		}},
		{name: "a Service target has apiVersion v1", change: func(o *canaryOptions) { o.target = "Service/app" }, check: func(t *testing.T, o canaryOptions) {
			if ref := o.object().Spec.TargetRef; ref.APIVersion != "v1" || ref.Kind != "Service" {
				t.Errorf("targetRef %+v", ref)
			}
		}},
		{name: "metrics become checks with bounds", change: func(o *canaryOptions) { o.metrics = []string{"request-success-rate:min=99,interval=30s"} }, check: func(t *testing.T, o canaryOptions) {
			m := o.object().Spec.Analysis.Metrics
			if len(m) != 1 || *m[0].ThresholdRange.Min != 99 || m[0].Interval != "30s" {
				t.Errorf("metrics %+v", m)
			}
		}},
		{name: "a target in another namespace is refused", change: func(o *canaryOptions) { o.target = "Deployment/other/app" }, err: "the target is in the Canary's namespace"},
		{name: "a threshold under 1 is refused", change: func(o *canaryOptions) { o.threshold = 0 }, err: "--threshold 0 must be at least 1"},
		{name: "zero iterations are refused", change: func(o *canaryOptions) { o.byIterations = true }, err: "--iterations 0 must be at least 1"},
		{name: "a bad metric is refused", change: func(o *canaryOptions) { o.metrics = []string{"errors"} }, err: `--metric "errors" sets no bound`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := valid
			if tt.change != nil {
				tt.change(&o)
			}
			err := o.validate()
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("got %v, want an error with %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, o)
		})
	}
}

func TestKustomizationOptionsTurnFlagsIntoTheSpec(t *testing.T) {
	o := kustomizationOptions{name: "apps", source: "GitRepository/flux-system/fleet", path: "./apps", dependsOn: []string{"infra", "monitoring/prometheus"}, prune: true, interval: time.Minute}
	if err := o.validate(); err != nil {
		t.Fatal(err)
	}
	ks := o.object()
	if ks.Spec.SourceRef.Namespace != "flux-system" || ks.Spec.SourceRef.Name != "fleet" || len(ks.Spec.DependsOn) != 2 || ks.Spec.DependsOn[1].Namespace != "monitoring" || !ks.Spec.Prune {
		t.Fatalf("spec %+v", ks.Spec)
	}
}
