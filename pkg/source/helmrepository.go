package source

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	clientevents "k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/predicate"

	sourcev1 "sluice.dev/sluice/api/source/v1"
	"sluice.dev/sluice/pkg/image/registry"
	"sluice.dev/sluice/pkg/source/helm"
	"sluice.dev/sluice/pkg/sync/status"
)

// +kubebuilder:rbac:groups=source.sluice.dev,resources=helmrepositories,verbs=get;list;watch
// +kubebuilder:rbac:groups=source.sluice.dev,resources=helmrepositories/status,verbs=get;update;patch

// ReasonIndexationFailed is the Ready reason of a HelmRepository whose
// index could not be downloaded or parsed, as Flux names it.
const ReasonIndexationFailed = "IndexationFailed"

// defaultHelmTimeout is a HelmRepository's spec.timeout when unset.
const defaultHelmTimeout = 60 * time.Second

// HelmOptions returns what reaching repo takes: its URL and type, the
// username and password of spec.secretRef (for type oci, also its
// kubernetes.io/dockerconfigjson entry for the registry), the CA and
// client certificate of spec.certSecretRef (or, deprecated, of
// spec.secretRef's TLS keys), spec.insecure as PlainHTTP and
// spec.timeout (60s when unset). Chart and Version are the caller's. A
// Secret that is missing or incomplete is an error naming the field that
// refers to it.
func HelmOptions(ctx context.Context, c client.Reader, repo *sourcev1.HelmRepository) (helm.Options, error) {
	opts := helm.Options{URL: repo.Spec.URL, Type: repo.Spec.Type, PlainHTTP: repo.Spec.Insecure, PassCredentials: repo.Spec.PassCredentials, Timeout: defaultHelmTimeout}
	if opts.Type == "" {
		opts.Type = sourcev1.HelmRepositoryTypeDefault
	}
	if repo.Spec.Timeout != nil {
		opts.Timeout = repo.Spec.Timeout.Duration
	}
	secret := func(field string, ref *sourcev1.LocalObjectReference) (map[string][]byte, error) {
		s, err := readSecret(ctx, c, repo.Namespace, ref.Name)
		if err != nil {
			return nil, fmt.Errorf("%s: Secret %s: %w", field, ref.Name, err)
		}
		return s.Data, nil
	}
	if ref := repo.Spec.SecretRef; ref != nil {
		data, err := secret("spec.secretRef", ref)
		if err != nil {
			return opts, err
		}
		if config, ok := data[corev1.DockerConfigJsonKey]; ok && opts.Type == sourcev1.HelmRepositoryTypeOCI {
			if opts.Username, opts.Password, err = dockerConfigLogin(config, repo.Spec.URL); err != nil {
				return opts, fmt.Errorf("spec.secretRef: Secret %s: %w", ref.Name, err)
			}
		} else {
			opts.Username, opts.Password = string(data["username"]), string(data["password"])
		}
		// Flux's rule: both or neither.
		if (opts.Username == "") != (opts.Password == "") {
			return opts, fmt.Errorf("spec.secretRef: Secret %s: needs both username and password", ref.Name)
		}
		// Deprecated in Flux, still read: TLS in the auth Secret, under
		// the legacy keys or the standard ones, when certSecretRef does
		// not give it.
		if tlsData := legacyTLS(data); tlsData != nil && repo.Spec.CertSecretRef == nil {
			cfg, err := tlsConfig(tlsData)
			if err != nil {
				return opts, fmt.Errorf("spec.secretRef: Secret %s: %w", ref.Name, err)
			}
			opts.TLS = cfg
		}
	}
	if ref := repo.Spec.CertSecretRef; ref != nil {
		data, err := secret("spec.certSecretRef", ref)
		if err != nil {
			return opts, err
		}
		cfg, err := tlsConfig(data)
		if err != nil {
			return opts, fmt.Errorf("spec.certSecretRef: Secret %s: %w", ref.Name, err)
		}
		opts.TLS = cfg
	}
	return opts, nil
}

// legacyTLS is the TLS material of a spec.secretRef Secret, under
// certSecretRef's keys, read from Flux's deprecated certFile, keyFile and
// caFile, or from tls.crt, tls.key and ca.crt; nil when it has none.
func legacyTLS(data map[string][]byte) map[string][]byte {
	out := map[string][]byte{}
	for legacy, key := range map[string]string{"certFile": "tls.crt", "keyFile": "tls.key", "caFile": "ca.crt"} {
		if v := data[key]; len(v) > 0 {
			out[key] = v
		} else if v := data[legacy]; len(v) > 0 {
			out[key] = v
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// dockerConfigLogin is the username and password a
// kubernetes.io/dockerconfigjson Secret holds for the registry of an
// oci:// URL, matched as Docker and Flux match its keys.
func dockerConfigLogin(config []byte, ociURL string) (string, string, error) {
	host, _, _ := strings.Cut(strings.TrimPrefix(ociURL, "oci://"), "/")
	reg, err := name.NewRegistry(host, name.WeakValidation)
	if err != nil {
		return "", "", fmt.Errorf("registry of %s: %w", ociURL, err)
	}
	authenticator, err := registry.Authenticator(config, reg)
	if err != nil {
		return "", "", err
	}
	login, err := authenticator.Authorization()
	if err != nil {
		return "", "", err
	}
	if login.Username == "" || login.Password == "" {
		return "", "", fmt.Errorf("the %s entry for %s has no username and password (tokens are not supported for Helm charts)", corev1.DockerConfigJsonKey, host)
	}
	return login.Username, login.Password, nil
}

// tlsConfig reads ca.crt, tls.crt and tls.key: a CA added to the system
// roots, a client certificate, or both.
func tlsConfig(data map[string][]byte) (*tls.Config, error) {
	ca, cert, key := data["ca.crt"], data["tls.crt"], data["tls.key"]
	if len(ca) == 0 && len(cert) == 0 && len(key) == 0 {
		return nil, errors.New("has none of ca.crt, tls.crt and tls.key")
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if len(ca) > 0 {
		pool, err := x509.SystemCertPool()
		if err != nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(ca) {
			return nil, errors.New("ca.crt holds no PEM certificate")
		}
		cfg.RootCAs = pool
	}
	if len(cert) > 0 || len(key) > 0 {
		if len(cert) == 0 || len(key) == 0 {
			return nil, errors.New("needs both tls.crt and tls.key for a client certificate")
		}
		pair, err := tls.X509KeyPair(cert, key)
		if err != nil {
			return nil, fmt.Errorf("tls.crt and tls.key: %w", err)
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	return cfg, nil
}

// HelmRepositoryReconciler checks HelmRepositories. A classic repository
// is checked by downloading its index, whose digest becomes the
// artifact's revision; an OCI registry has no index and is Ready as it
// stands, as in Flux: a HelmChart finds out whether its chart can be
// pulled.
type HelmRepositoryReconciler struct {
	Client  client.Client
	Events  clientevents.EventRecorder
	Fetcher *helm.Fetcher
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// SetupWithManager registers the controller: a HelmRepository is checked
// when its spec changes and then at its interval.
func (r *HelmRepositoryReconciler) SetupWithManager(_ context.Context, mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).
		Named("helmrepository").
		For(&sourcev1.HelmRepository{}, builder.WithPredicates(predicate.Or(predicate.GenerationChangedPredicate{}, predicate.AnnotationChangedPredicate{}))).
		Complete(r)
}

// Reconcile checks one HelmRepository and writes its status once.
func (r *HelmRepositoryReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	repo := &sourcev1.HelmRepository{}
	return status.Loop{
		Client: r.Client, Kind: "HelmRepository", Object: repo,
		Fields: status.Fields{ObservedGeneration: &repo.Status.ObservedGeneration, LastHandledReconcileAt: &repo.Status.LastHandledReconcileAt, Conditions: &repo.Status.Conditions},
		Gone:   nil,
		Pass:   func(ctx context.Context) (metav1.Condition, bool) { return r.check(ctx, repo), false },
		Next: func(metav1.Condition) time.Duration {
			// An OCI registry has no index to check again.
			if repo.Spec.Suspend || repo.Spec.Type == sourcev1.HelmRepositoryTypeOCI {
				return 0
			}
			if repo.Spec.Interval.Duration == 0 {
				return sourcev1.DefaultHelmRepositoryInterval
			}
			return repo.Spec.Interval.Duration
		},
	}.Reconcile(ctx, req.NamespacedName)
}

// check runs one check and returns the Ready condition it earns. A new
// index is recorded in status and announced.
func (r *HelmRepositoryReconciler) check(ctx context.Context, repo *sourcev1.HelmRepository) metav1.Condition {
	if repo.Spec.Suspend {
		return metav1.Condition{Type: "Ready", Status: metav1.ConditionTrue, Reason: sourcev1.ReasonSuspended, Message: "Suspended: no check until spec.suspend is unset"}
	}
	if repo.Spec.Type == sourcev1.HelmRepositoryTypeOCI {
		repo.Status.Artifact = nil
		return metav1.Condition{Type: "Ready", Status: metav1.ConditionTrue, Reason: sourcev1.ReasonSucceeded, Message: "Helm repository is ready"}
	}
	failed := func(reason string, err error) metav1.Condition {
		r.Events.Eventf(repo, nil, corev1.EventTypeWarning, reason, "Fetch", "%v", err)
		return metav1.Condition{Type: "Ready", Status: metav1.ConditionFalse, Reason: reason, Message: err.Error()}
	}
	opts, err := HelmOptions(ctx, r.Client, repo)
	if err != nil {
		return failed(sourcev1.ReasonAuthenticationFailed, err)
	}
	index, err := r.Fetcher.Index(ctx, opts)
	switch {
	case errors.Is(err, helm.ErrAuth) && repo.Spec.SecretRef == nil:
		return failed(sourcev1.ReasonAuthenticationFailed, fmt.Errorf("the repository asks for credentials and spec.secretRef is not set: %w", err))
	case errors.Is(err, helm.ErrAuth):
		return failed(sourcev1.ReasonAuthenticationFailed, fmt.Errorf("the repository refused the credentials of spec.secretRef (Secret %s): %w", repo.Spec.SecretRef.Name, err))
	case err != nil:
		return failed(ReasonIndexationFailed, err)
	}
	message := "stored index with revision '" + index.Digest + "' (" + plural(index.Charts, "chart") + ")"
	if repo.Status.Artifact == nil || repo.Status.Artifact.Digest != index.Digest {
		now := time.Now
		if r.Now != nil {
			now = r.Now
		}
		r.Events.Eventf(repo, nil, corev1.EventTypeNormal, "NewArtifact", "Fetch", "%s", message)
		repo.Status.Artifact = &sourcev1.Artifact{Revision: index.Digest, Digest: index.Digest, LastUpdateTime: metav1.NewTime(now())}
	}
	return metav1.Condition{Type: "Ready", Status: metav1.ConditionTrue, Reason: sourcev1.ReasonSucceeded, Message: message}
}

// plural says "1 chart" or "3 charts".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return strconv.Itoa(n) + " " + noun + "s"
}
