// Command sluice is the Sluice operator: it runs the canary engine and the
// sync core against a Kubernetes cluster.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	// The time zones of ReleasePolicy freeze windows are read from Go's
	// embedded database, so that a scratch image knows them.
	_ "time/tzdata"

	"github.com/go-logr/logr"
	"go.uber.org/zap/zapcore"
	"k8s.io/client-go/tools/clientcmd"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	sluicev1beta1 "sluice.dev/sluice/api/v1beta1"
	"sluice.dev/sluice/pkg/operator"
	"sluice.dev/sluice/pkg/sharding"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	os.Exit(run(os.Args[1:], os.Stderr))
}

type flags struct {
	operator.Options
	kubeconfig   string
	kubeContext  string
	qps          float64
	burst        int
	logLevel     string
	logEncoding  string
	printVersion bool
}

func parseFlags(args []string, out io.Writer) (flags, error) {
	f := flags{Options: operator.DefaultOptions()}
	f.Version = version
	f.LeaderElectionNamespace = os.Getenv("POD_NAMESPACE")
	var provider, labelPrefixes, alertSeverity, featureGates, shardKey string

	fs := flag.NewFlagSet("sluice", flag.ContinueOnError)
	fs.SetOutput(out)
	fs.StringVar(&f.kubeconfig, "kubeconfig", "", "Path to a kubeconfig; defaults to $KUBECONFIG, ~/.kube/config, then the in-cluster config.")
	fs.StringVar(&f.kubeContext, "context", "", "Kubeconfig context to use.")
	fs.Float64Var(&f.qps, "kube-api-qps", 100, "Requests per second to the API server; -1 leaves it to the API server's priority and fairness.")
	fs.IntVar(&f.burst, "kube-api-burst", 250, "Request burst to the API server.")
	fs.StringVar(&f.Namespace, "namespace", "", "Watch only this namespace; empty watches all.")
	fs.StringVar(&shardKey, "shard-key", "", "Own only the Canaries and sync objects labelled "+sharding.KeyLabel+"=<key>, with a lease of the shard's own: --watch-label-selector="+sharding.KeyLabel+"=<key>.")
	fs.StringVar(&f.WatchLabelSelector, "watch-label-selector", "", "Own only the Canaries and sync objects whose labels match this selector, as Flux's controllers take it; '"+sharding.Unsharded+"' for a replica beside the shards. Empty owns all.")
	fs.StringVar(&provider, "default-provider", string(f.DefaultProvider), fmt.Sprintf("Traffic provider of Canaries that set no spec.provider, one of %v.", sluicev1beta1.Providers()))
	fs.StringVar(&f.MetricsServer, "metrics-server", f.MetricsServer, "Prometheus address for the built-in metrics of Canaries that set no spec.metricsServer.")
	fs.StringVar(&f.DefaultAlertProvider, "default-alert-provider", "", "AlertProvider (namespace/name, or name in each Canary's namespace) that receives the alerts of Canaries with no analysis.alerts.")
	fs.StringVar(&alertSeverity, "default-alert-severity", string(f.DefaultAlertSeverity), "Lowest severity sent to the default alert provider: info, warn or error.")
	fs.StringVar(&f.ClusterName, "cluster-name", "", "Cluster name shown in alerts.")
	fs.StringVar(&f.IngressAnnotationsPrefix, "ingress-annotations-prefix", f.IngressAnnotationsPrefix, "Prefix of the NGINX ingress canary annotations.")
	fs.StringVar(&labelPrefixes, "include-label-prefix", "", "Comma-separated prefixes of the target labels and annotations copied to its primary.")
	fs.BoolVar(&f.ConfigTracking, "enable-config-tracking", f.ConfigTracking, "Make changes to the ConfigMaps and Secrets a target reads new revisions.")
	fs.IntVar(&f.Workers, "concurrent", f.Workers, "Number of Canaries, and of Kustomizations, reconciled at once.")
	fs.StringVar(&f.MetricsBindAddress, "metrics-bind-address", f.MetricsBindAddress, "Address of the /metrics endpoint; 0 turns it off.")
	fs.StringVar(&f.HealthProbeBindAddress, "health-probe-bind-address", f.HealthProbeBindAddress, "Address of the /healthz and /readyz endpoints.")
	fs.StringVar(&f.PprofBindAddress, "pprof-bind-address", f.PprofBindAddress, "Address of Go's /debug/pprof/ profiles, such as 127.0.0.1:6060; 0, the default, turns it off.")
	fs.StringVar(&f.DefaultServiceAccount, "default-service-account", f.DefaultServiceAccount, "ServiceAccount, in each Kustomization's namespace, impersonated when spec.serviceAccountName is empty (multi-tenancy lockdown); empty means the operator's own.")
	fs.StringVar(&featureGates, "feature-gates", "", "Flux feature gates of the sync kinds, as Name=true,Other=false: AdditiveCELDependencyCheck (check a dependency's Ready condition as well as its readyExpr).")
	fs.StringVar(&f.ReceiverBindAddress, "receiver-bind-address", f.ReceiverBindAddress, "Address of the webhook receiver (Receiver webhook paths); \"0\" disables it.")
	fs.BoolVar(&f.LeaderElection, "leader-elect", f.LeaderElection, "Hold a lease so that only one replica acts at a time.")
	fs.StringVar(&f.LeaderElectionNamespace, "leader-election-namespace", f.LeaderElectionNamespace, "Namespace of the lease; defaults to $POD_NAMESPACE, or the pod's namespace in a cluster.")
	fs.StringVar(&f.LeaderElectionID, "leader-election-id", f.LeaderElectionID, "Name of the lease.")
	fs.DurationVar(&f.LeaseDuration, "leader-election-lease-duration", f.LeaseDuration, "How long standby replicas wait for a lease that is not renewed: the longest takeover after a crash.")
	fs.DurationVar(&f.RenewDeadline, "leader-election-renew-deadline", f.RenewDeadline, "How long the leader retries renewing its lease before it stops acting; shorter than the lease duration.")
	fs.DurationVar(&f.RetryPeriod, "leader-election-retry-period", f.RetryPeriod, "Time between two attempts to take or renew the lease; the renew deadline must be more than 1.2 times this.")
	fs.DurationVar(&f.GracefulShutdownTimeout, "graceful-shutdown-timeout", f.GracefulShutdownTimeout, "How long running work may take to finish on shutdown.")
	fs.StringVar(&f.logLevel, "log-level", "info", "Log level: debug, info, warn or error.")
	fs.StringVar(&f.logEncoding, "log-encoding", "json", "Log encoding: json or console.")
	fs.BoolVar(&f.printVersion, "version", false, "Print the version and exit.")
	if err := fs.Parse(args); err != nil {
		return f, err
	}
	if fs.NArg() > 0 {
		return f, fmt.Errorf("unexpected arguments %v", fs.Args())
	}
	gates, err := operator.ParseFeatureGates(featureGates)
	if err != nil {
		return f, err
	}
	f.FeatureGates = gates
	if shardKey != "" {
		if f.WatchLabelSelector != "" {
			return f, fmt.Errorf("--shard-key and --watch-label-selector exclude each other: --shard-key=%s is --watch-label-selector=%s=%s", shardKey, sharding.KeyLabel, shardKey)
		}
		sel, err := sharding.ForKey(shardKey)
		if err != nil {
			return f, fmt.Errorf("--shard-key: %w", err)
		}
		f.WatchLabelSelector = sel.String()
	}
	f.DefaultProvider = sluicev1beta1.Provider(provider)
	f.DefaultAlertSeverity = sluicev1beta1.AlertSeverity(alertSeverity)
	for _, p := range strings.Split(labelPrefixes, ",") {
		if p = strings.TrimSpace(p); p != "" {
			f.IncludeLabelPrefixes = append(f.IncludeLabelPrefixes, p)
		}
	}
	return f, nil
}

func run(args []string, stderr io.Writer) int {
	f, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, "sluice:", err)
		return 2
	}
	if f.printVersion {
		fmt.Fprintln(os.Stdout, version)
		return 0
	}
	if err := f.Validate(); err != nil {
		fmt.Fprintln(stderr, "sluice:", err)
		return 2
	}
	log, err := newLogger(f.logLevel, f.logEncoding, stderr)
	if err != nil {
		fmt.Fprintln(stderr, "sluice:", err)
		return 2
	}
	ctrl.SetLogger(log)

	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(
		&clientcmd.ClientConfigLoadingRules{ExplicitPath: f.kubeconfig, Precedence: clientcmd.NewDefaultClientConfigLoadingRules().Precedence},
		&clientcmd.ConfigOverrides{CurrentContext: f.kubeContext},
	).ClientConfig()
	if err != nil {
		log.Error(err, "load the cluster config")
		return 1
	}
	cfg.QPS, cfg.Burst = float32(f.qps), f.burst
	cfg.UserAgent = "sluice/" + version

	if err := operator.Run(ctrl.SetupSignalHandler(), cfg, f.Options, log); err != nil {
		log.Error(err, "operator failed")
		return 1
	}
	return 0
}

func newLogger(level, encoding string, out io.Writer) (logr.Logger, error) {
	lvl, err := zapcore.ParseLevel(level)
	if err != nil {
		return logr.Discard(), fmt.Errorf("log level %q: want debug, info, warn or error", level)
	}
	opts := []zap.Opts{zap.Level(lvl), zap.WriteTo(out)}
	switch encoding {
	case "json":
		opts = append(opts, zap.JSONEncoder())
	case "console":
		opts = append(opts, zap.ConsoleEncoder())
	default:
		return logr.Discard(), fmt.Errorf("log encoding %q: want json or console", encoding)
	}
	return zap.New(opts...), nil
}
