package router

import (
	"context"
	"errors"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	sluicev1beta1 "sluice.dev/sluice/api/v1beta1"
	"sluice.dev/sluice/pkg/traffic"
)

// AppMeshLegacy routes with the legacy App Mesh controller's v1beta1 API
// (provider appmesh), as Flagger does: VirtualNodes <apex>,
// <apex>-primary and <apex>-canary in mesh service.meshName, with
// service.backends, and a VirtualService <apex>.<namespace>, whose router
// and route weight the primary's and the canary's nodes. A second
// VirtualService <apex>-canary.<namespace> sends everything to the canary.
// When the Canary goes, all of them are deleted.
type AppMeshLegacy struct{ objectRouter }

const appMeshLegacyAPI = "appmesh.k8s.aws/v1beta1"

// errNoMeshName is a Canary of provider appmesh without service.meshName.
var errNoMeshName = &SpecError{Field: "spec.service.meshName", Err: errors.New("provider appmesh needs the App Mesh mesh name")}

func newAppMeshLegacy(d Deps) *AppMeshLegacy {
	return &AppMeshLegacy{objectRouter{
		Deps: d, apiVersion: appMeshLegacyAPI, kind: "VirtualService",
		name: func(c *sluicev1beta1.Canary) string {
			apex, _, _ := ServiceNames(c)
			return apex + "." + c.Namespace
		},
		spec: func(_ context.Context, c *sluicev1beta1.Canary, r traffic.Routes) (map[string]any, error) {
			apex, _, _ := ServiceNames(c)
			return appMeshLegacyServiceSpec(c, apex, r)
		},
		split: func(c *sluicev1beta1.Canary, vs *unstructured.Unstructured) traffic.Routes {
			routes, _, _ := unstructured.NestedSlice(vs.Object, "spec", "routes")
			if len(routes) == 0 {
				return traffic.PrimaryOnly()
			}
			rm, _ := routes[0].(map[string]any)
			targets, _, _ := unstructured.NestedSlice(rm, "http", "action", "weightedTargets")
			return weightsBy(c, targets, "virtualNodeName")
		},
		apexSpec: nil,
	}}
}

// Capabilities are weights.
func (a *AppMeshLegacy) Capabilities() traffic.Capabilities {
	return traffic.Capabilities{Weights: true}
}

// GoldenSignals are App Mesh's, the sidecars' Envoy metrics.
func (a *AppMeshLegacy) GoldenSignals() traffic.GoldenSignals { return (&AppMesh{}).GoldenSignals() }

// Initialize writes the VirtualNodes and the canary's VirtualService.
func (a *AppMeshLegacy) Initialize(ctx context.Context, c *sluicev1beta1.Canary) error {
	return a.mesh(ctx, c)
}

// Reconcile keeps every object as the Canary describes it, and the
// weights of the apex VirtualService.
func (a *AppMeshLegacy) Reconcile(ctx context.Context, c *sluicev1beta1.Canary) error {
	if err := a.mesh(ctx, c); err != nil {
		return err
	}
	return a.objectRouter.Reconcile(ctx, c)
}

// Finalize deletes what the router generated.
func (a *AppMeshLegacy) Finalize(ctx context.Context, c *sluicev1beta1.Canary) error {
	apex, primary, canary := ServiceNames(c)
	for _, o := range []struct{ kind, name string }{
		{"VirtualService", canary + "." + c.Namespace},
		{"VirtualNode", apex}, {"VirtualNode", primary}, {"VirtualNode", canary},
	} {
		u := appMeshLegacyObject(c, o.kind, o.name)
		if err := a.Client.Delete(ctx, u); err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("delete %s %s: %w", o.kind, o.name, err)
		}
	}
	return a.objectRouter.Finalize(ctx, c)
}

func appMeshLegacyObject(c *sluicev1beta1.Canary, kind, name string) *unstructured.Unstructured {
	u := &unstructured.Unstructured{}
	u.SetAPIVersion(appMeshLegacyAPI)
	u.SetKind(kind)
	u.SetNamespace(c.Namespace)
	u.SetName(name)
	return u
}

// mesh writes the three VirtualNodes and the canary's VirtualService.
func (a *AppMeshLegacy) mesh(ctx context.Context, c *sluicev1beta1.Canary) error {
	if c.Spec.Service.MeshName == "" {
		return errNoMeshName
	}
	apex, primary, canary := ServiceNames(c)
	canarySpec, err := appMeshLegacyServiceSpec(c, canary, traffic.Weighted(100))
	if err != nil {
		return err
	}
	specs := []struct {
		kind, name string
		spec       map[string]any
	}{
		// The apex node resolves to the primary, as Flagger's does.
		{"VirtualNode", apex, appMeshLegacyNodeSpec(c, primary)},
		{"VirtualNode", primary, appMeshLegacyNodeSpec(c, primary)},
		{"VirtualNode", canary, appMeshLegacyNodeSpec(c, canary)},
		{"VirtualService", canary + "." + c.Namespace, canarySpec},
	}
	for _, s := range specs {
		u := appMeshLegacyObject(c, s.kind, s.name)
		if err := a.ensureGenerated(ctx, c, u, func() error {
			u.Object["spec"] = s.spec
			return nil
		}); err != nil {
			return fmt.Errorf("write %s %s: %w", s.kind, s.name, err)
		}
	}
	return nil
}

func appMeshLegacyNodeSpec(c *sluicev1beta1.Canary, hostService string) map[string]any {
	spec := map[string]any{
		"meshName":         c.Spec.Service.MeshName,
		"listeners":        []any{map[string]any{"portMapping": map[string]any{"port": int64(c.Spec.Service.Port), "protocol": "http"}}},
		"serviceDiscovery": map[string]any{"dns": map[string]any{"hostName": hostService + "." + c.Namespace}},
	}
	var backends []any
	for _, b := range c.Spec.Service.Backends {
		backends = append(backends, map[string]any{"virtualService": map[string]any{"virtualServiceName": b}})
	}
	if len(backends) > 0 {
		spec["backends"] = backends
	}
	return spec
}

// appMeshLegacyServiceSpec is a VirtualService with its router and one
// route on the prefix of service.match (or /), weighted by r.
func appMeshLegacyServiceSpec(c *sluicev1beta1.Canary, name string, r traffic.Routes) (map[string]any, error) {
	if c.Spec.Service.MeshName == "" {
		return nil, errNoMeshName
	}
	_, primary, canary := ServiceNames(c)
	prefix := "/"
	if m := c.Spec.Service.Match; len(m) > 0 && m[0].URI != nil && m[0].URI.Prefix != "" {
		prefix = m[0].URI.Prefix
	}
	return map[string]any{
		"meshName": c.Spec.Service.MeshName,
		"virtualRouter": map[string]any{
			"name":      name + "-router",
			"listeners": []any{map[string]any{"portMapping": map[string]any{"port": int64(c.Spec.Service.Port), "protocol": "http"}}},
		},
		"routes": []any{map[string]any{
			"name": name + "-route",
			"http": map[string]any{
				"match": map[string]any{"prefix": prefix},
				"action": map[string]any{"weightedTargets": []any{
					map[string]any{"virtualNodeName": canary, "weight": int64(r.Canary)},
					map[string]any{"virtualNodeName": primary, "weight": int64(r.Primary)},
				}},
			},
		}},
	}, nil
}
