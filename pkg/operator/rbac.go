package operator

// The operator's cluster permissions. `make generate` turns these markers
// into kustomize/rbac/role.yaml and the Helm chart's ClusterRole; the lease
// and event permissions in its own namespace are a Role next to them.
//
// Sluice's own kinds:
// +kubebuilder:rbac:groups=sluice.dev,resources=canaries;metrictemplates;alertproviders,verbs=get;list;watch;update;patch
// +kubebuilder:rbac:groups=sluice.dev,resources=canaries/status;metrictemplates/status;alertproviders/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=sluice.dev,resources=canaries/finalizers,verbs=update
//
// Targets, their -primary copies, their autoscalers, the generated Services
// and the tracked ConfigMaps and Secrets (copied to -primary):
// +kubebuilder:rbac:groups=apps,resources=deployments;daemonsets,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=autoscaling,resources=horizontalpodautoscalers,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups="",resources=services;configmaps;secrets,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups="",resources=pods,verbs=get;list;watch
// +kubebuilder:rbac:groups="",resources=events,verbs=create;patch
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch
//
// The routers carry the permissions for their routing objects in their
// own files (router/).
//
// The external metrics provider reads metrics whose names are the
// resources of external.metrics.k8s.io. No name is known here and no
// wildcard is granted: the Helm value rbac.externalMetrics lists the ones
// to read, or a MetricTemplate's Secret carries a token that may.
