// Package kubeconfig reaches the remote cluster of a Kustomization's or a
// HelmRelease's spec.kubeConfig, as Flux does: the kubeconfig is read from
// a Secret in the object's namespace, its current context is used, and
// spec.serviceAccountName is impersonated on the remote cluster. Clients
// are made once per kubeconfig and account and kept until the Secret's
// kubeconfig changes, so a reconcile costs no discovery, and a rotated
// Secret gets fresh clients at the next reconcile.
//
// What the Secret holds never reaches an error, a log line or a status:
// the errors name the field, the Secret and the key only.
package kubeconfig

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"sync"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"

	syncv1 "sluice.dev/sluice/api/sync/v1"
)

// +kubebuilder:rbac:groups="",resources=secrets,verbs=get;list;watch

// Field is the spec field every error names.
const Field = "spec.kubeConfig.secretRef"

// DefaultKeys are the Secret keys tried, in order, when secretRef.key is
// empty: Flux's.
var DefaultKeys = []string{"value", "value.yaml"}

// Error is a spec.kubeConfig that gives no client: a missing Secret or
// key, or a kubeconfig that cannot be used.
type Error struct {
	msg string
	err error
}

func (e *Error) Error() string {
	if e.err != nil {
		return e.msg + ": " + e.err.Error()
	}
	return e.msg
}

func (e *Error) Unwrap() error { return e.err }

// IsError reports whether err is, or wraps, an Error.
func IsError(err error) bool {
	var e *Error
	return errors.As(err, &e)
}

// Read returns the kubeconfig that ref names, in namespace: secretRef.key,
// or else the first of DefaultKeys the Secret holds.
func Read(ctx context.Context, r client.Reader, namespace string, ref *syncv1.KubeConfigReference) ([]byte, error) {
	if ref == nil || ref.SecretRef == nil {
		return nil, &Error{msg: Field + ": no Secret named"}
	}
	key := types.NamespacedName{Namespace: namespace, Name: ref.SecretRef.Name}
	secret := &corev1.Secret{}
	if err := r.Get(ctx, key, secret); err != nil {
		return nil, &Error{msg: fmt.Sprintf("%s: read Secret %s", Field, key), err: err}
	}
	return Select(secret, ref.SecretRef.Key)
}

// Select picks the kubeconfig out of secret: the entry key, or else the
// first of DefaultKeys it has.
func Select(secret *corev1.Secret, key string) ([]byte, error) {
	name := secret.Namespace + "/" + secret.Name
	if key != "" {
		if data := secret.Data[key]; len(data) > 0 {
			return data, nil
		}
		return nil, &Error{msg: fmt.Sprintf("%s: Secret %s has no %q key with a kubeconfig", Field, name, key)}
	}
	for _, k := range DefaultKeys {
		if data := secret.Data[k]; len(data) > 0 {
			return data, nil
		}
	}
	return nil, &Error{msg: fmt.Sprintf("%s: Secret %s has no %q or %q key with a kubeconfig", Field, name, DefaultKeys[0], DefaultKeys[1])}
}

// Parse makes the rest.Config of the kubeconfig's current context. Only
// what the kubeconfig holds itself is kept, as Flux keeps it: the server,
// TLS server name, certificate authority, client certificate and key,
// token, and basic auth. Files it names on the operator's machine, exec
// and auth-provider plugins, proxies, impersonation and
// insecure-skip-tls-verify are dropped, so that a tenant's kubeconfig
// can neither read the operator's files nor run programs.
func Parse(data []byte) (*rest.Config, error) {
	// clientcmd's parse errors may quote what they could not read: they
	// are not passed on.
	cfg, err := clientcmd.Load(data)
	if err != nil {
		return nil, &Error{msg: Field + ": the Secret's entry is not a kubeconfig"}
	}
	ctxName := cfg.CurrentContext
	if ctxName == "" {
		return nil, &Error{msg: Field + ": the kubeconfig has no current-context"}
	}
	kctx := cfg.Contexts[ctxName]
	if kctx == nil {
		return nil, &Error{msg: fmt.Sprintf("%s: the kubeconfig's current-context %q is not among its contexts", Field, ctxName)}
	}
	cluster := cfg.Clusters[kctx.Cluster]
	if cluster == nil || cluster.Server == "" {
		return nil, &Error{msg: fmt.Sprintf("%s: the kubeconfig's cluster %q of context %q has no server", Field, kctx.Cluster, ctxName)}
	}
	out := &rest.Config{
		Host:               cluster.Server,
		DisableCompression: cluster.DisableCompression,
		TLSClientConfig: rest.TLSClientConfig{
			ServerName: cluster.TLSServerName,
			CAData:     cluster.CertificateAuthorityData,
		},
	}
	if user := cfg.AuthInfos[kctx.AuthInfo]; user != nil {
		out.CertData, out.KeyData = user.ClientCertificateData, user.ClientKeyData
		out.BearerToken = user.Token
		out.Username, out.Password = user.Username, user.Password
	}
	return out, nil
}

// Digest identifies a kubeconfig without holding it.
func Digest(data []byte) [sha256.Size]byte { return sha256.Sum256(data) }

// Remote is one remote cluster, as one account.
type Remote struct {
	// Config is the account's: the kubeconfig's user, impersonating a
	// ServiceAccount when one is named.
	Config *rest.Config
	// Client acts as the account, live (no cache).
	Client client.Client
	// Owner reads as the kubeconfig's own user, not impersonating: what
	// the operator reads for itself on that cluster, such as the Canaries
	// of the hand-off.
	Owner client.Client
	// Mapper and Discovery are shared by every account of one kubeconfig,
	// and learn new kinds as they are asked for them.
	Mapper    meta.RESTMapper
	Discovery discovery.CachedDiscoveryInterface

	mu   sync.Mutex
	memo map[string]any
}

// Memo returns what build made for key on this Remote, building it once:
// what a controller derives from a Remote lives as long as it does, and
// goes with it when the kubeconfig changes.
func (r *Remote) Memo(key string, build func() (any, error)) (any, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if v, ok := r.memo[key]; ok {
		return v, nil
	}
	v, err := build()
	if err != nil {
		return nil, err
	}
	if r.memo == nil {
		r.memo = map[string]any{}
	}
	r.memo[key] = v
	return v, nil
}

// Memo is Remote.Memo for a value of type T, so that a controller keeps
// its own typed value per Remote without asserting it.
func Memo[T any](r *Remote, key string, build func() (T, error)) (T, error) {
	var zero T
	v, err := r.Memo(key, func() (any, error) { return build() })
	if err != nil {
		return zero, err
	}
	t, ok := v.(T)
	if !ok {
		return zero, fmt.Errorf("%s: what is kept as %q is a %T, not a %T", Field, key, v, zero)
	}
	return t, nil
}

// Clusters makes and keeps the Remotes of the kubeconfigs that objects
// name.
type Clusters struct {
	// Reader reads the Secrets, in this cluster.
	Reader client.Reader
	// Scheme of the clients.
	Scheme *runtime.Scheme
	// QPS and Burst of each remote client; 0 means 50 and 100.
	QPS   float32
	Burst int

	mu sync.Mutex
	// bySecret holds, for each Secret, the clients of the kubeconfig it
	// held last: a rotated Secret replaces them all.
	bySecret map[secretKey]*cluster
}

// secretKey is a Secret and the key of its kubeconfig.
type secretKey struct {
	types.NamespacedName
	key string
}

// cluster is what one kubeconfig gives: a mapper and discovery, and a
// Remote for each account.
type cluster struct {
	digest    [sha256.Size]byte
	config    *rest.Config
	mapper    meta.RESTMapper
	discovery discovery.CachedDiscoveryInterface
	owner     client.Client
	accounts  map[string]*Remote
}

// For returns the Remote of the kubeconfig ref names, in namespace,
// acting as the ServiceAccount account of namespace on the remote
// cluster, or as the kubeconfig's own user when account is empty.
func (c *Clusters) For(ctx context.Context, namespace string, ref *syncv1.KubeConfigReference, account string) (*Remote, error) {
	data, err := Read(ctx, c.Reader, namespace, ref)
	if err != nil {
		return nil, err
	}
	sk := secretKey{NamespacedName: types.NamespacedName{Namespace: namespace, Name: ref.SecretRef.Name}, key: ref.SecretRef.Key}
	digest := Digest(data)
	c.mu.Lock()
	defer c.mu.Unlock()
	cl := c.bySecret[sk]
	if cl == nil || !bytes.Equal(cl.digest[:], digest[:]) {
		if cl, err = c.newCluster(data, digest); err != nil {
			return nil, err
		}
		if c.bySecret == nil {
			c.bySecret = map[secretKey]*cluster{}
		}
		c.bySecret[sk] = cl
	}
	if r, ok := cl.accounts[account]; ok {
		return r, nil
	}
	r := &Remote{Config: cl.config, Client: cl.owner, Owner: cl.owner, Mapper: cl.mapper, Discovery: cl.discovery}
	if account != "" {
		cfg := rest.CopyConfig(cl.config)
		cfg.Impersonate = rest.ImpersonationConfig{UserName: "system:serviceaccount:" + namespace + ":" + account}
		as, err := client.New(cfg, client.Options{Scheme: c.Scheme, Mapper: cl.mapper})
		if err != nil {
			return nil, &Error{msg: fmt.Sprintf("%s: client of the remote cluster impersonating ServiceAccount %s/%s", Field, namespace, account), err: err}
		}
		r.Config, r.Client = cfg, as
	}
	cl.accounts[account] = r
	return r, nil
}

// newCluster parses a kubeconfig and makes the clients every account of
// it shares. Nothing is sent to the remote cluster yet: the mapper and
// discovery are lazy.
func (c *Clusters) newCluster(data []byte, digest [sha256.Size]byte) (*cluster, error) {
	cfg, err := Parse(data)
	if err != nil {
		return nil, err
	}
	cfg.QPS, cfg.Burst = c.QPS, c.Burst
	if cfg.QPS == 0 {
		cfg.QPS, cfg.Burst = 50, 100
	}
	cfg.UserAgent = "sluice"
	hc, err := rest.HTTPClientFor(cfg)
	if err != nil {
		return nil, &Error{msg: Field + ": the kubeconfig's TLS settings cannot be used", err: err}
	}
	mapper, err := apiutil.NewDynamicRESTMapper(cfg, hc)
	if err != nil {
		return nil, &Error{msg: Field + ": a REST mapper for the remote cluster", err: err}
	}
	dc, err := discovery.NewDiscoveryClientForConfigAndClient(cfg, hc)
	if err != nil {
		return nil, &Error{msg: Field + ": a discovery client for the remote cluster", err: err}
	}
	owner, err := client.New(cfg, client.Options{Scheme: c.Scheme, Mapper: mapper, HTTPClient: hc})
	if err != nil {
		return nil, &Error{msg: Field + ": a client of the remote cluster", err: err}
	}
	return &cluster{
		digest: digest, config: cfg, mapper: mapper,
		discovery: memory.NewMemCacheClient(dc), owner: owner, accounts: map[string]*Remote{},
	}, nil
}

// Index is the field index of the Secrets that objects' spec.kubeConfig
// name, so that a Secret's change wakes them.
const Index = ".spec.kubeConfig.secretRef"

// Secrets are the Secrets ref names, in namespace: the values of Index.
func Secrets(namespace string, ref *syncv1.KubeConfigReference) []types.NamespacedName {
	if ref == nil || ref.SecretRef == nil {
		return nil
	}
	return []types.NamespacedName{{Namespace: namespace, Name: ref.SecretRef.Name}}
}
