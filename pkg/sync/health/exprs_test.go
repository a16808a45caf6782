package health_test

import (
	"strings"
	"testing"

	"github.com/fluxcd/cli-utils/pkg/kstatus/status"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	syncv1 "sluice.dev/sluice/api/sync/v1"
	"sluice.dev/sluice/pkg/sync/celexpr"
	"sluice.dev/sluice/pkg/sync/health"
)

// widgetChecks are Flux's example of healthCheckExprs, for a kind with a
// Synced condition.
var widgetChecks = []syncv1.CustomHealthCheck{{
	APIVersion: "example.com/v1", Kind: "Widget",
	InProgress: "status.conditions.exists(c, c.type == 'Synced' && c.status == 'Unknown')",
	Failed:     "status.conditions.filter(c, c.type == 'Synced').all(c, c.status == 'False')",
	Current:    "status.conditions.filter(c, c.type == 'Synced').all(c, c.status == 'True')",
}}

func widgetObject(apiVersion string, generation int64, status map[string]any) *unstructured.Unstructured {
	u := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": apiVersion, "kind": "Widget",
		"metadata": map[string]any{"name": "w", "namespace": "ns", "generation": generation},
	}}
	if status != nil {
		u.Object["status"] = status
	}
	return u
}

func synced(s string, observed int64) map[string]any {
	return map[string]any{"observedGeneration": observed, "conditions": []any{map[string]any{"type": "Synced", "status": s}}}
}

func TestHealthCheckExprsDecideTheStatusOfTheirKind(t *testing.T) {
	tests := []struct {
		name    string
		obj     *unstructured.Unstructured
		custom  bool
		want    status.Status
		message string
	}{
		{"current is true", widgetObject("example.com/v1", 1, synced("True", 1)), true, status.CurrentStatus, ""},
		{"failed is tried before current", widgetObject("example.com/v1", 1, synced("False", 1)), true, status.FailedStatus, "spec.healthCheckExprs[0].failed is true"},
		{"inProgress is tried first", widgetObject("example.com/v1", 1, synced("Unknown", 1)), true, status.InProgressStatus, "spec.healthCheckExprs[0].inProgress is true"},
		{"a lagging observedGeneration is in progress", widgetObject("example.com/v1", 2, synced("True", 1)), true, status.InProgressStatus, "observedGeneration"},
		{"a missing status cannot be evaluated and is waited for", widgetObject("example.com/v1", 1, nil), true, status.UnknownStatus, "spec.healthCheckExprs[0].inProgress: no such attribute"},
		{"another version of the kind is judged the same", widgetObject("example.com/v2", 1, synced("True", 1)), true, status.CurrentStatus, ""},
		{"another group is left to kstatus", widgetObject("other.com/v1", 1, synced("False", 1)), false, "", ""},
	}
	var cache celexpr.Cache
	x, err := health.CompileExprs(&cache, "spec.healthCheckExprs", widgetChecks)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, custom := x.Status(t.Context(), tt.obj)
			if custom != tt.custom {
				t.Fatalf("judged by the expressions: %v, want %v", custom, tt.custom)
			}
			if !custom {
				return
			}
			if res.Status != tt.want || !strings.Contains(res.Message, tt.message) {
				t.Fatalf("got %s %q, want %s with %q", res.Status, res.Message, tt.want, tt.message)
			}
		})
	}
}

func TestAHealthCheckExprThatDoesNotCompileIsNamed(t *testing.T) {
	tests := []struct {
		name  string
		check syncv1.CustomHealthCheck
		field string
	}{
		{"a syntax error in current", syncv1.CustomHealthCheck{APIVersion: "example.com/v1", Kind: "Widget", Current: "status.phase =="}, "spec.healthCheckExprs[1].current"},
		{"has() of a top-level field in failed", syncv1.CustomHealthCheck{APIVersion: "example.com/v1", Kind: "Widget", Current: "true", Failed: "has(status)"}, "spec.healthCheckExprs[1].failed"},
		{"an empty current", syncv1.CustomHealthCheck{APIVersion: "example.com/v1", Kind: "Widget"}, "spec.healthCheckExprs[1].current"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var cache celexpr.Cache
			_, err := health.CompileExprs(&cache, "spec.healthCheckExprs", append(append([]syncv1.CustomHealthCheck{}, widgetChecks...), tt.check))
			if err == nil || !strings.HasPrefix(err.Error(), tt.field+": ") {
				t.Fatalf("error %v, want one naming %s", err, tt.field)
			}
		})
	}
}

func TestAHealthCheckExprNamingFluxsGroupJudgesSluicesKind(t *testing.T) {
	var cache celexpr.Cache
	x, err := health.CompileExprs(&cache, "spec.healthCheckExprs", []syncv1.CustomHealthCheck{{APIVersion: "helm.toolkit.fluxcd.io/v2", Kind: "HelmRelease", Current: "true"}})
	if err != nil {
		t.Fatal(err)
	}
	hr := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "sync.sluice.dev/v2", "kind": "HelmRelease", "metadata": map[string]any{"name": "app", "generation": int64(1)}}}
	if res, custom := x.Status(t.Context(), hr); !custom || res.Status != status.CurrentStatus {
		t.Fatalf("custom %v, result %+v: want Sluice's HelmRelease judged by the entry of Flux's group", custom, res)
	}
}

func TestAHealthCheckExprWithoutAKindJudgesEveryKindOfItsGroupBelowANamedKind(t *testing.T) {
	checks := []syncv1.CustomHealthCheck{
		// The group's entry holds every object Current...
		{APIVersion: "example.com/v1", Current: "true"},
		// ...except a Widget, whose own entry says Failed.
		{APIVersion: "example.com/v1", Kind: "Widget", Current: "false", Failed: "true"},
	}
	var cache celexpr.Cache
	x, err := health.CompileExprs(&cache, "spec.healthCheckExprs", checks)
	if err != nil {
		t.Fatal(err)
	}
	gadget := widgetObject("example.com/v1", 1, nil)
	gadget.SetKind("Gadget")
	tests := []struct {
		name   string
		obj    *unstructured.Unstructured
		custom bool
		want   status.Status
	}{
		{"a kind with its own entry is judged by it", widgetObject("example.com/v1", 1, nil), true, status.FailedStatus},
		{"another kind of the group is judged by the group's entry", gadget, true, status.CurrentStatus},
		{"another group is left to kstatus", widgetObject("other.com/v1", 1, nil), false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, custom := x.Status(t.Context(), tt.obj)
			if custom != tt.custom || custom && res.Status != tt.want {
				t.Fatalf("custom %v, result %+v; want custom %v and %s", custom, res, tt.custom, tt.want)
			}
		})
	}
}
