package operator

import (
	"context"
	"fmt"
	"os"
	"strings"

	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	coordinationv1client "k8s.io/client-go/kubernetes/typed/coordination/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"

	"sluice.dev/sluice/pkg/sharding"
)

// shardCache limits the informers of sharding.Kinds to the shard's
// objects, so that a replica holds and reconciles only its own. What they
// make and read (Deployments, Services, routes, Secrets) stays whole.
func shardCache(opts *cache.Options, scheme *runtime.Scheme, shard sharding.Selector) error {
	if shard.Empty() {
		return nil
	}
	if opts.ByObject == nil {
		opts.ByObject = map[client.Object]cache.ByObject{}
	}
	for _, gvk := range sharding.Kinds() {
		o, err := scheme.New(gvk)
		if err != nil {
			return fmt.Errorf("shard the cache of %s: %w", gvk.Kind, err)
		}
		obj, ok := o.(client.Object)
		if !ok {
			return fmt.Errorf("shard the cache of %s: %T is not an object", gvk.Kind, o)
		}
		opts.ByObject[obj] = cache.ByObject{Label: shard.Labels()}
	}
	return nil
}

// leaseNamespace is the namespace of the lease as the manager finds it:
// the option, or the pod's own namespace in a cluster; "" when neither
// is known, and the manager reports that itself.
func leaseNamespace(opts Options) string {
	if opts.LeaderElectionNamespace != "" {
		return opts.LeaderElectionNamespace
	}
	data, err := os.ReadFile("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(data))
}

// recordShard writes on the replica's lease, before the election starts,
// the selector and the namespace of the objects it owns, and creates the
// lease if there is none yet: sluicectl check reads them there to find
// the objects no running replica owns. client-go's lease lock keeps the
// annotations when it renews the lease. A lease that records another
// selector is refused: the two sets of replicas would elect one leader
// between them.
func recordShard(ctx context.Context, cfg *rest.Config, ns, name string, shard sharding.Selector, watchNamespace string) error {
	c, err := coordinationv1client.NewForConfig(cfg)
	if err != nil {
		return fmt.Errorf("create a Lease client: %w", err)
	}
	leases := c.Leases(ns)
	retriable := func(err error) bool { return apierrors.IsConflict(err) || apierrors.IsAlreadyExists(err) }
	err = retry.OnError(retry.DefaultRetry, retriable, func() error {
		lease, err := leases.Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			lease = &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}}
			setShardAnnotations(lease, shard, watchNamespace)
			_, err = leases.Create(ctx, lease, metav1.CreateOptions{})
			return err
		}
		if err != nil {
			return err
		}
		if got, ok := lease.Annotations[sharding.SelectorAnnotation]; ok && got != shard.String() {
			return fmt.Errorf("it records the selector %q, not this replica's %q: give one of them another --leader-election-id", got, shard.String())
		}
		if !setShardAnnotations(lease, shard, watchNamespace) {
			return nil
		}
		_, err = leases.Update(ctx, lease, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		return fmt.Errorf("record the shard on Lease %s/%s: %w", ns, name, err)
	}
	return nil
}

// setShardAnnotations sets the annotations recordShard writes and
// reports whether they changed.
func setShardAnnotations(lease *coordinationv1.Lease, shard sharding.Selector, watchNamespace string) bool {
	a := lease.Annotations
	if a == nil {
		a = map[string]string{}
	}
	sel, hasSel := a[sharding.SelectorAnnotation]
	ns, hasNS := a[sharding.NamespaceAnnotation]
	if hasSel && sel == shard.String() && ns == watchNamespace && hasNS == (watchNamespace != "") {
		return false
	}
	a[sharding.SelectorAnnotation] = shard.String()
	delete(a, sharding.NamespaceAnnotation)
	if watchNamespace != "" {
		a[sharding.NamespaceAnnotation] = watchNamespace
	}
	lease.Annotations = a
	return true
}

// shardReader reads the kinds a shard caches only its own objects of
// from the API server, and the rest from the cache. It serves readers
// that look across shards: a health check may judge a HelmRelease of
// another shard, and a Receiver, which every replica answers, may name
// objects of any shard.
type shardReader struct {
	client.Client
	live  client.Reader
	kinds map[schema.GroupKind]bool
}

// readAcrossShards is c, or for a sharded replica a client that reads
// the sharded kinds live.
func readAcrossShards(c client.Client, live client.Reader, shard sharding.Selector) client.Client {
	if shard.Empty() {
		return c
	}
	kinds := map[schema.GroupKind]bool{}
	for _, gvk := range sharding.Kinds() {
		kinds[gvk.GroupKind()] = true
	}
	return &shardReader{Client: c, live: live, kinds: kinds}
}

// Get reads obj live when it is of a sharded kind.
func (r *shardReader) Get(ctx context.Context, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
	if r.sharded(obj) {
		return r.live.Get(ctx, key, obj, opts...)
	}
	return r.Client.Get(ctx, key, obj, opts...)
}

// List lists live when list holds a sharded kind.
func (r *shardReader) List(ctx context.Context, list client.ObjectList, opts ...client.ListOption) error {
	if r.sharded(list) {
		return r.live.List(ctx, list, opts...)
	}
	return r.Client.List(ctx, list, opts...)
}

func (r *shardReader) sharded(o runtime.Object) bool {
	gvk, err := apiutil.GVKForObject(o, r.Scheme())
	if err != nil {
		return false
	}
	gvk.Kind = strings.TrimSuffix(gvk.Kind, "List")
	return r.kinds[gvk.GroupKind()]
}
