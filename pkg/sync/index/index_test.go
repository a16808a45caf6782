package index

import (
	"reflect"
	"testing"

	"k8s.io/apimachinery/pkg/types"

	syncv1 "sluice.dev/sluice/api/sync/v1"
)

func TestDependenciesDefaultToTheObjectsNamespace(t *testing.T) {
	got := Dependencies("apps", []syncv1.DependencyReference{{Name: "infra"}, {Name: "crds", Namespace: "platform"}})
	want := []types.NamespacedName{{Namespace: "apps", Name: "infra"}, {Namespace: "platform", Name: "crds"}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
}
