package source

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/Masterminds/semver/v3"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"helm.sh/helm/v4/pkg/chart/common"
	chart "helm.sh/helm/v4/pkg/chart/v2"
	"helm.sh/helm/v4/pkg/chart/v2/loader"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	clientevents "k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"

	sourcev1 "sluice.dev/sluice/api/source/v1"
	"sluice.dev/sluice/pkg/source/git"
	"sluice.dev/sluice/pkg/source/helm"
	"sluice.dev/sluice/pkg/source/oci"
	"sluice.dev/sluice/pkg/source/verify"
	"sluice.dev/sluice/pkg/sync/index"
	"sluice.dev/sluice/pkg/sync/status"
)

// +kubebuilder:rbac:groups=source.sluice.dev,resources=helmcharts,verbs=get;list;watch
// +kubebuilder:rbac:groups=source.sluice.dev,resources=helmcharts/status,verbs=get;update;patch

// sourceWait is how soon a HelmChart whose source has no artifact yet is
// tried again: an artifact that reaches the Store without changing the
// GitRepository's status (after a restart) sends no watch event.
const sourceWait = 5 * time.Second

// soonerOn is when to look again: after interval, or after sourceWait
// when ready's reason is waiting for a source and that is sooner.
func soonerOn(ready metav1.Condition, waiting string, interval time.Duration) time.Duration {
	if ready.Reason == waiting && (interval == 0 || sourceWait < interval) {
		return sourceWait
	}
	return interval
}

// HelmChartReconciler loads HelmCharts into a ChartStore: from a
// HelmRepository, the highest version in spec.version's range; from a
// GitRepository's artifact in Sources, or a Bucket's in BucketSources,
// the chart at path spec.chart.
//
// The stored chart always has the source's current content. Its revision
// follows spec.reconcileStrategy: under ChartVersion (the default) it is
// the chart's version, so a commit that changes a chart in Git without
// bumping its version keeps the revision and changes only the digest, and
// a HelmRelease that upgrades on a new revision does not upgrade (Flux's
// behaviour); under Revision a chart from Git gets the commit as build
// metadata, <version>+<12 hex>, and every commit is a new revision; a
// chart from a Bucket gets the first 12 hex of the Bucket's revision, as
// Flux does.
type HelmChartReconciler struct {
	Client  client.Client
	Events  clientevents.EventRecorder
	Fetcher *helm.Fetcher
	Charts  *ChartStore
	Sources *Store
	// BucketSources holds the Buckets' artifacts; nil leaves a HelmChart
	// of a Bucket waiting for one.
	BucketSources *Store
	// Verifiers check spec.verify; nil means verify.New().
	Verifiers verify.Verifiers
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// helmChartSourceIndex is the field index of the HelmCharts whose
// spec.sourceRef names a source of kind, by the source's
// namespace/name: a source's update finds its HelmCharts in the cache's
// index rather than by listing and copying every HelmChart of the
// namespace.
func helmChartSourceIndex(kind string) string { return ".spec.sourceRef." + kind }

// helmChartSourceKinds are the kinds a HelmChart's spec.sourceRef may
// name.
var helmChartSourceKinds = []string{"GitRepository", "HelmRepository", "Bucket"}

// addHelmChartIndexes registers the source indexes of HelmCharts, one a
// kind.
func addHelmChartIndexes(ctx context.Context, indexer client.FieldIndexer) error {
	for _, kind := range helmChartSourceKinds {
		err := index.Add(ctx, indexer, &sourcev1.HelmChart{}, helmChartSourceIndex(kind), func(hc *sourcev1.HelmChart) []types.NamespacedName {
			if hc.Spec.SourceRef.Kind != kind {
				return nil
			}
			return []types.NamespacedName{{Namespace: hc.Namespace, Name: hc.Spec.SourceRef.Name}}
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// bySource maps a source of the given kind to the HelmCharts whose
// spec.sourceRef names it, read from c's index.
func bySource(c client.Reader, kind string) handler.MapFunc {
	return index.Mapper(c, func() client.ObjectList { return &sourcev1.HelmChartList{} }, helmChartSourceIndex(kind))
}

// SetupWithManager registers the controller: a HelmChart is loaded when
// its spec changes, when its source changes, and at its interval.
func (r *HelmChartReconciler) SetupWithManager(ctx context.Context, mgr ctrl.Manager) error {
	if err := addHelmChartIndexes(ctx, mgr.GetFieldIndexer()); err != nil {
		return err
	}
	c := mgr.GetClient()
	return ctrl.NewControllerManagedBy(mgr).
		Named("helmchart").
		For(&sourcev1.HelmChart{}, builder.WithPredicates(predicate.Or(predicate.GenerationChangedPredicate{}, predicate.AnnotationChangedPredicate{}))).
		Watches(&sourcev1.GitRepository{}, handler.EnqueueRequestsFromMapFunc(bySource(c, "GitRepository"))).
		Watches(&sourcev1.HelmRepository{}, handler.EnqueueRequestsFromMapFunc(bySource(c, "HelmRepository"))).
		Watches(&sourcev1.Bucket{}, handler.EnqueueRequestsFromMapFunc(bySource(c, "Bucket"))).
		Complete(r)
}

// Reconcile loads one HelmChart and writes its status once.
func (r *HelmChartReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	hc := &sourcev1.HelmChart{}
	return status.Loop{
		Client: r.Client, Kind: "HelmChart", Object: hc,
		Fields: status.Fields{ObservedGeneration: &hc.Status.ObservedGeneration, LastHandledReconcileAt: &hc.Status.LastHandledReconcileAt, Conditions: &hc.Status.Conditions},
		Gone:   r.Charts.forget,
		Pass:   func(ctx context.Context) (metav1.Condition, bool) { return r.load(ctx, hc), false },
		Next: func(ready metav1.Condition) time.Duration {
			if hc.Spec.Suspend {
				return 0
			}
			return soonerOn(ready, sourcev1.ReasonArtifactFailed, hc.Spec.Interval.Duration)
		},
	}.Reconcile(ctx, req.NamespacedName)
}

// reasonError is an error with the Ready reason it earns.
type reasonError struct {
	reason string
	err    error
}

func (e *reasonError) Error() string { return e.err.Error() }
func (e *reasonError) Unwrap() error { return e.err }

func withReason(reason string, err error) error { return &reasonError{reason: reason, err: err} }

// loaded is a chart as its source gave it.
type loaded struct {
	chart *chart.Chart
	// version is the version picked or found in Chart.yaml.
	version string
	// digest is of the archive or of the chart's files.
	digest string
	// sourceRevision is the source's artifact revision, if it has one.
	sourceRevision string
	// lookup finds a values file outside the chart; nil if none can be.
	lookup func(name string) ([]byte, bool)
	// verified is what spec.verify found; nil without it.
	verified *verify.Result
}

// load loads one HelmChart and returns the Ready condition it earns. The
// chart is stored; a new revision is recorded in status and announced. A
// failure leaves the last chart in the store.
func (r *HelmChartReconciler) load(ctx context.Context, hc *sourcev1.HelmChart) metav1.Condition {
	if hc.Spec.Suspend {
		return metav1.Condition{Type: "Ready", Status: metav1.ConditionTrue, Reason: sourcev1.ReasonSuspended, Message: "Suspended: no pull until spec.suspend is unset"}
	}
	failed := func(err error) metav1.Condition {
		reason := sourcev1.ReasonChartPullError
		var re *reasonError
		if errors.As(err, &re) {
			reason = re.reason
		}
		r.Events.Eventf(hc, nil, corev1.EventTypeWarning, reason, "Pull", "%v", err)
		return metav1.Condition{Type: "Ready", Status: metav1.ConditionFalse, Reason: reason, Message: err.Error()}
	}
	var l *loaded
	var err error
	success, verb := sourcev1.ReasonChartPullSucceeded, "pulled"
	switch kind := hc.Spec.SourceRef.Kind; kind {
	case "HelmRepository":
		l, err = r.fromHelmRepository(ctx, hc)
	case "GitRepository":
		l, err = r.fromArtifact(hc, r.Sources)
		success, verb = sourcev1.ReasonChartPackageSucceeded, "packaged"
	case "Bucket":
		l, err = r.fromArtifact(hc, r.BucketSources)
		success, verb = sourcev1.ReasonChartPackageSucceeded, "packaged"
	default:
		err = withReason(sourcev1.ReasonArtifactFailed, fmt.Errorf("spec.sourceRef: kind %q: want HelmRepository, GitRepository or Bucket", kind))
	}
	if err != nil {
		var refused *verificationError
		if errors.As(err, &refused) {
			setSourceVerified(&hc.Status.Conditions, hc.Generation, metav1.ConditionFalse, sourcev1.ReasonVerificationError, err.Error())
		}
		return failed(err)
	}
	switch {
	case hc.Spec.Verify == nil, l.verified == nil || !l.verified.Verified:
		// Without spec.verify, or let through unverified by notation's
		// trust policy: nothing says it was verified.
		setSourceVerified(&hc.Status.Conditions, hc.Generation, "", "", "")
	default:
		setSourceVerified(&hc.Status.Conditions, hc.Generation, metav1.ConditionTrue, sourcev1.ReasonSucceeded, verifiedMessage("version", l.version, *l.verified))
	}

	ch, digest := l.chart, l.digest
	var observedValuesFiles []string
	if files := valuesFiles(hc); len(files) > 0 {
		values, found, err := mergeValuesFiles(ch, files, l.lookup, hc.Spec.IgnoreMissingValuesFiles)
		if err != nil {
			return failed(withReason(sourcev1.ReasonValuesFilesError, err))
		}
		observedValuesFiles = found
		ch.Values = values
		// The values are part of what a HelmRelease installs: a change
		// to a values file, or to the list, is a change of content.
		data, err := json.Marshal(values)
		if err != nil {
			return failed(withReason(sourcev1.ReasonValuesFilesError, fmt.Errorf("spec.valuesFiles: %w", err)))
		}
		sum := sha256.Sum256(append([]byte(digest+"\n"), data...))
		digest = "sha256:" + hex.EncodeToString(sum[:])
	}
	revision := l.version
	if kind := hc.Spec.SourceRef.Kind; (kind == "GitRepository" || kind == "Bucket") && hc.Spec.ReconcileStrategy == sourcev1.ReconcileStrategyRevision {
		revision = withBuildMetadata(l.version, commit12(l.sourceRevision))
		// As Flux packages it: Helm then records the new version too.
		ch.Metadata.Version = revision
	}

	r.Charts.put(client.ObjectKeyFromObject(hc), &StoredChart{Chart: ch, Revision: revision, Digest: digest})
	hc.Status.ObservedChartName = ch.Name()
	hc.Status.ObservedValuesFiles = observedValuesFiles
	hc.Status.ObservedSourceArtifactRevision = l.sourceRevision
	message := fmt.Sprintf("%s '%s' chart with version '%s'", verb, ch.Name(), revision)
	if a := hc.Status.Artifact; a == nil || a.Revision != revision || a.Digest != digest {
		if a == nil || a.Revision != revision {
			r.Events.Eventf(hc, nil, corev1.EventTypeNormal, success, "Pull", "%s", message)
		}
		now := time.Now
		if r.Now != nil {
			now = r.Now
		}
		hc.Status.Artifact = &sourcev1.Artifact{Revision: revision, Digest: digest, LastUpdateTime: metav1.NewTime(now())}
	}
	return metav1.Condition{Type: "Ready", Status: metav1.ConditionTrue, Reason: success, Message: message}
}

// fromHelmRepository pulls the highest version of spec.chart in
// spec.version's range.
func (r *HelmChartReconciler) fromHelmRepository(ctx context.Context, hc *sourcev1.HelmChart) (*loaded, error) {
	name := hc.Spec.SourceRef.Name
	repo := &sourcev1.HelmRepository{}
	if err := r.Client.Get(ctx, types.NamespacedName{Namespace: hc.Namespace, Name: name}, repo); err != nil {
		return nil, withReason(sourcev1.ReasonArtifactFailed, fmt.Errorf("spec.sourceRef: HelmRepository %s: %w", name, err))
	}
	opts, err := HelmOptions(ctx, r.Client, repo)
	if err != nil {
		return nil, withReason(sourcev1.ReasonAuthenticationFailed, fmt.Errorf("HelmRepository %s: %w", name, err))
	}
	opts.Chart, opts.Version = hc.Spec.Chart, hc.Spec.Version
	var verified *verify.Result
	if v := hc.Spec.Verify; v != nil {
		opts.Verify = func(ctx context.Context, ref string) error {
			res, err := r.verifyChart(ctx, hc, opts, ref)
			verified = &res
			return err
		}
	}
	c, err := r.Fetcher.Fetch(ctx, opts)
	var refused *verificationError
	switch {
	case errors.As(err, &refused):
		return nil, withReason(sourcev1.ReasonVerificationError, &verificationError{fmt.Errorf("HelmRepository %s: %w", name, err)})
	case errors.Is(err, helm.ErrVerification):
		// A repository whose charts cannot be verified (not OCI).
		return nil, withReason(sourcev1.ReasonVerificationError, &verificationError{fmt.Errorf("spec.verify: HelmRepository %s: %w", name, err)})
	case errors.Is(err, helm.ErrAuth):
		return nil, withReason(sourcev1.ReasonAuthenticationFailed, fmt.Errorf("HelmRepository %s: %w", name, err))
	case err != nil:
		return nil, withReason(sourcev1.ReasonChartPullError, fmt.Errorf("HelmRepository %s: %w", name, err))
	}
	l := &loaded{chart: c.Chart, version: c.Version, digest: c.Digest, verified: verified}
	if repo.Status.Artifact != nil {
		l.sourceRevision = repo.Status.Artifact.Revision
	}
	return l, nil
}

// verifyChart checks the signature of the chart at ref (pinned to its
// manifest digest) as spec.verify asks, reaching the registry as the
// HelmRepository's opts do.
func (r *HelmChartReconciler) verifyChart(ctx context.Context, hc *sourcev1.HelmChart, opts helm.Options, ref string) (verify.Result, error) {
	var nameOpts []name.Option
	if opts.PlainHTTP {
		nameOpts = append(nameOpts, name.Insecure)
	}
	pinned, err := name.NewDigest(ref, nameOpts...)
	if err != nil {
		return verify.Result{}, &verificationError{fmt.Errorf("spec.verify: chart reference %s: %w", ref, err)}
	}
	remote := oci.Remote{Insecure: opts.PlainHTTP, TLS: opts.TLS}
	if opts.Username != "" || opts.Password != "" {
		remote.Auth = &authn.Basic{Username: opts.Username, Password: opts.Password}
	}
	v := hc.Spec.Verify
	return checkSignature(ctx, r.Client, r.Verifiers, hc.Namespace, verifySpec{provider: v.Provider, secretRef: v.SecretRef, identities: v.MatchOIDCIdentity, noTrustedRootField: true}, pinned, remote)
}

// fromArtifact loads the chart at path spec.chart of the artifact of
// the GitRepository or Bucket spec.sourceRef names, from that kind's
// store.
func (r *HelmChartReconciler) fromArtifact(hc *sourcev1.HelmChart, store *Store) (*loaded, error) {
	kind, name := hc.Spec.SourceRef.Kind, hc.Spec.SourceRef.Name
	var a *git.Artifact
	ok := false
	if store != nil {
		a, ok = store.Get(types.NamespacedName{Namespace: hc.Namespace, Name: name})
	}
	if !ok {
		return nil, withReason(sourcev1.ReasonArtifactFailed, fmt.Errorf("spec.sourceRef: %s %s has no artifact yet", kind, name))
	}
	ch, err := helm.FromFiles(a.Files, hc.Spec.Chart)
	if err != nil {
		return nil, withReason(sourcev1.ReasonChartPackageError, fmt.Errorf("%s %s at revision '%s': %w", kind, name, a.Revision, err))
	}
	return &loaded{chart: ch, version: ch.Metadata.Version, digest: filesDigest(ch.Raw), sourceRevision: a.Revision, lookup: artifactLookup(a)}, nil
}

func artifactLookup(a *git.Artifact) func(string) ([]byte, bool) {
	return func(name string) ([]byte, bool) {
		data, ok := a.Files[name]
		return data, ok
	}
}

// filesDigest is sha256:<hex> over the files' names and contents, in name
// order.
func filesDigest(files []*common.File) string {
	sorted := slices.SortedFunc(slices.Values(files), func(a, b *common.File) int { return strings.Compare(a.Name, b.Name) })
	h := sha256.New()
	for _, f := range sorted {
		_, _ = fmt.Fprintf(h, "%s\x00%d\x00", f.Name, len(f.Data))
		_, _ = h.Write(f.Data)
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil))
}

// valuesFiles are the HelmChart's values files in the order they merge:
// the deprecated spec.valuesFile first, then spec.valuesFiles, as Flux
// merges them.
func valuesFiles(hc *sourcev1.HelmChart) []string {
	if hc.Spec.ValuesFile == "" {
		return hc.Spec.ValuesFiles
	}
	return append([]string{hc.Spec.ValuesFile}, hc.Spec.ValuesFiles...)
}

// mergeValuesFiles merges the files, in order, into the values that
// replace the chart's values.yaml, and returns those it merged. As in
// Flux, the chart's own values.yaml counts only when listed, and when no
// listed file is found (with ignoreMissing) the chart has no default
// values. A file found nowhere is an error, or with ignoreMissing is
// skipped. valuesFile says where a path is looked for.
func mergeValuesFiles(ch *chart.Chart, files []string, lookup func(string) ([]byte, bool), ignoreMissing bool) (map[string]any, []string, error) {
	values := map[string]any{}
	var merged []string
	for _, file := range files {
		data, found := valuesFile(ch, strings.TrimPrefix(path.Clean("/"+file), "/"), lookup)
		if !found && ignoreMissing {
			continue
		}
		if !found {
			return nil, nil, fmt.Errorf("spec.valuesFiles: %s: no such file in chart %s (spec.ignoreMissingValuesFiles skips it)", file, ch.Name())
		}
		// As Helm reads values.yaml, and merges as Flux does.
		v, err := loader.LoadValues(bytes.NewReader(data))
		if err != nil {
			return nil, nil, fmt.Errorf("spec.valuesFiles: %s: %w", file, err)
		}
		values = loader.MergeMaps(values, v)
		merged = append(merged, file)
	}
	return values, merged, nil
}

// valuesFile reads a values file. For a chart from a HelmRepository
// (lookup nil) the path is relative to the chart, where values.yaml is
// always found, if empty, as Flux reads it. For a chart from a
// GitRepository or a Bucket it is relative to the artifact's root, as in
// Flux, and then to the chart, for a path the root does not hold.
func valuesFile(ch *chart.Chart, name string, lookup func(string) ([]byte, bool)) ([]byte, bool) {
	if lookup != nil {
		if data, ok := lookup(name); ok {
			return data, true
		}
	}
	for _, f := range ch.Raw {
		if f.Name == name {
			return f.Data, true
		}
	}
	if lookup == nil && name == "values.yaml" {
		return nil, true
	}
	return nil, false
}

// commit12 is the first 12 hex of the commit in a Git artifact revision
// (main@sha1:<hash>, v1.0.0@sha1:<hash> or sha1:<hash>), or of the
// digest in a Bucket's (sha256:<hex>).
func commit12(revision string) string {
	hash := revision[strings.LastIndex(revision, ":")+1:]
	if len(hash) > 12 {
		hash = hash[:12]
	}
	return hash
}

// withBuildMetadata sets version's build metadata, replacing any it has,
// as Flux does.
func withBuildMetadata(version, metadata string) string {
	v, err := semver.NewVersion(version)
	if err != nil {
		return version + "+" + metadata
	}
	next, err := v.SetMetadata(metadata)
	if err != nil {
		return version + "+" + metadata
	}
	return next.String()
}
