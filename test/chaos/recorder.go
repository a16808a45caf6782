package chaos

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	sluicev1beta1 "sluice.dev/sluice/api/v1beta1"
)

// Observation is a Canary's status as the recorder saw it change.
type Observation struct {
	At           time.Time
	Phase        sluicev1beta1.CanaryPhase
	Weight       int
	Iterations   int
	FailedChecks int
	// LastStepTime is status.lastStepTime: when the operator ran the
	// analysis step that wrote this status.
	LastStepTime     time.Time
	LastAppliedSpec  string
	LastPromotedSpec string
}

func (o Observation) same(p Observation) bool {
	o.At, p.At = time.Time{}, time.Time{}
	return o == p
}

// String is the observation as the failure messages show it.
func (o Observation) String() string {
	return fmt.Sprintf("%s %s weight=%d iterations=%d failedChecks=%d step=%s",
		o.At.Format("15:04:05.000"), o.Phase, o.Weight, o.Iterations, o.FailedChecks, o.LastStepTime.Format("15:04:05"))
}

// TemplateChange is a change of a primary Deployment's pod template: a
// promotion.
type TemplateChange struct {
	At   time.Time
	Hash string
}

// Recorder watches every Canary and every primary Deployment from its own
// informers, which reconnect across API server restarts, and keeps each
// status change and each change of a primary's pod template.
type Recorder struct {
	mu        sync.Mutex
	canaries  map[client.ObjectKey][]Observation
	templates map[client.ObjectKey][]TemplateChange
	// writes is when the recorder saw each Canary status change, of any
	// Canary, in order: the operator's status writes.
	writes []time.Time
}

// StartRecorder starts the informers and waits for their first list.
func StartRecorder(ctx context.Context, cfg *rest.Config, scheme *runtime.Scheme) (*Recorder, error) {
	r := &Recorder{canaries: map[client.ObjectKey][]Observation{}, templates: map[client.ObjectKey][]TemplateChange{}}
	c, err := cache.New(cfg, cache.Options{Scheme: scheme, DefaultTransform: cache.TransformStripManagedFields()})
	if err != nil {
		return nil, fmt.Errorf("build the recorder's cache: %w", err)
	}
	canaries, err := c.GetInformer(ctx, &sluicev1beta1.Canary{})
	if err != nil {
		return nil, fmt.Errorf("watch Canaries: %w", err)
	}
	if _, err := canaries.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { r.canary(obj) },
		UpdateFunc: func(_, obj any) { r.canary(obj) },
	}); err != nil {
		return nil, fmt.Errorf("watch Canaries: %w", err)
	}
	deployments, err := c.GetInformer(ctx, &appsv1.Deployment{})
	if err != nil {
		return nil, fmt.Errorf("watch Deployments: %w", err)
	}
	if _, err := deployments.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { r.deployment(obj) },
		UpdateFunc: func(_, obj any) { r.deployment(obj) },
	}); err != nil {
		return nil, fmt.Errorf("watch Deployments: %w", err)
	}
	go func() { _ = c.Start(ctx) }()
	if !c.WaitForCacheSync(ctx) {
		return nil, fmt.Errorf("the recorder's informers did not sync")
	}
	return r, nil
}

func (r *Recorder) canary(obj any) {
	c, ok := obj.(*sluicev1beta1.Canary)
	if !ok {
		return
	}
	o := Observation{
		At: time.Now(), Phase: c.Status.Phase, Weight: c.Status.CanaryWeight, Iterations: c.Status.Iterations,
		FailedChecks: c.Status.FailedChecks, LastAppliedSpec: c.Status.LastAppliedSpec, LastPromotedSpec: c.Status.LastPromotedSpec,
	}
	if c.Status.LastStepTime != nil {
		o.LastStepTime = c.Status.LastStepTime.Time
	}
	key := client.ObjectKeyFromObject(c)
	r.mu.Lock()
	defer r.mu.Unlock()
	h := r.canaries[key]
	if len(h) > 0 && h[len(h)-1].same(o) {
		return
	}
	r.canaries[key] = append(h, o)
	r.writes = append(r.writes, o.At)
}

func (r *Recorder) deployment(obj any) {
	d, ok := obj.(*appsv1.Deployment)
	if !ok || !strings.HasSuffix(d.Name, "-primary") {
		return
	}
	b, err := json.Marshal(d.Spec.Template)
	if err != nil {
		return
	}
	sum := sha256.Sum256(b)
	hash := hex.EncodeToString(sum[:8])
	key := client.ObjectKey{Namespace: d.Namespace, Name: strings.TrimSuffix(d.Name, "-primary")}
	r.mu.Lock()
	defer r.mu.Unlock()
	h := r.templates[key]
	if len(h) > 0 && h[len(h)-1].Hash == hash {
		return
	}
	r.templates[key] = append(h, TemplateChange{At: time.Now(), Hash: hash})
}

// History is every status change of a Canary seen so far.
func (r *Recorder) History(key client.ObjectKey) []Observation {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Observation(nil), r.canaries[key]...)
}

// Templates is every pod template the primary of Canary key had, the
// first being its creation.
func (r *Recorder) Templates(key client.ObjectKey) []TemplateChange {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]TemplateChange(nil), r.templates[key]...)
}

// FirstWriteAfter is when the recorder first saw a Canary status change
// after t, of any Canary; false if none yet.
func (r *Recorder) FirstWriteAfter(t time.Time) (time.Time, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, w := range r.writes {
		if w.After(t) {
			return w, true
		}
	}
	return time.Time{}, false
}
