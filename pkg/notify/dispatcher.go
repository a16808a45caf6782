// Package notify sends notifications: the alerts of Canaries to their
// AlertProviders (Flagger's API), and the Events of every Sluice object,
// Canaries included, that an Alert selects to its Provider (Flux's API).
// Both go through the same services, one file each: chats (Slack, Teams,
// Discord, Rocket.Chat, Google Chat, Telegram), generic webhooks,
// Alertmanager, GitHub and GitLab commit statuses and Grafana
// annotations. Notify and Observe resolve, render and queue at once; the
// workers run by Start post and retry a service that is down, so that a
// slow or broken service never holds up a rollout or a sync.
package notify

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"

	notificationv1beta3 "sluice.dev/sluice/api/notification/v1beta3"
	sluicev1beta1 "sluice.dev/sluice/api/v1beta1"
	"sluice.dev/sluice/pkg/alert"
	"sluice.dev/sluice/pkg/egress"
)

// Route sends the alerts of at least Severity to an AlertProvider.
type Route struct {
	// Provider names the AlertProvider; an empty namespace is the
	// Canary's.
	Provider types.NamespacedName
	// Severity is the lowest severity sent; empty is info.
	Severity sluicev1beta1.AlertSeverity
}

// ParseRoute reads an AlertProvider reference written as namespace/name
// (or name, for an AlertProvider in each Canary's namespace) and a
// severity, as given on the command line.
func ParseRoute(provider string, severity sluicev1beta1.AlertSeverity) (Route, error) {
	if _, ok := severityRank(severity); !ok {
		return Route{}, fmt.Errorf("alert severity %q is not one of info, warn, error", severity)
	}
	ns, name, found := strings.Cut(provider, "/")
	if !found {
		ns, name = "", provider
	}
	if name == "" || strings.Contains(name, "/") || (found && ns == "") {
		return Route{}, fmt.Errorf("alert provider %q is not namespace/name or name", provider)
	}
	return Route{Provider: types.NamespacedName{Namespace: ns, Name: name}, Severity: severity}, nil
}

// Backoff is how a post that failed is retried.
type Backoff struct {
	// Initial is the wait before the first retry; each retry doubles it.
	Initial time.Duration
	// Max caps the wait, a service's Retry-After included.
	Max time.Duration
	// Attempts counts the posts of one alert, the first included.
	Attempts int
}

// Options configure a Dispatcher.
type Options struct {
	// Reader reads AlertProviders and their Secrets: the manager's cache
	// in the operator.
	Reader client.Reader
	// Defaults receive the alerts of Canaries that list no
	// spec.analysis.alerts, as Flagger's global notifier does.
	Defaults []Route
	// ClusterName, when set, is shown in every alert.
	ClusterName string
	// Transport returns the round tripper for one proxy (nil: none). The
	// default clones http.DefaultTransport, which uses the environment's
	// proxy when spec.proxy is empty.
	Transport func(proxy *url.URL) http.RoundTripper
	// Timeout bounds one post; default 10s.
	Timeout time.Duration
	// Backoff retries failed posts; zero fields default to 1s doubling to
	// 1m, 5 attempts.
	Backoff Backoff
	// QueueSize is the number of alerts waiting to be posted before new
	// ones are dropped; default 1024.
	QueueSize int
	// Workers post alerts at once; default 2.
	Workers int
	// RateLimit is the window in which an Alert sends identical events
	// once; default 5m, as Flux's --rate-limit-interval.
	RateLimit time.Duration
	// EventQueueSize is the number of Events waiting to be matched to
	// Alerts before new ones are dropped; default 1024.
	EventQueueSize int
	// Scheme names the kinds of the objects whose Events are observed.
	Scheme *runtime.Scheme
	// Clock returns the time; default time.Now.
	Clock func() time.Time
	// Log receives one line for each alert dropped.
	Log logr.Logger
	// Egress keeps posts off the operator's own listeners, also through
	// a redirect; nil keeps them off nothing.
	Egress *egress.Guard
}

// Dispatcher sends Canary alerts. It implements canary.Notifier, and Start
// makes it a controller-runtime Runnable.
type Dispatcher struct {
	opts    Options
	queue   chan delivery
	started atomic.Bool
	// delivered names a Provider or an AlertProvider whose last delivery
	// ended, by kind, for its Ready condition.
	delivered map[string]chan event.GenericEvent
	// events are Kubernetes Events waiting to be matched to Alerts.
	events chan observed

	mu       sync.Mutex
	clients  map[string]*http.Client
	outcomes map[providerKey]outcome
	// sent is when an Alert last sent each event, by its key, for the
	// rate limit; swept is when old keys were last dropped.
	sent  map[string]time.Time
	swept time.Time
	// regexps are the compiled patterns of Alerts' lists.
	regexps map[string]*regexp.Regexp
	// dropped counts Events and alerts dropped on a full queue.
	dropped atomic.Int64
}

// outcome is how the last delivery to an AlertProvider ended, and what
// the provider looked like when it was made.
type outcome struct {
	// err is nil when the alert was delivered.
	err error
	// generation and secretVersion are the provider's and its Secret's
	// when the alert was prepared: a change to either may have fixed a
	// failure.
	generation    int64
	secretVersion string
}

// NewDispatcher checks the options and fills in their defaults.
func NewDispatcher(opts Options) (*Dispatcher, error) {
	if opts.Reader == nil {
		return nil, errors.New("notify: a Reader is required")
	}
	for _, r := range opts.Defaults {
		if _, ok := severityRank(r.Severity); !ok || r.Provider.Name == "" {
			return nil, fmt.Errorf("notify: default route %v: needs a provider name and a severity of info, warn or error", r)
		}
	}
	if opts.Transport == nil {
		opts.Transport = defaultTransport
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 10 * time.Second
	}
	if opts.Backoff.Initial <= 0 {
		opts.Backoff.Initial = time.Second
	}
	if opts.Backoff.Max <= 0 {
		opts.Backoff.Max = time.Minute
	}
	if opts.Backoff.Attempts <= 0 {
		opts.Backoff.Attempts = 5
	}
	if opts.QueueSize <= 0 {
		opts.QueueSize = 1024
	}
	if opts.Workers <= 0 {
		opts.Workers = 2
	}
	if opts.RateLimit <= 0 {
		opts.RateLimit = 5 * time.Minute
	}
	if opts.EventQueueSize <= 0 {
		opts.EventQueueSize = 1024
	}
	if opts.Clock == nil {
		opts.Clock = time.Now
	}
	return &Dispatcher{
		opts: opts, queue: make(chan delivery, opts.QueueSize), events: make(chan observed, opts.EventQueueSize),
		delivered: map[string]chan event.GenericEvent{
			kindAlertProvider: make(chan event.GenericEvent, opts.QueueSize),
			kindProvider:      make(chan event.GenericEvent, opts.QueueSize),
		},
		clients: map[string]*http.Client{}, outcomes: map[providerKey]outcome{}, sent: map[string]time.Time{}, regexps: map[string]*regexp.Regexp{},
	}, nil
}

func defaultTransport(proxy *url.URL) http.RoundTripper {
	t := http.DefaultTransport.(*http.Transport).Clone()
	if proxy != nil {
		t.Proxy = http.ProxyURL(proxy)
	}
	return t
}

// Notify queues the alert for each AlertProvider of the Canary whose
// severity it reaches. It does no network I/O beyond reading through the
// Reader; it reports AlertProviders it cannot resolve and queues the
// others.
func (d *Dispatcher) Notify(ctx context.Context, c *sluicev1beta1.Canary, a alert.Canary) error {
	rank, ok := severityRank(a.Severity)
	if !ok {
		return fmt.Errorf("alert %s of canary %s/%s: unknown severity %q", a.Reason, c.Namespace, c.Name, a.Severity)
	}
	var errs []error
	for _, r := range d.routes(c) {
		if lowest, _ := severityRank(r.Severity); rank < lowest {
			continue
		}
		var dl delivery
		err := r.err
		if err == nil {
			dl, err = d.prepare(ctx, c, r.Route, a)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", r.field, err))
			continue
		}
		d.enqueue(dl)
	}
	return errors.Join(errs...)
}

// fieldRoute is a Route with the field it came from, for errors.
type fieldRoute struct {
	Route
	field string
	// err says why the route cannot be used.
	err error
}

// routes are the Canary's own alerts or, when it has none, the defaults.
func (d *Dispatcher) routes(c *sluicev1beta1.Canary) []fieldRoute {
	var out []fieldRoute
	if c.Spec.Analysis != nil && len(c.Spec.Analysis.Alerts) > 0 {
		for i, a := range c.Spec.Analysis.Alerts {
			r := Route{Provider: types.NamespacedName{Namespace: a.ProviderRef.Namespace, Name: a.ProviderRef.Name}, Severity: a.Severity}
			fr := fieldRoute{Route: r, field: fmt.Sprintf("spec.analysis.alerts[%d].providerRef", i)}
			if k := a.ProviderRef.Kind; k != "" && k != "AlertProvider" {
				fr.err = fmt.Errorf("kind %q is not AlertProvider", k)
			}
			out = append(out, fr)
		}
	} else {
		for i, r := range d.opts.Defaults {
			out = append(out, fieldRoute{Route: r, field: fmt.Sprintf("default alert provider %d", i)})
		}
	}
	for i := range out {
		if out[i].Provider.Namespace == "" {
			out[i].Provider.Namespace = c.Namespace
		}
	}
	return out
}

// prepare reads the AlertProvider of a route and builds the post.
func (d *Dispatcher) prepare(ctx context.Context, c *sluicev1beta1.Canary, r Route, a alert.Canary) (delivery, error) {
	var p sluicev1beta1.AlertProvider
	if err := d.opts.Reader.Get(ctx, r.Provider, &p); err != nil {
		return delivery{}, fmt.Errorf("read AlertProvider %s: %w", r.Provider, err)
	}
	spec := fromAlertProvider(&p)
	res, err := d.resolve(ctx, spec)
	if err != nil {
		return delivery{}, fmt.Errorf("AlertProvider %s: %w", r.Provider, err)
	}
	dl, err := newDelivery(spec, res, canaryNote(c, a, d.opts.ClusterName, spec, d.opts.Clock()))
	if err != nil {
		return delivery{}, fmt.Errorf("AlertProvider %s: %w", r.Provider, err)
	}
	return dl, nil
}

// newDelivery builds the post of a note to a resolved provider.
func newDelivery(spec providerSpec, res resolved, n note) (delivery, error) {
	svc, err := lookup(spec.typ)
	if err != nil {
		return delivery{}, err
	}
	p, err := svc.build(res.target, n)
	if err != nil {
		return delivery{}, err
	}
	obj := n.event.InvolvedObject
	return delivery{
		post:          p,
		client:        res.client,
		timeout:       res.timeout,
		provider:      spec.key,
		typ:           spec.typ,
		objectKind:    obj.Kind,
		object:        obj.Namespace + "/" + obj.Name,
		reason:        n.event.Reason,
		generation:    spec.generation,
		secretVersion: res.secretVersion,
	}, nil
}

// canaryNote is a Canary's alert as an event, with its text from the
// AlertProvider's messageTemplate.
func canaryNote(c *sluicev1beta1.Canary, a alert.Canary, cluster string, spec providerSpec, now time.Time) note {
	e := Event{
		InvolvedObject: corev1.ObjectReference{
			Kind: "Canary", APIVersion: sluicev1beta1.GroupVersion.String(), Namespace: c.Namespace, Name: c.Name, UID: c.UID,
		},
		Severity:            string(severityOrInfo(a.Severity)),
		Timestamp:           metav1.NewTime(now),
		Message:             a.Message,
		Reason:              a.Reason,
		ReportingController: "sluice",
	}
	return note{event: e, message: newMessage(c, a, cluster, spec.typ, spec.messageTemplate), labels: c.Labels}
}

// Providers names the AlertProviders that receive c's alerts: its own
// spec.analysis.alerts, or the defaults.
func (d *Dispatcher) Providers(c *sluicev1beta1.Canary) []types.NamespacedName {
	routes := d.routes(c)
	out := make([]types.NamespacedName, 0, len(routes))
	for _, r := range routes {
		out = append(out, r.Provider)
	}
	return out
}

// Unready says which AlertProviders of c's alerts are missing or not
// Ready, by the field that routes to each; "" when all are ready.
func (d *Dispatcher) Unready(ctx context.Context, c *sluicev1beta1.Canary) string {
	var problems []string
	for _, r := range d.routes(c) {
		if r.err != nil {
			problems = append(problems, fmt.Sprintf("%s: %v", r.field, r.err))
			continue
		}
		var p sluicev1beta1.AlertProvider
		if err := d.opts.Reader.Get(ctx, r.Provider, &p); apierrors.IsNotFound(err) {
			problems = append(problems, fmt.Sprintf("%s: AlertProvider %s not found", r.field, r.Provider))
			continue
		} else if err != nil {
			problems = append(problems, fmt.Sprintf("%s: read AlertProvider %s: %v", r.field, r.Provider, err))
			continue
		}
		if ready := meta.FindStatusCondition(p.Status.Conditions, sluicev1beta1.ReadyCondition); ready != nil && ready.Status == metav1.ConditionFalse {
			problems = append(problems, fmt.Sprintf("%s: AlertProvider %s is not ready: %s: %s", r.field, r.Provider, ready.Reason, ready.Message))
		}
	}
	return strings.Join(problems, "; ")
}

// record keeps how a delivery ended and wakes the provider's reconcile.
func (d *Dispatcher) record(dl delivery, err error) {
	d.mu.Lock()
	d.outcomes[dl.provider] = outcome{err: err, generation: dl.generation, secretVersion: dl.secretVersion}
	d.mu.Unlock()
	var obj client.Object = &sluicev1beta1.AlertProvider{}
	if dl.provider.kind == kindProvider {
		obj = &notificationv1beta3.Provider{}
	}
	obj.SetNamespace(dl.provider.name.Namespace)
	obj.SetName(dl.provider.name.Name)
	select {
	case d.delivered[dl.provider.kind] <- event.GenericEvent{Object: obj}:
	default:
		// The reconcile is already due; it reads the latest outcome.
	}
}

// lastOutcome is how the last delivery to a provider ended.
func (d *Dispatcher) lastOutcome(provider providerKey) (outcome, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	o, ok := d.outcomes[provider]
	return o, ok
}

// Dropped counts the Events and alerts dropped because a queue was full.
func (d *Dispatcher) Dropped() int64 { return d.dropped.Load() }

// enqueue hands a post to the workers, or drops it when the queue is
// full: an alert is never worth blocking the analysis for.
func (d *Dispatcher) enqueue(dl delivery) {
	select {
	case d.queue <- dl:
	default:
		err := errors.New("alert queue is full")
		d.dropped.Add(1)
		d.opts.Log.Error(err, "alert dropped", dl.keysAndValues()...)
		d.record(dl, err)
	}
}

// severityRank orders severities; empty is info, as the CRD defaults it.
func severityRank(s sluicev1beta1.AlertSeverity) (int, bool) {
	switch s {
	case "", sluicev1beta1.SeverityInfo:
		return 0, true
	case sluicev1beta1.SeverityWarn:
		return 1, true
	case sluicev1beta1.SeverityError:
		return 2, true
	}
	return 0, false
}
