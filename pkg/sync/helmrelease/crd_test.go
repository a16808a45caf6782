package helmrelease_test

import (
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	syncv2 "sluice.dev/sluice/api/sync/v2"
)

// TestFieldsOutsideFluxsBoundsAreRefusedByTheAPIServer sends, with
// strict field validation as kubectl does, HelmReleases that Flux's CRD
// refuses, and checks that the API server refuses each naming the field:
// Flux's bounds on names and maxHistory, its pattern of a values
// targetPath, and an install remediation's strategy, which Flux's
// install remediation does not have (an install is only remediated by
// uninstalling).
func TestFieldsOutsideFluxsBoundsAreRefusedByTheAPIServer(t *testing.T) {
	tests := []struct {
		name  string
		field string
		value any
		path  []string
	}{
		{"a negative maxHistory", "spec.maxHistory", int64(-1), []string{"spec", "maxHistory"}},
		{"a targetNamespace longer than a namespace", "spec.targetNamespace", strings.Repeat("a", 64), []string{"spec", "targetNamespace"}},
		{"a storageNamespace longer than a namespace", "spec.storageNamespace", strings.Repeat("a", 64), []string{"spec", "storageNamespace"}},
		{"an empty storageNamespace", "spec.storageNamespace", "", []string{"spec", "storageNamespace"}},
		{"an empty releaseName", "spec.releaseName", "", []string{"spec", "releaseName"}},
		{"a targetPath with a character --set does not take", "spec.valuesFrom[0].targetPath", "auth password", []string{"spec", "valuesFrom"}},
		{"a targetPath longer than Flux's 250", "spec.valuesFrom[0].targetPath", strings.Repeat("a", 251), []string{"spec", "valuesFrom"}},
		{"an install remediation strategy", "spec.install.remediation.strategy", "rollback", []string{"spec", "install", "remediation", "strategy"}},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hr := helmRelease("default", "bounds-"+strings.Repeat("x", i+1), "1.0.0", nil)
			hr.SetGroupVersionKind(syncv2.GroupVersion.WithKind("HelmRelease"))
			obj, err := runtime.DefaultUnstructuredConverter.ToUnstructured(hr)
			if err != nil {
				t.Fatal(err)
			}
			value := tt.value
			if tt.path[len(tt.path)-1] == "valuesFrom" {
				value = []any{map[string]any{"kind": "ConfigMap", "name": "values", "targetPath": tt.value}}
			}
			if err := unstructured.SetNestedField(obj, value, tt.path...); err != nil {
				t.Fatal(err)
			}
			err = cp.Client.Create(t.Context(), &unstructured.Unstructured{Object: obj}, client.FieldValidation("Strict"))
			if err == nil || !strings.Contains(err.Error(), tt.field) {
				t.Fatalf("create gave %v, want a refusal naming %s", err, tt.field)
			}
		})
	}
}
