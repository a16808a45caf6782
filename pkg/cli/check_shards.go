package cli

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"sluice.dev/sluice/pkg/sharding"
)

// maxListed bounds the objects check names on one line.
const maxListed = 20

// checkShards finds the running operator replicas by their leases in ns,
// live when renewed within their duration at now, and reports the
// Canaries, sync objects and notification objects that none of them owns,
// or that several own. Without a lease that a replica recorded its
// selector on (leader election off, or no operator started yet), it
// checks nothing.
func checkShards(ctx context.Context, c client.Client, cs *checks, ns string, now time.Time) error {
	var leases coordinationv1.LeaseList
	if err := c.List(ctx, &leases, client.InNamespace(ns)); err != nil {
		return fmt.Errorf("list the Leases in %s: %w", ns, err)
	}
	sort.Slice(leases.Items, func(i, j int) bool { return leases.Items[i].Name < leases.Items[j].Name })
	var live []sharding.Replica
	recorded := false
	for i := range leases.Items {
		r, isLive, ok, err := sharding.FromLease(&leases.Items[i], now)
		if !ok {
			continue
		}
		recorded = true
		if err != nil {
			cs.report(false, "%v", err)
			continue
		}
		if isLive {
			live = append(live, r)
			cs.report(true, "replica %s owns %s (Lease %s/%s)", r.Holder, owned(r), ns, r.Lease)
		}
	}
	if !recorded {
		return nil
	}
	if len(live) == 0 {
		cs.report(false, "no operator replica holds a live Lease in %s", ns)
	}
	// The objects without an owner, by the shard their label names, and
	// those with several, by their owners.
	orphans, shared := map[string][]string{}, map[string][]string{}
	total := 0
	for _, gvk := range append(sharding.Kinds(), sharding.SharedKinds()...) {
		list := &metav1.PartialObjectMetadataList{}
		list.SetGroupVersionKind(gvk.GroupVersion().WithKind(gvk.Kind + "List"))
		if err := c.List(ctx, list); err != nil {
			if meta.IsNoMatchError(err) || apierrors.IsNotFound(err) {
				// A CRD that is not installed has been reported above.
				continue
			}
			return fmt.Errorf("list the %ss: %w", gvk.Kind, err)
		}
		for i := range list.Items {
			o := &list.Items[i]
			total++
			var owners []string
			for _, r := range live {
				if r.Owns(o.Namespace, o.Labels) {
					owners = append(owners, r.Lease)
				}
			}
			id := fmt.Sprintf("%s %s/%s", gvk.Kind, o.Namespace, o.Name)
			switch {
			case len(owners) == 0:
				orphans[shardOf(o.Labels)] = append(orphans[shardOf(o.Labels)], id)
			case len(owners) > 1:
				key := fmt.Sprintf("owned by %d running replicas at once (Leases %s)", len(owners), strings.Join(owners, ", "))
				shared[key] = append(shared[key], id)
			}
		}
	}
	for _, group := range slices.Sorted(maps.Keys(orphans)) {
		ids := orphans[group]
		cs.report(false, "%s %s owned by no running replica: %s", objects(len(ids), group), isAre(len(ids)), some(ids))
	}
	for _, group := range slices.Sorted(maps.Keys(shared)) {
		ids := shared[group]
		cs.report(false, "%s %s %s: %s", objects(len(ids), ""), isAre(len(ids)), group, some(ids))
	}
	if len(orphans) == 0 && len(shared) == 0 && len(live) > 0 {
		cs.report(true, "each of the %d Canaries, sync and notification objects is owned by one running replica", total)
	}
	return nil
}

// objects counts objects, described by what.
func objects(n int, what string) string {
	s := fmt.Sprintf("%d objects", n)
	if n == 1 {
		s = "1 object"
	}
	if what != "" {
		s += " " + what
	}
	return s
}

func isAre(n int) string {
	if n == 1 {
		return "is"
	}
	return "are"
}

// some names the first maxListed ids, and how many more there are: a
// shard that stopped leaves all of its objects without an owner.
func some(ids []string) string {
	if len(ids) <= maxListed {
		return strings.Join(ids, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(ids[:maxListed], ", "), len(ids)-maxListed)
}

// owned describes what a replica owns.
func owned(r sharding.Replica) string {
	var s string
	switch sel := r.Selector; {
	case sel.Empty():
		s = "every object"
	case sel.Key() != "":
		s = fmt.Sprintf("shard %s (%s)", sel.Key(), sel)
	default:
		s = fmt.Sprintf("the objects matching %s", sel)
	}
	if r.Namespace != "" {
		s += " in namespace " + r.Namespace
	}
	return s
}

// shardOf says which shard an object's label assigns it to.
func shardOf(objLabels map[string]string) string {
	if key, ok := objLabels[sharding.KeyLabel]; ok {
		return "labelled " + sharding.KeyLabel + "=" + key
	}
	return "with no " + sharding.KeyLabel + " label"
}
