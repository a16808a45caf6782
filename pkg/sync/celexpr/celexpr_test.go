package celexpr_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"sluice.dev/sluice/pkg/sync/celexpr"
)

// widget is an object as the API server serves it, decoded from JSON.
func widget(phase string) map[string]any {
	obj := map[string]any{
		"apiVersion": "example.com/v1",
		"kind":       "Widget",
		"metadata":   map[string]any{"name": "w", "generation": int64(2), "labels": map[string]any{"app/version": "v2"}},
		"spec":       map[string]any{"size": int64(3)},
	}
	if phase != "" {
		obj["status"] = map[string]any{
			"observedGeneration": int64(2),
			"conditions":         []any{map[string]any{"type": "Ready", "status": map[bool]string{true: "True", false: "False"}[phase == "Ready"]}},
			"phase":              phase,
		}
	}
	return obj
}

func TestAnExpressionOverAnObjectSeesItsTopLevelFields(t *testing.T) {
	tests := []struct {
		name    string
		expr    string
		obj     map[string]any
		want    bool
		compile string // a compile error's substring
		eval    string // an evaluation error's substring
	}{
		{name: "a condition that holds is true", expr: "status.conditions.exists(c, c.type == 'Ready' && c.status == 'True')", obj: widget("Ready"), want: true},
		{name: "a condition that does not hold is false", expr: "status.conditions.exists(c, c.type == 'Ready' && c.status == 'True')", obj: widget("Failed")},
		{name: "metadata, spec and status are variables", expr: "metadata.generation == status.observedGeneration && spec.size > 2", obj: widget("Ready"), want: true},
		{name: "an int compares with a double", expr: "spec.size == 3.0", obj: widget("Ready"), want: true},
		{name: "an optional field falls back to its default", expr: "status.?message.orValue('none') == 'none'", obj: widget("Ready"), want: true},
		{name: "has() guards a field below the top level", expr: "has(metadata.annotations) && metadata.annotations.x == 'y'", obj: widget("Ready")},
		{name: "a missing top-level field is an evaluation error", expr: "status.phase == 'Ready'", obj: widget(""), eval: "status"},
		{name: "a missing key is an evaluation error", expr: "status.missing == 'x'", obj: widget("Ready"), eval: "missing"},
		{name: "a result that is not a boolean is an evaluation error", expr: "status.phase", obj: widget("Ready"), eval: "not bool"},
		{name: "a syntax error does not compile", expr: "status.phase ==", compile: "invalid CEL expression"},
		{name: "has() of a top-level name does not compile, as in Flux", expr: "has(status)", compile: "invalid CEL expression"},
		{name: "an empty expression does not compile", expr: "  ", compile: "empty"},
		{name: "an expression over the size limit does not compile", expr: strings.Repeat("a || ", celexpr.MaxLength/5+1) + "a", compile: "invalid CEL expression"},
	}
	var cache celexpr.Cache
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, err := cache.Object(tt.expr)
			if tt.compile != "" {
				if err == nil || !strings.Contains(err.Error(), tt.compile) {
					t.Fatalf("compile error %v, want one with %q", err, tt.compile)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got, err := e.Eval(t.Context(), tt.obj)
			if tt.eval != "" {
				if err == nil || !strings.Contains(err.Error(), tt.eval) {
					t.Fatalf("evaluation error %v, want one with %q", err, tt.eval)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("got %v, %v; want %v", got, err, tt.want)
			}
		})
	}
}

func TestABooleanExpressionIsTypeCheckedOverItsVariables(t *testing.T) {
	self, dep := widget("Ready"), widget("Ready")
	dep["metadata"].(map[string]any)["labels"] = map[string]any{"app/version": "v1"}
	tests := []struct {
		name    string
		expr    string
		want    bool
		compile string
		eval    string
	}{
		{name: "labels that differ make it false", expr: "dep.metadata.labels['app/version'] == self.metadata.labels['app/version']"},
		{name: "a dependency's Ready condition makes it true", expr: "dep.status.conditions.filter(c, c.type == 'Ready').all(c, c.status == 'True')", want: true},
		{name: "a field of run-time type is checked at evaluation", expr: "dep.status.phase", eval: "not bool"},
		{name: "an undeclared variable does not compile", expr: "other.metadata.name == 'x'", compile: "undeclared reference"},
		{name: "a string result does not compile", expr: "'x' + 'y'", compile: "not bool"},
		{name: "a syntax error does not compile", expr: "dep.metadata.name ==", compile: "invalid CEL expression"},
	}
	var cache celexpr.Cache
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, err := cache.Bool(tt.expr, "self", "dep")
			if tt.compile != "" {
				if err == nil || !strings.Contains(err.Error(), tt.compile) {
					t.Fatalf("compile error %v, want one with %q", err, tt.compile)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got, err := e.Eval(t.Context(), map[string]any{"self": self, "dep": dep})
			if tt.eval != "" {
				if err == nil || !strings.Contains(err.Error(), tt.eval) {
					t.Fatalf("evaluation error %v, want one with %q", err, tt.eval)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("got %v, %v; want %v", got, err, tt.want)
			}
		})
	}
}

func TestAValueExpressionHandsItsResultToTheNext(t *testing.T) {
	var cache celexpr.Cache
	claims := map[string]any{"repository_owner": "shop", "repository": "shop/app"}
	owner, err := cache.Any("claims.repository_owner", "claims", "vars")
	if err != nil {
		t.Fatal(err)
	}
	// The same source compiled as a boolean is another program, which
	// refuses the string result at evaluation.
	asBool, err := cache.Bool("claims.repository_owner", "claims", "vars")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := asBool.Eval(t.Context(), map[string]any{"claims": claims, "vars": map[string]any{}}); err == nil || !strings.Contains(err.Error(), "not bool") {
		t.Fatalf("the boolean program gave %v, want not bool", err)
	}
	allowed, err := cache.Any("[vars.owner + '/app', vars.owner + '/web']", "claims", "vars")
	if err != nil {
		t.Fatal(err)
	}
	check, err := cache.Bool("claims.repository in vars.allowed", "claims", "vars")
	if err != nil {
		t.Fatal(err)
	}
	vars := map[string]any{}
	data := map[string]any{"claims": claims, "vars": vars}
	if vars["owner"], err = owner.EvalAny(t.Context(), data); err != nil {
		t.Fatal(err)
	}
	if vars["allowed"], err = allowed.EvalAny(t.Context(), data); err != nil {
		t.Fatal(err)
	}
	if ok, err := check.Eval(t.Context(), data); err != nil || !ok {
		t.Fatalf("got %v, %v; want true", ok, err)
	}
	if _, err := owner.EvalAny(t.Context(), map[string]any{"claims": map[string]any{}, "vars": vars}); err == nil || !strings.Contains(err.Error(), "no such key") {
		t.Fatalf("a missing claim gave %v, want no such key", err)
	}
	if _, err := cache.Any("claims.repository ==", "claims", "vars"); err == nil {
		t.Fatal("a syntax error compiled")
	}
}

func TestAHostileExpressionStopsAtTheCostLimit(t *testing.T) {
	var cache celexpr.Cache
	// Each turn joins two copies of a megabyte string from the request,
	// which CEL costs at 0.1 a byte once string() types it (a join of
	// dyn values costs 1): the cost limit stops it in a few turns, long
	// before the time limit, however slowly the code runs. The race
	// detector makes CPU-bound code ten times slower, so an expression
	// that reaches the cost limit only after a million cheap steps hits
	// the time limit first under it.
	e, err := cache.Bool("[1,2,3,4,5,6,7,8,9,10].all(a, [1,2,3,4,5,6,7,8,9,10].all(b, (string(req.s) + string(req.s)).size() > 0))", "req")
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err = e.Eval(t.Context(), map[string]any{"req": map[string]any{"s": strings.Repeat("x", 1<<20)}})
	if err == nil || !strings.Contains(err.Error(), "cost limit") {
		t.Fatalf("error %v, want the cost limit", err)
	}
	if d := time.Since(start); d > celexpr.Timeout {
		t.Fatalf("stopped after %s", d)
	}
}

func TestAnEvaluationStopsWhenItsContextEnds(t *testing.T) {
	var cache celexpr.Cache
	e, err := cache.Object("status.conditions.all(c, c.type != '')")
	if err != nil {
		t.Fatal(err)
	}
	conds := make([]any, 10_000)
	for i := range conds {
		conds[i] = map[string]any{"type": "x"}
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := e.Eval(ctx, map[string]any{"status": map[string]any{"conditions": conds}}); err == nil || !strings.Contains(err.Error(), "stopped") {
		t.Fatalf("error %v, want the evaluation stopped", err)
	}
}

func TestAnExpressionIsCompiledOncePerVariables(t *testing.T) {
	var cache celexpr.Cache
	a, err := cache.Bool("res.metadata.name == 'x'", "res", "req")
	if err != nil {
		t.Fatal(err)
	}
	b, err := cache.Bool("res.metadata.name == 'x'", "res", "req")
	if err != nil {
		t.Fatal(err)
	}
	if a != b {
		t.Fatal("the same expression was compiled twice")
	}
	if _, err := cache.Bool("res.metadata.name == 'x'", "self", "dep"); err == nil {
		t.Fatal("an expression compiled for res was reused where res is not declared")
	}
}
