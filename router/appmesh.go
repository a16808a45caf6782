package router

import (
	"context"
	"fmt"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	sluicev1beta1 "sluice.dev/sluice/api/v1beta1"
	"sluice.dev/sluice/pkg/traffic"
	"sluice.dev/sluice/pkg/workload"
)

// +kubebuilder:rbac:groups=appmesh.k8s.aws,resources=virtualnodes;virtualrouters;virtualservices,verbs=get;list;watch;create;update;patch;delete

// The legacy provider appmesh (appmesh_legacy.go) writes the same group's
// VirtualNodes and VirtualServices in v1beta1.

// AppMesh routes with the AWS App Mesh controller's v1beta2 API (provider
// appmesh:v1beta2), as Flagger does: VirtualNodes <apex>-primary and
// <apex>-canary selecting the primary's and the target's pods, with the
// Canary's service.backends; a VirtualRouter <apex> weighted between them
// (and, for an A/B test, a route of analysis.match's headers to the
// canary); a VirtualRouter <apex>-canary sending everything to the canary;
// and a VirtualService for each router. When the Canary goes, all of them
// are deleted.
type AppMesh struct{ objectRouter }

const appMeshAPI = "appmesh.k8s.aws/v1beta2"

func newAppMesh(d Deps) *AppMesh {
	return &AppMesh{objectRouter{
		Deps: d, apiVersion: appMeshAPI, kind: "VirtualRouter",
		spec: func(_ context.Context, c *sluicev1beta1.Canary, r traffic.Routes) (map[string]any, error) {
			return appMeshRouterSpec(c, r)
		},
		split:    appMeshSplit,
		apexSpec: nil,
	}}
}

// Capabilities are weights and header matches.
func (a *AppMesh) Capabilities() traffic.Capabilities {
	return traffic.Capabilities{Weights: true, HeaderMatch: true, CookieMatch: true}
}

// GoldenSignals use the Envoy sidecar's inbound metrics of the canary's
// pods, as Flagger's App Mesh observer does.
func (a *AppMesh) GoldenSignals() traffic.GoldenSignals {
	const sel = `kubernetes_namespace="{{ namespace }}", kubernetes_pod_name=~"{{ target }}-[0-9a-zA-Z]+(-[0-9a-zA-Z]+)"`
	return traffic.GoldenSignals{
		SuccessRate: `sum(rate(envoy_cluster_upstream_rq{` + sel + `, envoy_response_code!~"5.*"}[{{ interval }}]))
/ sum(rate(envoy_cluster_upstream_rq{` + sel + `}[{{ interval }}])) * 100`,
		// Envoy's request time histogram is in milliseconds already.
		Duration: `histogram_quantile(0.99, sum(rate(envoy_cluster_upstream_rq_time_bucket{` + sel + `}[{{ interval }}])) by (le))`,
	}
}

// Initialize writes the VirtualNodes, the canary's VirtualRouter and the
// VirtualServices before traffic moves.
func (a *AppMesh) Initialize(ctx context.Context, c *sluicev1beta1.Canary) error {
	return a.mesh(ctx, c)
}

// Reconcile keeps every object as the Canary describes it, and the
// weights of the apex VirtualRouter.
func (a *AppMesh) Reconcile(ctx context.Context, c *sluicev1beta1.Canary) error {
	if err := a.mesh(ctx, c); err != nil {
		return err
	}
	return a.objectRouter.Reconcile(ctx, c)
}

// Finalize deletes what the router generated: without it, App Mesh
// routes the apex Service as the user configures it.
func (a *AppMesh) Finalize(ctx context.Context, c *sluicev1beta1.Canary) error {
	apex, primary, canary := ServiceNames(c)
	for _, o := range []struct{ kind, name string }{
		{"VirtualService", apex}, {"VirtualService", canary}, {"VirtualRouter", canary},
		{"VirtualNode", primary}, {"VirtualNode", canary},
	} {
		u := appMeshObject(c, o.kind, o.name)
		if err := a.Client.Delete(ctx, u); err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("delete %s %s: %w", o.kind, o.name, err)
		}
	}
	return a.objectRouter.Finalize(ctx, c)
}

func appMeshObject(c *sluicev1beta1.Canary, kind, name string) *unstructured.Unstructured {
	u := &unstructured.Unstructured{}
	u.SetAPIVersion(appMeshAPI)
	u.SetKind(kind)
	u.SetNamespace(c.Namespace)
	u.SetName(name)
	return u
}

// mesh writes every object but the apex VirtualRouter.
func (a *AppMesh) mesh(ctx context.Context, c *sluicev1beta1.Canary) error {
	if c.Spec.TargetRef.Kind == workload.KindService {
		// VirtualNodes select pods, which only a workload target names.
		return specError("spec.targetRef.kind", "provider %s selects pods: it needs a Deployment or DaemonSet target, not a Service", c.Spec.Provider)
	}
	target, err := workload.NewTarget(c.Spec.TargetRef)
	if err != nil {
		return err
	}
	if err := a.Client.Get(ctx, client.ObjectKey{Namespace: c.Namespace, Name: c.Spec.TargetRef.Name}, target); err != nil {
		return fmt.Errorf("get %s %s: %w", c.Spec.TargetRef.Kind, c.Spec.TargetRef.Name, err)
	}
	port, err := appMeshPort(c, target)
	if err != nil {
		return err
	}
	apex, primary, canary := ServiceNames(c)
	canaryRoutes, err := appMeshRouterSpec(c, traffic.Weighted(100))
	if err != nil {
		return err
	}
	specs := []struct {
		kind, name string
		spec       map[string]any
	}{
		{"VirtualNode", primary, appMeshNodeSpec(c, port, primary, workload.PrimarySelector(target))},
		{"VirtualNode", canary, appMeshNodeSpec(c, port, canary, workload.Selector(target).MatchLabels)},
		{"VirtualRouter", canary, canaryRoutes},
		{"VirtualService", apex, appMeshServiceSpec(apex)},
		{"VirtualService", canary, appMeshServiceSpec(canary)},
	}
	for _, s := range specs {
		u := appMeshObject(c, s.kind, s.name)
		if err := a.ensureGenerated(ctx, c, u, func() error {
			// The controller fills in awsName and meshRef; keep them.
			spec, _, _ := unstructured.NestedMap(u.Object, "spec")
			if spec == nil {
				spec = map[string]any{}
			}
			for k, v := range s.spec {
				spec[k] = v
			}
			u.Object["spec"] = spec
			return nil
		}); err != nil {
			return fmt.Errorf("write %s %s: %w", s.kind, s.name, err)
		}
	}
	return nil
}

// appMeshPort is the container port the Services send to.
func appMeshPort(c *sluicev1beta1.Canary, target client.Object) (int64, error) {
	tp := c.Spec.Service.TargetPort
	switch {
	case tp.Type == intstr.Int && tp.IntVal != 0:
		return int64(tp.IntVal), nil
	case tp.Type == intstr.String && tp.StrVal != "":
		for _, ctr := range workload.PodTemplate(target).Spec.Containers {
			for _, p := range ctr.Ports {
				if p.Name == tp.StrVal {
					return int64(p.ContainerPort), nil
				}
			}
		}
		return 0, specError("spec.service.targetPort", "no container of %s %s has a port named %s", c.Spec.TargetRef.Kind, c.Spec.TargetRef.Name, tp.StrVal)
	}
	return int64(c.Spec.Service.Port), nil
}

// appMeshProtocol is the listener protocol: grpc, http2 or http.
func appMeshProtocol(c *sluicev1beta1.Canary) string {
	s := c.Spec.Service
	switch {
	case s.AppProtocol == "grpc" || s.PortName == "grpc":
		return "grpc"
	case s.AppProtocol == "kubernetes.io/h2c" || s.PortName == "http2":
		return "http2"
	}
	return "http"
}

func appMeshNodeSpec(c *sluicev1beta1.Canary, port int64, service string, selector map[string]string) map[string]any {
	matchLabels := map[string]any{}
	for k, v := range selector {
		matchLabels[k] = v
	}
	spec := map[string]any{
		"listeners":        []any{map[string]any{"portMapping": map[string]any{"port": port, "protocol": appMeshProtocol(c)}}},
		"serviceDiscovery": map[string]any{"dns": map[string]any{"hostname": fmt.Sprintf("%s.%s.svc.cluster.local.", service, c.Namespace)}},
		"podSelector":      map[string]any{"matchLabels": matchLabels},
	}
	var backends []any
	for _, b := range c.Spec.Service.Backends {
		if strings.HasPrefix(b, "arn:aws") {
			backends = append(backends, map[string]any{"virtualService": map[string]any{"virtualServiceARN": b}})
		} else {
			backends = append(backends, map[string]any{"virtualService": map[string]any{"virtualServiceRef": map[string]any{"name": b}}})
		}
	}
	if len(backends) > 0 {
		spec["backends"] = backends
	}
	return spec
}

func appMeshServiceSpec(router string) map[string]any {
	return map[string]any{"provider": map[string]any{"virtualRouter": map[string]any{"virtualRouterRef": map[string]any{"name": router}}}}
}

// appMeshRouterSpec is a VirtualRouter's listener and routes for a split:
// the prefix of service.match (or /) weighted between the canary's and
// the primary's VirtualNodes, after a route of each A/B match's headers.
func appMeshRouterSpec(c *sluicev1beta1.Canary, r traffic.Routes) (map[string]any, error) {
	apex, primary, canary := ServiceNames(c)
	prefix := "/"
	if m := c.Spec.Service.Match; len(m) > 0 && m[0].URI != nil && m[0].URI.Prefix != "" {
		prefix = m[0].URI.Prefix
	}
	protocol := appMeshProtocol(c)
	routeKey := "httpRoute"
	switch protocol {
	case "grpc":
		routeKey = "grpcRoute"
	case "http2":
		routeKey = "http2Route"
	}
	route := func(name string, priority int, headers []any, canaryWeight int) map[string]any {
		match := map[string]any{"prefix": prefix}
		if len(headers) > 0 {
			match["headers"] = headers
		}
		body := map[string]any{
			"match": match,
			"action": map[string]any{"weightedTargets": []any{
				map[string]any{"virtualNodeRef": map[string]any{"name": canary}, "weight": int64(canaryWeight)},
				map[string]any{"virtualNodeRef": map[string]any{"name": primary}, "weight": int64(100 - canaryWeight)},
			}},
		}
		if d, err := time.ParseDuration(c.Spec.Service.Timeout); err == nil && d > 0 {
			body["timeout"] = map[string]any{"perRequest": map[string]any{"unit": "ms", "value": d.Milliseconds()}}
		}
		if rt := c.Spec.Service.Retries; rt != nil {
			retry := map[string]any{"maxRetries": int64(rt.Attempts), "httpRetryEvents": []any{"server-error", "gateway-error"}}
			if d, err := time.ParseDuration(rt.PerTryTimeout); err == nil && d > 0 {
				retry["perRetryTimeout"] = map[string]any{"unit": "ms", "value": d.Milliseconds()}
			} else {
				retry["perRetryTimeout"] = map[string]any{"unit": "s", "value": int64(15)}
			}
			body["retryPolicy"] = retry
		}
		out := map[string]any{"name": name, routeKey: body}
		if priority > 0 {
			out["priority"] = int64(priority)
		}
		return out
	}
	var routes []any
	if r.Match && c.Spec.Analysis != nil {
		for i, m := range c.Spec.Analysis.Match {
			if m.URI != nil || m.Method != nil || m.Scheme != nil || m.Authority != nil || len(m.QueryParams) > 0 || len(m.SourceLabels) > 0 || m.Port != 0 {
				return nil, specError(fmt.Sprintf("spec.analysis.match[%d]", i), "an App Mesh route matches headers only")
			}
			var headers []any
			for _, name := range sortedKeys(m.Headers) {
				v := m.Headers[name]
				match := map[string]any{}
				switch {
				case v.Exact != "":
					match["exact"] = v.Exact
				case v.Prefix != "":
					match["prefix"] = v.Prefix
				case v.Suffix != "":
					match["suffix"] = v.Suffix
				default:
					match["regex"] = stringMatchRegex(v)
				}
				headers = append(headers, map[string]any{"name": name, "match": match})
			}
			routes = append(routes, route(fmt.Sprintf("%s-a-%d", apex, i), 10, headers, 100))
		}
		routes = append(routes, route(apex+"-b", 20, nil, 0))
	} else {
		routes = append(routes, route(apex, 0, nil, r.Canary))
	}
	return map[string]any{
		"listeners": []any{map[string]any{"portMapping": map[string]any{"port": int64(c.Spec.Service.Port), "protocol": protocol}}},
		"routes":    routes,
	}, nil
}

// appMeshSplit reads the split: A/B routes mean a match; otherwise the
// one route's weighted targets.
func appMeshSplit(c *sluicev1beta1.Canary, vr *unstructured.Unstructured) traffic.Routes {
	routes, _, _ := unstructured.NestedSlice(vr.Object, "spec", "routes")
	switch {
	case len(routes) == 0:
		return traffic.PrimaryOnly()
	case len(routes) > 1:
		return traffic.Routes{Primary: 100, Match: true}
	}
	rm, _ := routes[0].(map[string]any)
	var targets []any
	for _, key := range []string{"httpRoute", "http2Route", "grpcRoute"} {
		if t, ok, _ := unstructured.NestedSlice(rm, key, "action", "weightedTargets"); ok {
			targets = t
		}
	}
	backends := make([]any, 0, len(targets))
	for _, t := range targets {
		tm, ok := t.(map[string]any)
		if !ok {
			continue
		}
		name, _, _ := unstructured.NestedString(tm, "virtualNodeRef", "name")
		backends = append(backends, map[string]any{"service": name, "weight": tm["weight"]})
	}
	return weightsBy(c, backends, "service")
}
