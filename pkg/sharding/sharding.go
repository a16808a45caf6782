// Package sharding splits the objects Sluice reconciles among several
// operator replicas, as Flux shards its controllers: each replica owns
// the objects its label selector matches (--shard-key=k is the selector
// sharding.sluice.dev/key=k), holds a lease of its own, and the replicas
// act side by side. Each replica's lease records its selector, so that
// sluicectl check can tell which objects no running replica owns.
package sharding

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/selection"
	"k8s.io/apimachinery/pkg/util/validation"

	imagev1 "sluice.dev/sluice/api/image/v1"
	notificationv1 "sluice.dev/sluice/api/notification/v1"
	notificationv1beta3 "sluice.dev/sluice/api/notification/v1beta3"
	sourcev1 "sluice.dev/sluice/api/source/v1"
	syncv1 "sluice.dev/sluice/api/sync/v1"
	syncv2 "sluice.dev/sluice/api/sync/v2"
	sluicev1beta1 "sluice.dev/sluice/api/v1beta1"
)

const (
	// KeyLabel assigns an object to the shard of that name, as Flux's
	// sharding.fluxcd.io/key does.
	KeyLabel = "sharding.sluice.dev/key"
	// Unsharded is the selector of the replica that runs beside the
	// shards and owns the objects that name no shard, as Flux's main
	// controllers run with --watch-label-selector='!sharding.fluxcd.io/key'.
	Unsharded = "!" + KeyLabel

	// SelectorAnnotation is, on a replica's lease, the selector of the
	// objects the replica owns; empty owns every one.
	SelectorAnnotation = "sharding.sluice.dev/selector"
	// NamespaceAnnotation is, on a replica's lease, the only namespace
	// the replica watches (--namespace); absent, it watches all.
	NamespaceAnnotation = "sharding.sluice.dev/namespace"
)

// Kinds are the kinds a replica caches and reconciles only its own
// objects of: Canaries and the sync kinds. What such an object reads of
// these kinds (a source, a dependency, an included repository, the
// ImageRepository of a policy, the Canary of a workload it applies) must
// carry the same shard label, as Flux requires of sources.
func Kinds() []schema.GroupVersionKind {
	return []schema.GroupVersionKind{
		sluicev1beta1.GroupVersion.WithKind("Canary"),
		sourcev1.GroupVersion.WithKind("GitRepository"),
		sourcev1.GroupVersion.WithKind("HelmRepository"),
		sourcev1.GroupVersion.WithKind("HelmChart"),
		sourcev1.GroupVersion.WithKind("OCIRepository"),
		sourcev1.GroupVersion.WithKind("Bucket"),
		syncv1.GroupVersion.WithKind("Kustomization"),
		syncv2.GroupVersion.WithKind("HelmRelease"),
		imagev1.GroupVersion.WithKind("ImageRepository"),
		imagev1.GroupVersion.WithKind("ImagePolicy"),
		imagev1.GroupVersion.WithKind("ImageUpdateAutomation"),
	}
}

// SharedKinds are the kinds every replica reads whole, as objects of any
// shard may name them (a Canary's AlertProvider, an Alert's Provider, the
// Receiver a webhook calls); only the replica whose selector matches one
// writes its status, so that it has one writer, as under Flux's one
// notification-controller. MetricTemplates, which have no status, are
// read by all and owned by none.
func SharedKinds() []schema.GroupVersionKind {
	return []schema.GroupVersionKind{
		sluicev1beta1.GroupVersion.WithKind("AlertProvider"),
		notificationv1beta3.GroupVersion.WithKind("Provider"),
		notificationv1beta3.GroupVersion.WithKind("Alert"),
		notificationv1.GroupVersion.WithKind("Receiver"),
	}
}

// Selector is the label selector of the objects one replica owns.
type Selector struct {
	// text is the canonical form, recorded on the lease.
	text string
	sel  labels.Selector
	// key is the shard's name when the selector is KeyLabel=key alone.
	key string
}

// ForKey is the selector of the shard named key (--shard-key): the
// objects labelled sharding.sluice.dev/key=key. The key must be a label
// value.
func ForKey(key string) (Selector, error) {
	if key == "" {
		return Selector{}, fmt.Errorf("the shard key is empty")
	}
	if errs := validation.IsValidLabelValue(key); len(errs) > 0 {
		return Selector{}, fmt.Errorf("shard key %q is not a label value: %v", key, errs)
	}
	return Parse(KeyLabel + "=" + key)
}

// Parse reads a label selector as kubectl and Flux's
// --watch-label-selector take it; empty selects every object.
func Parse(s string) (Selector, error) {
	sel, err := labels.Parse(s)
	if err != nil {
		return Selector{}, fmt.Errorf("label selector %q: %w", s, err)
	}
	out := Selector{sel: sel, text: sel.String()}
	reqs, _ := sel.Requirements()
	if len(reqs) == 1 && reqs[0].Key() == KeyLabel {
		switch reqs[0].Operator() {
		case selection.Equals, selection.DoubleEquals, selection.In:
			if values := reqs[0].Values(); values.Len() == 1 {
				// One spelling, so that the replicas of one shard agree
				// on what their lease records.
				out.key = values.UnsortedList()[0]
				out.text = KeyLabel + "=" + out.key
			}
		}
	}
	return out, nil
}

// String is the selector in its canonical form; empty selects all.
func (s Selector) String() string { return s.text }

// Empty reports whether the selector selects every object.
func (s Selector) Empty() bool { return s.text == "" }

// Key is the shard's name when the selector picks one shard's objects
// (sharding.sluice.dev/key=key), or "".
func (s Selector) Key() string { return s.key }

// Labels is the selector for a cache or a list; nil when it is empty.
func (s Selector) Labels() labels.Selector {
	if s.Empty() {
		return nil
	}
	return s.sel
}

// Matches reports whether an object with these labels is the replica's.
func (s Selector) Matches(objLabels map[string]string) bool {
	return s.Empty() || s.sel.Matches(labels.Set(objLabels))
}

// CopiedLabels are the labels of a HelmRelease its HelmChart carries too:
// the shard label and every label the selector reads, so that the chart
// goes to the HelmRelease's own replica, which loads and reads it.
func (s Selector) CopiedLabels() []string {
	keys := []string{KeyLabel}
	if s.Empty() {
		return keys
	}
	reqs, _ := s.sel.Requirements()
	for _, r := range reqs {
		if !slices.Contains(keys, r.Key()) {
			keys = append(keys, r.Key())
		}
	}
	return keys
}

// LeaseName is the lease of the selector's replicas: id itself for a
// replica that owns every object, so that an unsharded install keeps its
// lease, id-<key> for a shard, and id-<hash of the selector> for other
// selectors (the unsharded main replica's among them). Each shard thus
// elects its own leader, and the shards act at once.
func (s Selector) LeaseName(id string) string {
	switch {
	case s.Empty():
		return id
	case s.key != "" && len(validation.IsDNS1123Label(s.key)) == 0 && len(validation.IsDNS1123Subdomain(id+"-"+s.key)) == 0:
		return id + "-" + s.key
	}
	sum := sha256.Sum256([]byte(s.text))
	return id + "-" + hex.EncodeToString(sum[:5])
}

// Replica is a running operator replica, as its lease records it.
type Replica struct {
	// Lease is the lease's name.
	Lease string
	// Holder is the identity of the replica that holds the lease.
	Holder string
	// Selector picks the objects it owns.
	Selector Selector
	// Namespace is the only namespace it watches; empty, it watches all.
	Namespace string
}

// Owns reports whether the replica reconciles an object in namespace ns
// with these labels.
func (r Replica) Owns(ns string, objLabels map[string]string) bool {
	return (r.Namespace == "" || r.Namespace == ns) && r.Selector.Matches(objLabels)
}

// FromLease reads the replica a lease records. ok is false for a lease
// that no Sluice replica wrote (it has no SelectorAnnotation), and live is
// false when no one holds it or its holder has not renewed it within its
// duration at now.
func FromLease(l *coordinationv1.Lease, now time.Time) (r Replica, live, ok bool, err error) {
	text, ok := l.Annotations[SelectorAnnotation]
	if !ok {
		return Replica{}, false, false, nil
	}
	sel, err := Parse(text)
	if err != nil {
		return Replica{}, false, true, fmt.Errorf("lease %s/%s: annotation %s: %w", l.Namespace, l.Name, SelectorAnnotation, err)
	}
	r = Replica{Lease: l.Name, Selector: sel, Namespace: l.Annotations[NamespaceAnnotation]}
	if l.Spec.HolderIdentity != nil {
		r.Holder = *l.Spec.HolderIdentity
	}
	live = r.Holder != "" && l.Spec.RenewTime != nil && l.Spec.LeaseDurationSeconds != nil &&
		now.Before(l.Spec.RenewTime.Add(time.Duration(*l.Spec.LeaseDurationSeconds)*time.Second))
	return r, live, true, nil
}
