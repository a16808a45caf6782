package cli

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/Masterminds/semver/v3"
	"github.com/spf13/cobra"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"
	"sigs.k8s.io/yaml"

	sourcev1 "sluice.dev/sluice/api/source/v1"
	syncv1 "sluice.dev/sluice/api/sync/v1"
	syncv2 "sluice.dev/sluice/api/sync/v2"
	sluicev1beta1 "sluice.dev/sluice/api/v1beta1"
	sluicescheme "sluice.dev/sluice/pkg/scheme"
)

// FieldManager is the server-side apply field manager of what sluicectl
// creates and installs, so that managedFields tell its changes from the
// operator's and from kubectl's.
const FieldManager = "sluicectl"

// defaultInterval is the interval of created objects, as in flux create.
const defaultInterval = time.Minute

func newCreateCmd(g *globals) *cobra.Command {
	cmd := groupCmd("create", "Create or update a source, Kustomization, HelmRelease, Canary, Alert or Provider")
	cmd.Long = `create writes an object from flags with server-side apply (field manager
` + FieldManager + `): it creates the object or updates the fields it names. For a
GitRepository, Kustomization or HelmRelease it then waits until the
operator has reconciled it and prints its Ready condition, unless
--no-wait is given. With --export it prints the object as YAML instead,
to commit to a repository, and reads nothing from the cluster.`
	source := groupCmd("source", "Create or update a source")
	source.Aliases = []string{"sources"}
	source.AddCommand(newCreateGitCmd(g), newCreateOCICmd(g))
	cmd.AddCommand(source, newCreateImageCmd(g), newCreateKustomizationCmd(g), newCreateHelmReleaseCmd(g), newCreateCanaryCmd(g),
		newCreateAlertCmd(g), newCreateProviderCmd(g))
	return cmd
}

// createFlags are the flags every create command has.
type createFlags struct {
	export bool
	noWait bool
}

func (f *createFlags) add(cmd *cobra.Command, waits bool) {
	cmd.Flags().BoolVar(&f.export, "export", false, "Print the object as YAML instead of applying it.")
	if waits {
		cmd.Flags().BoolVar(&f.noWait, "no-wait", false, "Return once the object is applied, without waiting for the operator to reconcile it.")
	}
}

// gitOptions are the flags of `create source git`.
type gitOptions struct {
	name, url, secretRef        string
	branch, tag, semVer, commit string
	interval                    time.Duration
}

func (o gitOptions) validate() error {
	if err := validURL("--url", o.url, "http", "https", "ssh"); err != nil {
		return err
	}
	if err := validInterval("--interval", o.interval); err != nil {
		return err
	}
	if o.semVer != "" {
		if _, err := semver.NewConstraint(o.semVer); err != nil {
			return fmt.Errorf("--semver %q is not a semver range: %w", o.semVer, err)
		}
	}
	if o.commit != "" && !fullSHA.MatchString(o.commit) {
		return fmt.Errorf("--commit %q must be a full SHA-1: 40 lowercase hex digits", o.commit)
	}
	return nil
}

func (o gitOptions) object() *sourcev1.GitRepository {
	repo := &sourcev1.GitRepository{
		ObjectMeta: metav1.ObjectMeta{Name: o.name},
		Spec: sourcev1.GitRepositorySpec{
			URL:       o.url,
			Interval:  metav1.Duration{Duration: o.interval},
			Reference: &sourcev1.GitRepositoryRef{Branch: o.branch, Tag: o.tag, SemVer: o.semVer, Commit: o.commit},
		},
	}
	if o.secretRef != "" {
		repo.Spec.SecretRef = &sourcev1.LocalObjectReference{Name: o.secretRef}
	}
	return repo
}

func newCreateGitCmd(g *globals) *cobra.Command {
	var (
		f createFlags
		o gitOptions
	)
	k := sourceKinds()[0]
	cmd := &cobra.Command{
		Use:     "git NAME --url URL (--branch BRANCH | --tag TAG | --semver RANGE | --commit SHA)",
		Short:   "Create or update a GitRepository",
		Example: "  sluicectl create source git podinfo --url https://github.com/stefanprodan/podinfo --branch master --interval 5m",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.name = args[0]
			if err := o.validate(); err != nil {
				return err
			}
			return g.create(cmd.Context(), f, o.object(), &k)
		},
	}
	f.add(cmd, true)
	fl := cmd.Flags()
	fl.StringVar(&o.url, "url", "", "URL of the repository: http, https or ssh.")
	fl.StringVar(&o.branch, "branch", "", "Branch to follow.")
	fl.StringVar(&o.tag, "tag", "", "Tag to check out.")
	fl.StringVar(&o.semVer, "semver", "", "Semver range over the tags; the highest match is checked out.")
	fl.StringVar(&o.commit, "commit", "", "Full SHA-1 of the commit to check out; with --branch, only that branch is fetched.")
	fl.DurationVar(&o.interval, "interval", defaultInterval, "Interval between two fetches.")
	fl.StringVar(&o.secretRef, "secret-ref", "", "Name of the Secret, in the same namespace, with the credentials.")
	_ = cmd.MarkFlagRequired("url")
	cmd.MarkFlagsMutuallyExclusive("branch", "tag", "semver")
	cmd.MarkFlagsMutuallyExclusive("tag", "commit")
	cmd.MarkFlagsMutuallyExclusive("semver", "commit")
	cmd.MarkFlagsOneRequired("branch", "tag", "semver", "commit")
	return cmd
}

// fullSHA is the commit the GitRepository API accepts.
var fullSHA = regexp.MustCompile(`^[0-9a-f]{40}$`)

// kustomizationOptions are the flags of `create kustomization`.
type kustomizationOptions struct {
	name, source, path, targetNS, account string
	dependsOn                             []string
	prune, wait                           bool
	interval                              time.Duration
}

func (o kustomizationOptions) validate() error {
	if _, err := parseRef("--source", o.source, "GitRepository", "GitRepository", "OCIRepository"); err != nil {
		return err
	}
	if err := validInterval("--interval", o.interval); err != nil {
		return err
	}
	for _, d := range o.dependsOn {
		if _, err := parseRef("--depends-on", d, ""); err != nil {
			return err
		}
	}
	return nil
}

// object is the Kustomization of valid options.
func (o kustomizationOptions) object() *syncv1.Kustomization {
	ref, _ := parseRef("--source", o.source, "GitRepository", "GitRepository", "OCIRepository")
	ks := &syncv1.Kustomization{
		ObjectMeta: metav1.ObjectMeta{Name: o.name},
		Spec: syncv1.KustomizationSpec{
			SourceRef:          syncv1.CrossNamespaceSourceReference{Kind: ref.kind, Namespace: ref.namespace, Name: ref.name},
			Path:               o.path,
			Interval:           metav1.Duration{Duration: o.interval},
			Prune:              o.prune,
			Wait:               o.wait,
			TargetNamespace:    o.targetNS,
			ServiceAccountName: o.account,
		},
	}
	for _, d := range o.dependsOn {
		dep, _ := parseRef("--depends-on", d, "")
		ks.Spec.DependsOn = append(ks.Spec.DependsOn, syncv1.DependencyReference{Namespace: dep.namespace, Name: dep.name})
	}
	return ks
}

func newCreateKustomizationCmd(g *globals) *cobra.Command {
	var (
		f createFlags
		o kustomizationOptions
	)
	k := kustomizationKind()
	cmd := &cobra.Command{
		Use:     k.use + " NAME --source GitRepository/NAME",
		Aliases: k.aliases,
		Short:   "Create or update a Kustomization",
		Example: "  sluicectl create kustomization apps --source GitRepository/podinfo --path ./kustomize --prune --interval 10m",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.name = args[0]
			if err := o.validate(); err != nil {
				return err
			}
			return g.create(cmd.Context(), f, o.object(), &k)
		},
	}
	f.add(cmd, true)
	fl := cmd.Flags()
	fl.StringVar(&o.source, "source", "", "Source to build, as GitRepository/NAME or OCIRepository/NAME, with an optional NAMESPACE/ before NAME.")
	fl.StringVar(&o.path, "path", "", "Folder in the source to build; defaults to its root.")
	fl.BoolVar(&o.prune, "prune", false, "Delete what a previous apply made and the source no longer has.")
	fl.BoolVar(&o.wait, "wait", false, "Have the operator wait for every applied object to be healthy before the Kustomization is Ready (spec.wait).")
	fl.DurationVar(&o.interval, "interval", defaultInterval, "Interval between two applies.")
	fl.StringVar(&o.targetNS, "target-namespace", "", "Namespace to set on every namespaced object.")
	fl.StringSliceVar(&o.dependsOn, "depends-on", nil, "Kustomizations that must be Ready first, as NAME or NAMESPACE/NAME; repeat or separate with commas.")
	fl.StringVar(&o.account, "service-account", "", "ServiceAccount, in the Kustomization's namespace, that the operator impersonates to apply.")
	_ = cmd.MarkFlagRequired("source")
	return cmd
}

// helmReleaseOptions are the flags of `create helmrelease`.
type helmReleaseOptions struct {
	name, source, chart, version, values, target string
	interval                                     time.Duration
}

func (o helmReleaseOptions) validate() error {
	if _, err := parseRef("--source", o.source, "HelmRepository", "HelmRepository", "GitRepository"); err != nil {
		return err
	}
	if err := validInterval("--interval", o.interval); err != nil {
		return err
	}
	if o.version != "" {
		if _, err := semver.NewConstraint(o.version); err != nil {
			return fmt.Errorf("--chart-version %q is not a semver range: %w", o.version, err)
		}
	}
	return nil
}

// object is the HelmRelease of valid options; it reads the --values file.
func (o helmReleaseOptions) object() (*syncv2.HelmRelease, error) {
	ref, _ := parseRef("--source", o.source, "HelmRepository", "HelmRepository", "GitRepository")
	hr := &syncv2.HelmRelease{
		ObjectMeta: metav1.ObjectMeta{Name: o.name},
		Spec: syncv2.HelmReleaseSpec{
			Chart: &syncv2.HelmChartTemplate{Spec: syncv2.HelmChartTemplateSpec{
				Chart:     o.chart,
				Version:   o.version,
				SourceRef: syncv2.HelmChartSourceReference{Kind: ref.kind, Namespace: ref.namespace, Name: ref.name},
			}},
			Interval:        metav1.Duration{Duration: o.interval},
			TargetNamespace: o.target,
		},
	}
	if o.values != "" {
		var err error
		if hr.Spec.Values, err = readValues(o.values); err != nil {
			return nil, err
		}
	}
	return hr, nil
}

func newCreateHelmReleaseCmd(g *globals) *cobra.Command {
	var (
		f createFlags
		o helmReleaseOptions
	)
	k := helmReleaseKind()
	cmd := &cobra.Command{
		Use:     k.use + " NAME --source HelmRepository/NAME --chart CHART",
		Aliases: k.aliases,
		Short:   "Create or update a HelmRelease",
		Example: "  sluicectl create helmrelease podinfo --source HelmRepository/podinfo --chart podinfo --chart-version '>=6.0.0' --values ./values.yaml",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.name = args[0]
			if err := o.validate(); err != nil {
				return err
			}
			hr, err := o.object()
			if err != nil {
				return err
			}
			return g.create(cmd.Context(), f, hr, &k)
		},
	}
	f.add(cmd, true)
	fl := cmd.Flags()
	fl.StringVar(&o.source, "source", "", "Chart source, as HelmRepository/NAME or GitRepository/NAME, with an optional NAMESPACE/ before NAME.")
	fl.StringVar(&o.chart, "chart", "", "Chart name in the HelmRepository, or its path in the GitRepository.")
	fl.StringVar(&o.version, "chart-version", "", "Semver range of the chart version; the operator defaults it to '*'.")
	fl.StringVar(&o.values, "values", "", "YAML file of values to set in spec.values.")
	fl.StringVar(&o.target, "target-namespace", "", "Namespace of the release's objects; defaults to the HelmRelease's.")
	fl.DurationVar(&o.interval, "interval", defaultInterval, "Interval between two reconciles.")
	_ = cmd.MarkFlagRequired("source")
	_ = cmd.MarkFlagRequired("chart")
	_ = cmd.MarkFlagFilename("values", "yaml", "yml", "json")
	return cmd
}

// canaryOptions are the flags of `create canary`.
type canaryOptions struct {
	name, target, provider, interval, targetPort string
	port                                         int32
	threshold, maxWeight, stepWeight, iterations int
	// byIterations is set when --iterations was given.
	byIterations bool
	metrics      []string
}

func (o canaryOptions) validate() error {
	ref, err := parseRef("--target-ref", o.target, "Deployment", "Deployment", "DaemonSet", "Service")
	if err != nil {
		return err
	}
	if ref.namespace != "" {
		return fmt.Errorf("--target-ref %q: the target is in the Canary's namespace; give KIND/NAME", o.target)
	}
	if o.provider != "" && !sluicev1beta1.Provider(o.provider).Known() {
		return fmt.Errorf("--provider %q is not one of %s", o.provider, joinProviders())
	}
	if o.port < 1 || o.port > 65535 {
		return fmt.Errorf("--port %d must be between 1 and 65535", o.port)
	}
	if err := validAnalysisInterval(o.interval); err != nil {
		return err
	}
	if err := checkWeights(o.byIterations, o.iterations, o.stepWeight, o.maxWeight, o.threshold); err != nil {
		return err
	}
	for _, m := range o.metrics {
		if _, err := parseMetric(m); err != nil {
			return err
		}
	}
	return nil
}

// object is the Canary of valid options.
func (o canaryOptions) object() *sluicev1beta1.Canary {
	ref, _ := parseRef("--target-ref", o.target, "Deployment", "Deployment", "DaemonSet", "Service")
	analysis := &sluicev1beta1.CanaryAnalysis{Interval: o.interval, Threshold: o.threshold}
	if o.byIterations {
		analysis.Iterations = o.iterations
	} else {
		analysis.StepWeight, analysis.MaxWeight = o.stepWeight, o.maxWeight
	}
	for _, m := range o.metrics {
		metric, _ := parseMetric(m)
		analysis.Metrics = append(analysis.Metrics, metric)
	}
	// The API defaults targetPort to port; set, it spares the export a
	// zero targetPort.
	svc := sluicev1beta1.CanaryService{Port: o.port, TargetPort: intstr.FromInt32(o.port)}
	if o.targetPort != "" {
		svc.TargetPort = intstr.Parse(o.targetPort)
	}
	apiVersion := "apps/v1"
	if ref.kind == "Service" {
		apiVersion = "v1"
	}
	return &sluicev1beta1.Canary{
		ObjectMeta: metav1.ObjectMeta{Name: o.name},
		Spec: sluicev1beta1.CanarySpec{
			Provider:  sluicev1beta1.Provider(o.provider),
			TargetRef: sluicev1beta1.TargetReference{APIVersion: apiVersion, Kind: ref.kind, Name: ref.name},
			Service:   svc,
			Analysis:  analysis,
		},
	}
}

func newCreateCanaryCmd(g *globals) *cobra.Command {
	var (
		f createFlags
		o canaryOptions
	)
	cmd := &cobra.Command{
		Use:   "canary NAME --target-ref Deployment/NAME --port PORT",
		Short: "Create or update a Canary",
		Long: `create canary writes a Canary that releases its target with progressive
traffic shifting (--step-weight up to --max-weight), or with a fixed
number of --iterations for A/B testing and blue/green. Each --metric is
NAME:min=N, NAME:max=N or both, with an optional interval=DURATION, for
instance request-success-rate:min=99 or request-duration:max=500,interval=30s;
without --metric the analysis checks no metric.`,
		Example: "  sluicectl create canary podinfo --target-ref Deployment/podinfo --port 9898 --provider gatewayapi:v1 \\\n" +
			"    --metric request-success-rate:min=99 --metric request-duration:max=500",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.name, o.byIterations = args[0], cmd.Flags().Changed("iterations")
			if err := o.validate(); err != nil {
				return err
			}
			return g.create(cmd.Context(), f, o.object(), nil)
		},
	}
	f.add(cmd, false)
	fl := cmd.Flags()
	fl.StringVar(&o.target, "target-ref", "", "Workload to release, as Deployment/NAME, DaemonSet/NAME or Service/NAME.")
	fl.StringVar(&o.provider, "provider", "", "Traffic provider; defaults to the operator's --default-provider. One of "+joinProviders()+".")
	fl.Int32Var(&o.port, "port", 0, "Port of the Services the operator makes for the target.")
	fl.StringVar(&o.targetPort, "target-port", "", "Container port of the target, by number or name; defaults to --port.")
	fl.StringVar(&o.interval, "interval", sluicev1beta1.DefaultAnalysisInterval, "Interval between two analysis steps; at least "+sluicev1beta1.MinAnalysisInterval+".")
	fl.IntVar(&o.threshold, "threshold", 5, "Failed checks after which the release is rolled back.")
	fl.IntVar(&o.maxWeight, "max-weight", 50, "Highest traffic percentage the canary gets before promotion.")
	fl.IntVar(&o.stepWeight, "step-weight", 10, "Traffic percentage added at each step.")
	fl.IntVar(&o.iterations, "iterations", 0, "Number of analysis steps of an A/B or blue/green release, in place of --step-weight and --max-weight.")
	fl.StringArrayVar(&o.metrics, "metric", nil, "Metric check, as NAME:min=N, NAME:max=N or NAME:min=N,max=N, with an optional ,interval=DURATION; repeat for more.")
	_ = cmd.MarkFlagRequired("target-ref")
	_ = cmd.MarkFlagRequired("port")
	_ = cmd.RegisterFlagCompletionFunc("provider", func(*cobra.Command, []string, string) ([]cobra.Completion, cobra.ShellCompDirective) {
		var names []cobra.Completion
		for _, p := range sluicev1beta1.Providers() {
			names = append(names, string(p))
		}
		return names, cobra.ShellCompDirectiveNoFileComp
	})
	cmd.MarkFlagsMutuallyExclusive("iterations", "step-weight")
	cmd.MarkFlagsMutuallyExclusive("iterations", "max-weight")
	return cmd
}

// validAnalysisInterval checks --interval against the minimum the Canary
// CRD enforces, so that the error names the flag.
func validAnalysisInterval(interval string) error {
	minimum, err := time.ParseDuration(sluicev1beta1.MinAnalysisInterval)
	if err != nil {
		return fmt.Errorf("parse the minimum analysis interval: %w", err)
	}
	if d, err := time.ParseDuration(interval); err != nil || d < minimum {
		return fmt.Errorf("--interval %q must be a duration of at least %s", interval, sluicev1beta1.MinAnalysisInterval)
	}
	return nil
}

// checkWeights checks the release steps: --iterations when given
// (byIterations), else the step and max weights.
func checkWeights(byIterations bool, iterations, stepWeight, maxWeight, threshold int) error {
	if threshold < 1 {
		return fmt.Errorf("--threshold %d must be at least 1", threshold)
	}
	if byIterations {
		if iterations < 1 {
			return fmt.Errorf("--iterations %d must be at least 1", iterations)
		}
		return nil
	}
	if maxWeight < 1 || maxWeight > 100 {
		return fmt.Errorf("--max-weight %d must be between 1 and 100", maxWeight)
	}
	if stepWeight < 1 || stepWeight > maxWeight {
		return fmt.Errorf("--step-weight %d must be between 1 and --max-weight (%d)", stepWeight, maxWeight)
	}
	return nil
}

// parseMetric reads a --metric: NAME:min=N,max=N,interval=DURATION, each
// setting optional but one bound required.
func parseMetric(s string) (sluicev1beta1.CanaryMetric, error) {
	name, settings, hasSettings := strings.Cut(s, ":")
	m := sluicev1beta1.CanaryMetric{Name: name}
	if name == "" {
		return m, fmt.Errorf("--metric %q has no name; use NAME:min=N or NAME:max=N", s)
	}
	bounds := &sluicev1beta1.CanaryThresholdRange{}
	if !hasSettings {
		return m, fmt.Errorf("--metric %q sets no bound; use NAME:min=N, NAME:max=N or both", s)
	}
	for setting := range strings.SplitSeq(settings, ",") {
		key, value, ok := strings.Cut(setting, "=")
		if !ok {
			return m, fmt.Errorf("--metric %q: %q is not KEY=VALUE; use min, max or interval", s, setting)
		}
		switch key {
		case "min", "max":
			v, err := strconv.ParseFloat(value, 64)
			if err != nil {
				return m, fmt.Errorf("--metric %q: %s=%s is not a number", s, key, value)
			}
			if key == "min" {
				bounds.Min = ptr.To(v)
			} else {
				bounds.Max = ptr.To(v)
			}
		case "interval":
			if _, err := time.ParseDuration(value); err != nil {
				return m, fmt.Errorf("--metric %q: interval=%s is not a duration", s, value)
			}
			m.Interval = value
		default:
			return m, fmt.Errorf("--metric %q: unknown setting %q; use min, max or interval", s, key)
		}
	}
	if bounds.Min == nil && bounds.Max == nil {
		return m, fmt.Errorf("--metric %q sets no bound; use NAME:min=N, NAME:max=N or both", s)
	}
	m.ThresholdRange = bounds
	return m, nil
}

func joinProviders() string {
	names := make([]string, 0, len(sluicev1beta1.Providers()))
	for _, p := range sluicev1beta1.Providers() {
		names = append(names, string(p))
	}
	return strings.Join(names, ", ")
}

// objectRef is a KIND/NAME or KIND/NAMESPACE/NAME flag value.
type objectRef struct {
	kind, namespace, name string
}

// parseRef reads the value of flag: [KIND/][NAMESPACE/]NAME when kinds
// are given (KIND defaults to def), [NAMESPACE/]NAME when there are none.
func parseRef(flag, value, def string, kinds ...string) (objectRef, error) {
	parts := strings.Split(value, "/")
	var ref objectRef
	switch {
	case len(kinds) == 0 && len(parts) == 1:
		ref.name = parts[0]
	case len(kinds) == 0 && len(parts) == 2:
		ref.namespace, ref.name = parts[0], parts[1]
	case len(kinds) > 0 && len(parts) == 1:
		ref.kind, ref.name = def, parts[0]
	case len(kinds) > 0 && len(parts) == 2:
		ref.kind, ref.name = parts[0], parts[1]
	case len(kinds) > 0 && len(parts) == 3:
		ref.kind, ref.namespace, ref.name = parts[0], parts[1], parts[2]
	default:
		if len(kinds) == 0 {
			return ref, fmt.Errorf("%s %q: use NAME or NAMESPACE/NAME", flag, value)
		}
		return ref, fmt.Errorf("%s %q: use KIND/NAME or KIND/NAMESPACE/NAME", flag, value)
	}
	if slices.Contains(parts, "") {
		return ref, fmt.Errorf("%s %q has an empty part", flag, value)
	}
	if len(kinds) > 0 && !slices.Contains(kinds, ref.kind) {
		return ref, fmt.Errorf("%s %q: the kind must be %s", flag, value, strings.Join(kinds, " or "))
	}
	return ref, nil
}

func validInterval(flag string, d time.Duration) error {
	if d <= 0 {
		return fmt.Errorf("%s %s must be positive", flag, d)
	}
	return nil
}

// validURL checks that flag's value is an absolute URL of one of schemes.
func validURL(flag, value string, schemes ...string) error {
	u, err := url.Parse(value)
	if err != nil {
		return fmt.Errorf("%s %q: %w", flag, value, err)
	}
	if !slices.Contains(schemes, u.Scheme) || u.Host == "" {
		return fmt.Errorf("%s %q must be an absolute URL with one of the schemes %s", flag, value, strings.Join(schemes, ", "))
	}
	return nil
}

// readValues reads a --values file: a YAML map of chart values.
func readValues(file string) (*apiextensionsv1.JSON, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("--values: %w", err)
	}
	var values map[string]any
	if err := yaml.Unmarshal(data, &values); err != nil {
		return nil, fmt.Errorf("--values %s is not a YAML map: %w", file, err)
	}
	raw, err := yaml.YAMLToJSON(data)
	if err != nil {
		return nil, fmt.Errorf("--values %s: %w", file, err)
	}
	return &apiextensionsv1.JSON{Raw: raw}, nil
}

// create prints obj with --export, or applies it and, for a sync kind,
// waits for the operator to reconcile it.
func (g *globals) create(parent context.Context, f createFlags, obj client.Object, k *syncKind) error {
	ns, err := g.namedNamespace()
	if err != nil && f.export && g.namespace == "" && g.kubeconfig == "" && !g.allNamespaces {
		// An export needs no cluster: with no kubeconfig to name a
		// namespace, it is written for "default", as kubectl would use.
		ns, err = "default", nil
	}
	if err != nil {
		return err
	}
	obj.SetNamespace(ns)
	doc, err := document(obj)
	if err != nil {
		return err
	}
	if f.export {
		data, err := yaml.Marshal(doc)
		if err != nil {
			return fmt.Errorf("encode %s %s as YAML: %w", doc["kind"], obj.GetName(), err)
		}
		_, err = fmt.Fprintf(g.streams.Out, "---\n%s", data)
		return err
	}
	ctx, cancel, timeout := g.withTimeout(parent, reconcileTimeout)
	defer cancel()
	c, err := g.kubeClient()
	if err != nil {
		return err
	}
	u := &unstructured.Unstructured{Object: doc}
	key := client.ObjectKeyFromObject(u)
	if err := c.Apply(ctx, client.ApplyConfigurationFromUnstructured(u), client.FieldOwner(FieldManager), client.ForceOwnership); err != nil {
		return fmt.Errorf("apply %s %s: %w", u.GetKind(), key, err)
	}
	fmt.Fprintf(g.streams.Out, "%s %s applied\n", u.GetKind(), key)
	if k == nil || f.noWait {
		return nil
	}
	applied, err := getObject(ctx, c, k.kind, key.Namespace, key.Name)
	if err != nil {
		return err
	}
	return g.reconcile(ctx, waiter{parent: parent, timeout: timeout}, c, *k, applied)
}

// document is obj as create prints and applies it: its apiVersion, kind,
// name, namespace and spec, and none of the fields the API server
// fills in, as flux create --export writes them.
func document(obj client.Object) (map[string]any, error) {
	scheme, err := sluicescheme.New()
	if err != nil {
		return nil, err
	}
	gvk, err := apiutil.GVKForObject(obj, scheme)
	if err != nil {
		return nil, fmt.Errorf("find the kind of %T: %w", obj, err)
	}
	u, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		return nil, fmt.Errorf("convert %s %s: %w", gvk.Kind, obj.GetName(), err)
	}
	return map[string]any{
		"apiVersion": gvk.GroupVersion().String(),
		"kind":       gvk.Kind,
		"metadata":   map[string]any{"name": obj.GetName(), "namespace": obj.GetNamespace()},
		"spec":       u["spec"],
	}, nil
}
