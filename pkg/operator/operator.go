// Package operator assembles Sluice's controllers into a controller-runtime
// manager: one cache, leader election, the metrics endpoint and the health
// probes.
package operator

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/rest"
	clientevents "k8s.io/client-go/tools/events"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	imagev1 "sluice.dev/sluice/api/image/v1"
	notificationv1 "sluice.dev/sluice/api/notification/v1"
	sourcev1 "sluice.dev/sluice/api/source/v1"
	syncv1 "sluice.dev/sluice/api/sync/v1"
	syncv2 "sluice.dev/sluice/api/sync/v2"
	sluicev1beta1 "sluice.dev/sluice/api/v1beta1"
	"sluice.dev/sluice/pkg/analysis"
	"sluice.dev/sluice/pkg/canary"
	"sluice.dev/sluice/pkg/egress"
	sluiceevents "sluice.dev/sluice/pkg/events"
	"sluice.dev/sluice/pkg/image"
	"sluice.dev/sluice/pkg/notify"
	"sluice.dev/sluice/pkg/receiver"
	sluicescheme "sluice.dev/sluice/pkg/scheme"
	"sluice.dev/sluice/pkg/sharding"
	"sluice.dev/sluice/pkg/source"
	"sluice.dev/sluice/pkg/source/helm"
	"sluice.dev/sluice/pkg/source/verify"
	"sluice.dev/sluice/pkg/sync/apply"
	"sluice.dev/sluice/pkg/sync/celexpr"
	"sluice.dev/sluice/pkg/sync/health"
	"sluice.dev/sluice/pkg/sync/helmrelease"
	"sluice.dev/sluice/pkg/sync/kubeconfig"
	"sluice.dev/sluice/pkg/sync/kustomization"
	"sluice.dev/sluice/pkg/sync/statemetrics"
	"sluice.dev/sluice/pkg/traffic"
	"sluice.dev/sluice/router"
)

// Options configure the operator. The zero value is not usable; start from
// DefaultOptions.
type Options struct {
	// Namespace limits the operator to one namespace; empty watches all.
	Namespace string
	// WatchLabelSelector limits the Canaries and sync objects the replica
	// owns to those whose labels match (Flux's --watch-label-selector;
	// see pkg/sharding); empty owns all.
	WatchLabelSelector string
	// DefaultProvider routes Canaries that name no spec.provider.
	DefaultProvider sluicev1beta1.Provider
	// IngressAnnotationsPrefix is the prefix of the NGINX canary
	// annotations.
	IngressAnnotationsPrefix string
	// MetricsServer is the Prometheus queried by the built-in metrics of
	// Canaries that name no spec.metricsServer.
	MetricsServer string
	// DefaultAlertProvider, "namespace/name" or "name", receives the alerts
	// of Canaries that set no analysis.alerts; empty sends none.
	DefaultAlertProvider string
	// DefaultAlertSeverity is the lowest severity the default provider
	// receives.
	DefaultAlertSeverity sluicev1beta1.AlertSeverity
	// ClusterName is added to alerts.
	ClusterName string
	// IncludeLabelPrefixes are the label and annotation prefixes copied
	// from a target to its primary.
	IncludeLabelPrefixes []string
	// ConfigTracking makes ConfigMap and Secret changes new revisions.
	ConfigTracking bool
	// Workers is the number of Canaries, and of Kustomizations, reconciled
	// at once.
	Workers int

	// MetricsBindAddress serves /metrics; "0" turns it off.
	MetricsBindAddress string
	// HealthProbeBindAddress serves /healthz and /readyz.
	HealthProbeBindAddress string
	// PprofBindAddress serves Go's profiles under /debug/pprof/; "0" or
	// empty, the default, turns it off. Profiles show the operator's
	// code paths and stacks, so it is meant for a loopback address.
	PprofBindAddress string
	// DefaultServiceAccount is impersonated by Kustomizations that name
	// no spec.serviceAccountName; empty means the operator's account.
	DefaultServiceAccount string
	// ReceiverBindAddress serves the Receivers' webhook paths; "0" turns
	// it off.
	ReceiverBindAddress string
	// FeatureGates are Flux's feature gates of the sync kinds.
	FeatureGates FeatureGates

	// LeaderElection lets only one replica act at a time.
	LeaderElection bool
	// LeaderElectionNamespace holds the lease; in a pod it defaults to the
	// pod's namespace.
	LeaderElectionNamespace string
	// LeaderElectionID names the lease.
	LeaderElectionID string
	// LeaseDuration is how long a lease that is not renewed keeps the
	// other replicas waiting: after a crash, the longest a standby waits
	// before it takes over.
	LeaseDuration time.Duration
	// RenewDeadline is how long the leader keeps retrying a renewal
	// before it stops acting; shorter than LeaseDuration, so that it
	// stops before a standby may take over.
	RenewDeadline time.Duration
	// RetryPeriod is the time between two attempts to take or renew
	// the lease.
	RetryPeriod time.Duration

	// GracefulShutdownTimeout bounds the wait for running reconciles on
	// shutdown.
	GracefulShutdownTimeout time.Duration

	// Version is reported in the sluice_info metric.
	Version string
}

// DefaultOptions are the operator's defaults, also used as flag defaults.
func DefaultOptions() Options {
	return Options{
		DefaultProvider:          "kubernetes",
		IngressAnnotationsPrefix: "nginx.ingress.kubernetes.io",
		MetricsServer:            "http://prometheus:9090",
		DefaultAlertSeverity:     sluicev1beta1.SeverityInfo,
		ConfigTracking:           true,
		Workers:                  8,
		MetricsBindAddress:       ":8080",
		HealthProbeBindAddress:   ":8081",
		PprofBindAddress:         "0",
		ReceiverBindAddress:      ":9292",
		LeaderElection:           true,
		LeaderElectionID:         "sluice-leader-election",
		LeaseDuration:            15 * time.Second, // controller-runtime's defaults
		RenewDeadline:            10 * time.Second,
		RetryPeriod:              2 * time.Second,
		GracefulShutdownTimeout:  30 * time.Second,
		Version:                  "dev",
	}
}

// Validate reports options that cannot work, naming the flag's field.
func (o Options) Validate() error {
	var errs []error
	if !o.DefaultProvider.Known() {
		errs = append(errs, fmt.Errorf("default provider %q is not one of %v", o.DefaultProvider, sluicev1beta1.Providers()))
	}
	if o.LeaderElection && o.LeaderElectionID == "" {
		errs = append(errs, errors.New("leader election needs a lease name"))
	}
	if o.LeaderElection {
		errs = append(errs, o.validateLeaseTimings()...)
	}
	if o.DefaultAlertProvider != "" {
		if _, err := notify.ParseRoute(o.DefaultAlertProvider, o.DefaultAlertSeverity); err != nil {
			errs = append(errs, fmt.Errorf("default alert provider: %w", err))
		}
	}
	if o.Workers < 1 {
		errs = append(errs, errors.New("workers must be at least 1"))
	}
	if _, err := sharding.Parse(o.WatchLabelSelector); err != nil {
		errs = append(errs, fmt.Errorf("--watch-label-selector: %w", err))
	}
	if o.GracefulShutdownTimeout < 0 {
		errs = append(errs, errors.New("graceful shutdown timeout must not be negative"))
	}
	return errors.Join(errs...)
}

// validateLeaseTimings refuses lease timings under which two replicas
// could act at once: a leader must give up (RenewDeadline) before its
// lease runs out (LeaseDuration), and must be able to retry within that
// deadline (RetryPeriod, stretched by client-go's jitter).
func (o Options) validateLeaseTimings() []error {
	var errs []error
	for _, d := range []struct {
		flag  string
		value time.Duration
	}{
		{"--leader-election-lease-duration", o.LeaseDuration},
		{"--leader-election-renew-deadline", o.RenewDeadline},
		{"--leader-election-retry-period", o.RetryPeriod},
	} {
		if d.value <= 0 {
			errs = append(errs, fmt.Errorf("%s must be positive, got %s", d.flag, d.value))
		}
	}
	if len(errs) > 0 {
		return errs
	}
	if o.RenewDeadline >= o.LeaseDuration {
		errs = append(errs, fmt.Errorf("--leader-election-renew-deadline (%s) must be shorter than --leader-election-lease-duration (%s): a leader must stop acting before another replica may take the lease", o.RenewDeadline, o.LeaseDuration))
	}
	// client-go waits up to JitterFactor retry periods more between
	// attempts, and refuses a deadline that leaves no room for a retry.
	if o.RenewDeadline <= time.Duration(leaderelection.JitterFactor*float64(o.RetryPeriod)) {
		errs = append(errs, fmt.Errorf("--leader-election-renew-deadline (%s) must be more than %g times --leader-election-retry-period (%s): the leader must get to retry a renewal before it gives up", o.RenewDeadline, leaderelection.JitterFactor, o.RetryPeriod))
	}
	return errs
}

// New checks that the API server serves Sluice's kinds and builds the
// manager with its controllers. Start it with Start; ctx bounds the
// controllers' background work.
func New(ctx context.Context, cfg *rest.Config, opts Options, log logr.Logger) (manager.Manager, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	if err := checkCRDs(cfg); err != nil {
		return nil, err
	}
	// The calls to addresses that specs give (webhooks, metric and alert
	// providers) may not reach the operator's own listeners.
	guard, err := egress.NewGuard(opts.MetricsBindAddress, opts.HealthProbeBindAddress, opts.ReceiverBindAddress, opts.PprofBindAddress)
	if err != nil {
		return nil, err
	}
	scheme, err := sluicescheme.New()
	if err != nil {
		return nil, err
	}
	// Managed fields are never read and are a large share of each cached
	// object.
	cacheOpts := cache.Options{DefaultTransform: cache.TransformStripManagedFields()}
	if opts.Namespace != "" {
		cacheOpts.DefaultNamespaces = map[string]cache.Config{opts.Namespace: {}}
	}
	shard, err := sharding.Parse(opts.WatchLabelSelector)
	if err != nil {
		return nil, fmt.Errorf("--watch-label-selector: %w", err)
	}
	if err := shardCache(&cacheOpts, scheme, shard); err != nil {
		return nil, err
	}
	// Each shard elects its own leader.
	leaseName := shard.LeaseName(opts.LeaderElectionID)
	if ns := leaseNamespace(opts); opts.LeaderElection && ns != "" {
		if err := recordShard(ctx, cfg, ns, leaseName, shard, opts.Namespace); err != nil {
			return nil, err
		}
	}
	mgr, err := manager.New(cfg, manager.Options{
		Scheme: scheme,
		Logger: log,
		Cache:  cacheOpts,
		// Routing objects without Go types (TraefikService, TrafficSplit)
		// are read from the cache too.
		Client: client.Options{Cache: &client.CacheOptions{Unstructured: true}},
		// /metrics and the probes are served by addEndpoints, with
		// tighter limits than the manager's own servers have.
		Metrics:                       metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress:        "0",
		LeaderElection:                opts.LeaderElection,
		LeaderElectionNamespace:       opts.LeaderElectionNamespace,
		LeaderElectionID:              leaseName,
		LeaderElectionReleaseOnCancel: true,
		LeaseDuration:                 &opts.LeaseDuration,
		RenewDeadline:                 &opts.RenewDeadline,
		RetryPeriod:                   &opts.RetryPeriod,
		GracefulShutdownTimeout:       &opts.GracefulShutdownTimeout,
		// Tests and the demo run several managers in one process; the
		// binary runs one.
		Controller: config.Controller{SkipNameValidation: ptr.To(true)},
	})
	if err != nil {
		return nil, fmt.Errorf("create manager: %w", err)
	}
	probe := newProbes()
	probe.healthz.Checks["ping"] = healthz.Ping
	probe.readyz.Checks["informers"] = cacheSynced(mgr.GetCache())
	if err := addEndpoints(mgr, opts, probe); err != nil {
		return nil, err
	}
	if err := registerInfo(opts); err != nil {
		return nil, err
	}
	metricsRecorder, err := canary.NewRecorder(ctrlmetrics.Registry)
	if err != nil {
		return nil, err
	}
	// Flux's gotk_reconcile_condition and gotk_suspend_status, from the
	// cache, while this replica leads.
	syncStates, err := statemetrics.Register(ctrlmetrics.Registry)
	if err != nil {
		return nil, err
	}
	if err := mgr.Add(syncStates.Report(mgr.GetCache())); err != nil {
		return nil, fmt.Errorf("add the sync state metrics: %w", err)
	}
	checker, err := analysis.NewChecker(analysis.Options{
		Reader:        mgr.GetClient(),
		Client:        mgr.GetClient(),
		MetricsServer: opts.MetricsServer,
		Signals:       goldenSignals(mgr, opts),
		Registerer:    ctrlmetrics.Registry,
		Egress:        guard,
	})
	if err != nil {
		return nil, err
	}
	dispatcher, err := alertDispatcher(mgr, opts, guard, log)
	if err != nil {
		return nil, err
	}
	events, err := sluiceevents.NewBroadcaster(cfg, dispatcher)
	if err != nil {
		return nil, err
	}
	if err := mgr.Add(events); err != nil {
		return nil, fmt.Errorf("add the event broadcaster: %w", err)
	}
	recorder := func(component string) clientevents.EventRecorder { return events.Recorder(mgr.GetScheme(), component) }
	// One admission tracker for the Canary and ReleasePolicy controllers:
	// release limits are counted, and decided, in one place.
	admissions := canary.NewAdmissions()
	r := canary.New(mgr, metricsRecorder, canary.Options{
		Events:                   recorder("sluice"),
		Metrics:                  checker,
		Notifier:                 dispatcher,
		DefaultProvider:          opts.DefaultProvider,
		IngressAnnotationsPrefix: opts.IngressAnnotationsPrefix,
		IncludeLabelPrefixes:     opts.IncludeLabelPrefixes,
		ConfigTracking:           opts.ConfigTracking,
		Workers:                  opts.Workers,
		Egress:                   guard,
		Admissions:               admissions,
	})
	if err := r.SetupWithManager(ctx, mgr); err != nil {
		return nil, fmt.Errorf("set up the Canary controller: %w", err)
	}
	policies := &canary.ReleasePolicyReconciler{Client: mgr.GetClient(), Events: recorder("sluice"), Admissions: admissions, Shard: shard.Labels()}
	if err := policies.SetupWithManager(ctx, mgr); err != nil {
		return nil, err
	}
	if err := setupNotifications(ctx, mgr, dispatcher, recorder("sluice-notify"), shard); err != nil {
		return nil, err
	}
	store := source.NewStore()
	git := &source.GitRepositoryReconciler{Client: mgr.GetClient(), Events: recorder("sluice-source"), Store: store}
	if err := git.SetupWithManager(ctx, mgr); err != nil {
		return nil, fmt.Errorf("set up the GitRepository controller: %w", err)
	}
	ociStore := source.NewStore()
	// One set of signature verifiers for OCIRepositories and HelmCharts:
	// the public Sigstore root is fetched once for both.
	verifiers := verify.New()
	ociRepos := &source.OCIRepositoryReconciler{Client: mgr.GetClient(), Events: recorder("sluice-source"), Store: ociStore, Verifiers: verifiers}
	if err := ociRepos.SetupWithManager(ctx, mgr); err != nil {
		return nil, fmt.Errorf("set up the OCIRepository controller: %w", err)
	}
	bucketStore := source.NewStore()
	buckets := &source.BucketReconciler{Client: mgr.GetClient(), Events: recorder("sluice-source"), Store: bucketStore}
	if err := buckets.SetupWithManager(ctx, mgr); err != nil {
		return nil, fmt.Errorf("set up the Bucket controller: %w", err)
	}
	fetcher, charts := &helm.Fetcher{}, source.NewChartStore()
	helmRepos := &source.HelmRepositoryReconciler{Client: mgr.GetClient(), Events: recorder("sluice-source"), Fetcher: fetcher}
	if err := helmRepos.SetupWithManager(ctx, mgr); err != nil {
		return nil, fmt.Errorf("set up the HelmRepository controller: %w", err)
	}
	helmCharts := &source.HelmChartReconciler{Client: mgr.GetClient(), Events: recorder("sluice-source"), Fetcher: fetcher, Charts: charts, Sources: store, BucketSources: bucketStore, Verifiers: verifiers}
	if err := helmCharts.SetupWithManager(ctx, mgr); err != nil {
		return nil, fmt.Errorf("set up the HelmChart controller: %w", err)
	}
	health := healthChecker(mgr, opts, shard)
	// The clusters of spec.kubeConfig, shared by both kinds: one
	// kubeconfig's discovery serves its Kustomizations and HelmReleases.
	remotes := &kubeconfig.Clusters{Reader: mgr.GetClient(), Scheme: mgr.GetScheme(), QPS: cfg.QPS, Burst: cfg.Burst}
	releases := &helmrelease.Reconciler{
		Client: mgr.GetClient(), APIReader: mgr.GetAPIReader(), Config: cfg, Charts: charts, OCISources: ociStore, Health: health,
		Events: recorder("sluice-helm"), Workers: opts.Workers, ConfigTracking: opts.ConfigTracking, Remotes: remotes,
		AdditiveCELDependencyCheck: opts.FeatureGates.AdditiveCELDependencyCheck,
		ShardLabels:                shard.CopiedLabels(),
	}
	if err := releases.SetupWithManager(ctx, mgr); err != nil {
		return nil, fmt.Errorf("set up the HelmRelease controller: %w", err)
	}
	ks := &kustomization.Reconciler{
		Client: mgr.GetClient(), APIReader: mgr.GetAPIReader(), Sources: store, OCISources: ociStore, BucketSources: bucketStore, Events: recorder("sluice-sync"),
		Applier:                    apply.New(mgr.GetClient(), mgr.GetAPIReader()),
		Health:                     health,
		Impersonator:               &kustomization.Impersonator{Config: cfg, Scheme: mgr.GetScheme(), Mapper: mgr.GetRESTMapper()},
		Remotes:                    remotes,
		DefaultServiceAccount:      opts.DefaultServiceAccount,
		AdditiveCELDependencyCheck: opts.FeatureGates.AdditiveCELDependencyCheck,
		Workers:                    opts.Workers,
		ConfigTracking:             opts.ConfigTracking,
	}
	if err := ks.SetupWithManager(ctx, mgr); err != nil {
		return nil, fmt.Errorf("set up the Kustomization controller: %w", err)
	}
	if err := setupImageAutomation(ctx, mgr, recorder("sluice-image")); err != nil {
		return nil, err
	}
	// The Receiver controller and the webhook endpoint compile the same
	// expressions of the same specs: one cache.
	receiverExprs := &celexpr.Cache{}
	rcv := &receiver.Reconciler{Client: mgr.GetClient(), Events: recorder("sluice-receiver"), Exprs: receiverExprs, Shard: shard.Labels()}
	if err := rcv.SetupWithManager(ctx, mgr); err != nil {
		return nil, fmt.Errorf("set up the Receiver controller: %w", err)
	}
	if opts.ReceiverBindAddress != "0" {
		hook := &receiver.Handler{Client: readAcrossShards(mgr.GetClient(), mgr.GetAPIReader(), shard), Log: log.WithName("receiver"), Events: recorder("sluice-receiver"), Exprs: receiverExprs}
		if err := mgr.Add(&receiver.Server{Addr: opts.ReceiverBindAddress, Handler: hook}); err != nil {
			return nil, fmt.Errorf("add the webhook receiver server: %w", err)
		}
	}
	return mgr, nil
}

// Run builds the manager and runs it until ctx is cancelled. A cancelled
// context is a clean shutdown and returns nil.
func Run(ctx context.Context, cfg *rest.Config, opts Options, log logr.Logger) error {
	mgr, err := New(ctx, cfg, opts, log)
	if err != nil {
		return err
	}
	log.Info("starting", "version", opts.Version, "namespace", opts.Namespace,
		"defaultProvider", opts.DefaultProvider, "metricsServer", opts.MetricsServer,
		"leaderElection", opts.LeaderElection, "watchLabelSelector", opts.WatchLabelSelector)
	if err := mgr.Start(ctx); err != nil {
		return fmt.Errorf("run manager: %w", err)
	}
	log.Info("stopped")
	return nil
}

// checkCRDs fails fast, with the fix in the message, when the CRDs are not
// installed; otherwise the operator would start and wait forever on caches
// that can never sync.
func checkCRDs(cfg *rest.Config) error {
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return fmt.Errorf("create discovery client: %w", err)
	}
	for gv, kinds := range map[string][]string{
		sluicev1beta1.GroupVersion.String():  {"Canary", "MetricTemplate", "AlertProvider", "ReleasePolicy"},
		sourcev1.GroupVersion.String():       {"GitRepository", "HelmRepository", "HelmChart", "OCIRepository", "Bucket"},
		syncv1.GroupVersion.String():         {"Kustomization"},
		syncv2.GroupVersion.String():         {"HelmRelease"},
		notificationv1.GroupVersion.String(): {"Receiver"},
		imagev1.GroupVersion.String():        {"ImageRepository", "ImagePolicy", "ImageUpdateAutomation"},
	} {
		list, err := dc.ServerResourcesForGroupVersion(gv)
		if err != nil {
			return fmt.Errorf("find %s kinds on the API server (are the CRDs installed? apply kustomize/ or the Helm chart): %w", gv, err)
		}
		served := map[string]bool{}
		for _, r := range list.APIResources {
			served[r.Kind] = true
		}
		var missing []string
		for _, kind := range kinds {
			if !served[kind] {
				missing = append(missing, kind)
			}
		}
		if len(missing) > 0 {
			return fmt.Errorf("the API server does not serve %v in %s: install the CRDs from kustomize/ or the Helm chart", missing, gv)
		}
	}
	return nil
}

// cacheSynced is ready once the informers have synced, so that a new leader
// never acts on a partial view of the cluster.
func cacheSynced(c cache.Cache) healthz.Checker {
	return func(req *http.Request) error {
		ctx, cancel := context.WithTimeout(req.Context(), time.Second)
		defer cancel()
		if !c.WaitForCacheSync(ctx) {
			return errors.New("informers have not synced")
		}
		return nil
	}
}

func registerInfo(opts Options) error {
	info := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "sluice_info",
		Help:        "Sluice's version and default provider; always 1.",
		ConstLabels: prometheus.Labels{"version": opts.Version, "default_provider": string(opts.DefaultProvider)},
	})
	info.Set(1)
	if err := ctrlmetrics.Registry.Register(info); err != nil {
		var already prometheus.AlreadyRegisteredError
		if errors.As(err, &already) {
			// Another manager in this process registered it first; tests run
			// several.
			return nil
		}
		return fmt.Errorf("register sluice_info: %w", err)
	}
	return nil
}

// setupImageAutomation registers the image kinds' controllers; the
// repositories' tags stay in memory, shared with the policies.
func setupImageAutomation(ctx context.Context, mgr manager.Manager, events clientevents.EventRecorder) error {
	tags := image.NewTagStore()
	repos := &image.RepositoryReconciler{Client: mgr.GetClient(), Events: events, Tags: tags}
	if err := repos.SetupWithManager(ctx, mgr); err != nil {
		return fmt.Errorf("set up the ImageRepository controller: %w", err)
	}
	policies := &image.PolicyReconciler{Client: mgr.GetClient(), Events: events, Tags: tags}
	if err := policies.SetupWithManager(ctx, mgr); err != nil {
		return fmt.Errorf("set up the ImagePolicy controller: %w", err)
	}
	automations := &image.AutomationReconciler{Client: mgr.GetClient(), Events: events}
	if err := automations.SetupWithManager(ctx, mgr); err != nil {
		return fmt.Errorf("set up the ImageUpdateAutomation controller: %w", err)
	}
	return nil
}

// healthChecker judges the objects the sync kinds apply from the
// manager's cache, reading live what it does not hold: a shard's cache
// holds only its own objects of the sharded kinds.
func healthChecker(mgr manager.Manager, opts Options, shard sharding.Selector) *health.Checker {
	h := &health.Checker{
		Reader: readAcrossShards(mgr.GetClient(), mgr.GetAPIReader(), shard), Scheme: mgr.GetScheme(), Mapper: mgr.GetRESTMapper(),
		Informers: mgr.GetCache(), Live: mgr.GetAPIReader(),
	}
	if opts.Namespace != "" {
		h.Namespaces = []string{opts.Namespace}
	}
	return h
}

// goldenSignals returns the built-in metric queries of a Canary's router.
func goldenSignals(mgr manager.Manager, opts Options) func(c *sluicev1beta1.Canary) (traffic.GoldenSignals, error) {
	deps := router.Deps{Client: mgr.GetClient(), Scheme: mgr.GetScheme(), IngressAnnotationsPrefix: opts.IngressAnnotationsPrefix}
	return func(c *sluicev1beta1.Canary) (traffic.GoldenSignals, error) {
		provider := c.Spec.Provider
		if provider == "" {
			provider = opts.DefaultProvider
		}
		rt, err := router.New(provider, deps)
		if err != nil {
			return traffic.GoldenSignals{}, fmt.Errorf("spec.provider: %w", err)
		}
		return rt.GoldenSignals(), nil
	}
}

// setupNotifications registers the controllers that write the Ready
// conditions of AlertProviders, Providers and Alerts: every replica reads
// them all, and writes the status of those of its shard.
func setupNotifications(ctx context.Context, mgr manager.Manager, d *notify.Dispatcher, events clientevents.EventRecorder, shard sharding.Selector) error {
	alertProviders := &notify.AlertProviderReconciler{Client: mgr.GetClient(), Events: events, Dispatcher: d, Shard: shard.Labels()}
	if err := alertProviders.SetupWithManager(ctx, mgr); err != nil {
		return fmt.Errorf("set up the AlertProvider controller: %w", err)
	}
	providers := &notify.ProviderReconciler{Client: mgr.GetClient(), Events: events, Dispatcher: d, Shard: shard.Labels()}
	if err := providers.SetupWithManager(ctx, mgr); err != nil {
		return fmt.Errorf("set up the Provider controller: %w", err)
	}
	alerts := &notify.AlertReconciler{Client: mgr.GetClient(), Events: events, Dispatcher: d, Shard: shard.Labels()}
	if err := alerts.SetupWithManager(ctx, mgr); err != nil {
		return fmt.Errorf("set up the Alert controller: %w", err)
	}
	return nil
}

// alertDispatcher builds the alert sender and runs it with the manager.
func alertDispatcher(mgr manager.Manager, opts Options, guard *egress.Guard, log logr.Logger) (*notify.Dispatcher, error) {
	var defaults []notify.Route
	if opts.DefaultAlertProvider != "" {
		route, err := notify.ParseRoute(opts.DefaultAlertProvider, opts.DefaultAlertSeverity)
		if err != nil {
			return nil, fmt.Errorf("default alert provider: %w", err)
		}
		defaults = append(defaults, route)
	}
	d, err := notify.NewDispatcher(notify.Options{
		Reader:      mgr.GetClient(),
		Scheme:      mgr.GetScheme(),
		Defaults:    defaults,
		ClusterName: opts.ClusterName,
		Log:         log.WithName("notify"),
		Egress:      guard,
	})
	if err != nil {
		return nil, fmt.Errorf("build the alert dispatcher: %w", err)
	}
	if err := mgr.Add(d); err != nil {
		return nil, fmt.Errorf("add the alert dispatcher: %w", err)
	}
	return d, nil
}
