package receiver

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	clientevents "k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	notificationv1 "sluice.dev/sluice/api/notification/v1"
	"sluice.dev/sluice/pkg/sync/celexpr"
	"sluice.dev/sluice/pkg/sync/status"
)

// +kubebuilder:rbac:groups=notification.sluice.dev,resources=receivers,verbs=get;list;watch
// +kubebuilder:rbac:groups=notification.sluice.dev,resources=receivers/status,verbs=get;update;patch
// The kinds a Receiver may name (see kinds), patched with the request:
// +kubebuilder:rbac:groups=source.sluice.dev,resources=gitrepositories;helmrepositories;helmcharts;ocirepositories;buckets,verbs=get;list;watch;patch
// +kubebuilder:rbac:groups=sync.sluice.dev,resources=kustomizations;helmreleases,verbs=get;list;watch;patch
// +kubebuilder:rbac:groups=image.sluice.dev,resources=imagerepositories;imagepolicies;imageupdateautomations,verbs=get;list;watch;patch

// secretField indexes Receivers by the Secret holding their token.
const secretField = "spec.secretRef.name"

// Reconciler publishes each Receiver's webhook path in its status.
type Reconciler struct {
	Client client.Client
	Events clientevents.EventRecorder
	// Exprs holds the compiled CEL expressions of the specs, shared with
	// the Handler, which compiles the same ones; nil means one of the
	// Reconciler's own.
	Exprs *celexpr.Cache
	// Shard picks the Receivers whose status this replica writes, those
	// of its shard; nil writes every one's. Every replica reads them all
	// and answers their webhook paths.
	Shard labels.Selector

	once  sync.Once
	exprs *celexpr.Cache
}

// cache is Exprs, or the Reconciler's own cache.
func (r *Reconciler) cache() *celexpr.Cache {
	r.once.Do(func() {
		r.exprs = r.Exprs
		if r.exprs == nil {
			r.exprs = &celexpr.Cache{}
		}
	})
	return r.exprs
}

// SetupWithManager registers the indexes the Handler and the Secret watch
// use, and the controller.
func (r *Reconciler) SetupWithManager(ctx context.Context, mgr ctrl.Manager) error {
	indexer := mgr.GetFieldIndexer()
	if err := indexer.IndexField(ctx, &notificationv1.Receiver{}, webhookPathField, func(o client.Object) []string {
		if p := o.(*notificationv1.Receiver).Status.WebhookPath; p != "" {
			return []string{p}
		}
		return nil
	}); err != nil {
		return fmt.Errorf("index Receivers by webhook path: %w", err)
	}
	if err := indexer.IndexField(ctx, &notificationv1.Receiver{}, secretField, func(o client.Object) []string {
		if ref := o.(*notificationv1.Receiver).Spec.SecretRef; ref != nil {
			return []string{ref.Name}
		}
		return nil
	}); err != nil {
		return fmt.Errorf("index Receivers by Secret: %w", err)
	}
	return ctrl.NewControllerManagedBy(mgr).
		Named("receiver").
		// A reconcile request annotation is answered, as in Flux, and
		// recorded in status.lastHandledReconcileAt.
		For(&notificationv1.Receiver{}, builder.WithPredicates(predicate.Or(predicate.GenerationChangedPredicate{}, predicate.AnnotationChangedPredicate{}))).
		Watches(&corev1.Secret{}, handler.EnqueueRequestsFromMapFunc(r.bySecret)).
		Complete(r)
}

// bySecret maps a Secret to the Receivers whose token it holds.
func (r *Reconciler) bySecret(ctx context.Context, o client.Object) []reconcile.Request {
	var list notificationv1.ReceiverList
	if err := r.Client.List(ctx, &list, client.InNamespace(o.GetNamespace()), client.MatchingFields{secretField: o.GetName()}); err != nil {
		ctrl.LoggerFrom(ctx).Error(err, "list Receivers by Secret")
		return nil
	}
	out := make([]reconcile.Request, 0, len(list.Items))
	for i := range list.Items {
		out = append(out, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&list.Items[i])})
	}
	return out
}

// Reconcile derives the webhook path from the token (none for
// generic-oidc) and writes the status once.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	rcv := &notificationv1.Receiver{}
	if err := r.Client.Get(ctx, req.NamespacedName, rcv); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if r.Shard != nil && !r.Shard.Matches(labels.Set(rcv.Labels)) {
		return ctrl.Result{}, nil
	}
	before := rcv.DeepCopy()
	ready := metav1.Condition{Type: "Ready", ObservedGeneration: rcv.Generation}
	fields := status.Fields{ObservedGeneration: &rcv.Status.ObservedGeneration, LastHandledReconcileAt: &rcv.Status.LastHandledReconcileAt, Conditions: &rcv.Status.Conditions}
	if _, err := compileSpec(r.cache(), rcv); err != nil {
		// Only a change of the spec can fix it: Stalled, and the Warning,
		// which names the expression's field, once for each generation.
		ready.Status, ready.Reason, ready.Message = metav1.ConditionFalse, notificationv1.ReasonInvalidCELExpression, err.Error()
		if c := meta.FindStatusCondition(before.Status.Conditions, "Ready"); c == nil || c.Reason != ready.Reason || c.ObservedGeneration != rcv.Generation {
			r.Events.Eventf(rcv, nil, corev1.EventTypeWarning, notificationv1.ReasonInvalidCELExpression, "Reconcile", "%v", err)
		}
		return ctrl.Result{}, status.Write(ctx, r.Client, "Receiver", rcv, before, fields, ready, true)
	}
	secret, err := SecretData(ctx, r.Client, rcv)
	if err != nil {
		ready.Status, ready.Reason, ready.Message = metav1.ConditionFalse, notificationv1.ReasonTokenNotFound, err.Error()
		rcv.Status.WebhookPath = ""
		if !meta.IsStatusConditionFalse(before.Status.Conditions, "Ready") {
			r.Events.Eventf(rcv, nil, corev1.EventTypeWarning, notificationv1.ReasonTokenNotFound, "Reconcile", "%v", err)
		}
	} else {
		rcv.Status.WebhookPath = WebhookPath(string(secret["token"]), rcv.Name, rcv.Namespace)
		ready.Status, ready.Reason, ready.Message = metav1.ConditionTrue, notificationv1.ReasonSucceeded, "Receiver initialized for path: "+rcv.Status.WebhookPath
	}
	// A missing token is fixed by creating the Secret, which wakes the
	// Receiver: not a stall of its spec.
	if err := status.Write(ctx, r.Client, "Receiver", rcv, before, fields, ready, false); err != nil {
		return ctrl.Result{}, err
	}
	interval := 10 * time.Minute
	if rcv.Spec.Interval != nil {
		interval = rcv.Spec.Interval.Duration
	}
	return ctrl.Result{RequeueAfter: interval}, nil
}

// The limits of the webhook receiver's server, which anyone who can reach
// it may call. A caller has ReadHeaderTimeout to send its headers and
// ReadTimeout to send its whole call: a push's body is at most maxBody,
// which any sender delivers in well under that, so a client that drips
// bytes to hold a connection open is cut off.
const (
	// ReadHeaderTimeout is how long a caller has to send its headers.
	ReadHeaderTimeout = 5 * time.Second
	// ReadTimeout is how long a caller has to send its whole call.
	ReadTimeout = 15 * time.Second
	// writeTimeout bounds the answer, which waits for the annotations'
	// patches to the API server.
	writeTimeout   = 30 * time.Second
	idleTimeout    = 60 * time.Second
	maxHeaderBytes = 64 << 10
)

// Server serves a Handler on an address for the manager's lifetime. It
// runs on every replica, not only the leader: a call only writes an
// annotation, which any replica may do.
type Server struct {
	Addr    string
	Handler http.Handler
}

// NeedLeaderElection is false: every replica answers calls.
func (s *Server) NeedLeaderElection() bool { return false }

// Start listens until ctx is cancelled.
func (s *Server) Start(ctx context.Context) error {
	ln, err := net.Listen("tcp", s.Addr)
	if err != nil {
		return fmt.Errorf("listen for webhook receivers on %s: %w", s.Addr, err)
	}
	srv := &http.Server{
		Handler:           s.Handler,
		ReadHeaderTimeout: ReadHeaderTimeout,
		ReadTimeout:       ReadTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
	}
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdown)
	}()
	if err := srv.Serve(ln); err != nil && err != http.ErrServerClosed {
		return fmt.Errorf("serve webhook receivers: %w", err)
	}
	return nil
}
