// Package handoff is where the sync core hands workloads over to the
// canary engine. Once a Canary has taken over a workload, applies leave
// alone the fields the engine owns, and a sync object (Kustomization,
// HelmRelease) is healthy only when the Canaries of what it applied have
// released it. This ends the fights of flagger#1121, #1158 and #1407.
package handoff

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/fluxcd/cli-utils/pkg/object"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	sluicev1beta1 "sluice.dev/sluice/api/v1beta1"
	"sluice.dev/sluice/pkg/configtrack"
	"sluice.dev/sluice/pkg/workload"
)

// ReasonCanaryFailed is the Ready reason of a sync object whose Canary
// rolled its new revision back.
const ReasonCanaryFailed = "CanaryFailed"

// ReasonProgressing is the Ready reason while a Canary analyses the
// revision just applied.
const ReasonProgressing = "Progressing"

// Guard reads Canaries and the workloads they target.
type Guard struct {
	// Client reads from the cache.
	Client client.Reader
	// APIReader reads the workloads and configs just applied, which the
	// cache may not have yet; nil means Client.
	APIReader client.Reader
	// ConfigTracking is the operator's: when set, the ConfigMaps and
	// Secrets a workload reads are part of its revision, as the Canaries
	// count them.
	ConfigTracking bool
}

// Targets maps "Kind/namespace/name" of each Canary's target, and of its
// apex Service, to the Canary.
type Targets map[string]*sluicev1beta1.Canary

// Targets finds the Canaries in the objects' namespaces.
func (g Guard) Targets(ctx context.Context, objs []*unstructured.Unstructured) (Targets, error) {
	namespaces := map[string]bool{}
	for _, o := range objs {
		if o.GetNamespace() != "" {
			namespaces[o.GetNamespace()] = true
		}
	}
	out := Targets{}
	for ns := range namespaces {
		var list sluicev1beta1.CanaryList
		if err := g.Client.List(ctx, &list, client.InNamespace(ns)); err != nil {
			if meta.IsNoMatchError(err) {
				return out, nil
			}
			return nil, fmt.Errorf("list Canaries in %s: %w", ns, err)
		}
		for i := range list.Items {
			c := &list.Items[i]
			out[c.Spec.TargetRef.Kind+"/"+ns+"/"+c.Spec.TargetRef.Name] = c
			out["Service/"+ns+"/"+apexName(c)] = c
		}
	}
	return out, nil
}

// Unreleased leaves out of set what the Canaries release: themselves,
// their targets and apex Services. A health check judges the rest, while
// the hand-off judges those, and a rollout's analysis may outlast any
// timeout.
func (t Targets) Unreleased(set object.ObjMetadataSet) object.ObjMetadataSet {
	var out object.ObjMetadataSet
	for _, id := range set {
		if id.GroupKind.Group == sluicev1beta1.GroupVersion.Group || t[id.GroupKind.Kind+"/"+id.Namespace+"/"+id.Name] != nil {
			continue
		}
		out = append(out, id)
	}
	return out
}

func apexName(c *sluicev1beta1.Canary) string {
	if c.Spec.Service.Name != "" {
		return c.Spec.Service.Name
	}
	return c.Spec.TargetRef.Name
}

// LeaveAlone drops from objs the fields the canary engine
// owns once it has taken over: the target's replicas (it scales the
// target to zero between releases) and the apex Service's selector (it
// points the Service at the primary). Applying them again would undo the
// engine at every sync, the fight of flagger#1121, #1158 and #1407.
func (g Guard) LeaveAlone(ctx context.Context, objs []*unstructured.Unstructured, targets Targets) error {
	for _, o := range objs {
		key := o.GetKind() + "/" + o.GetNamespace() + "/" + o.GetName()
		if targets[key] == nil {
			continue
		}
		live := &unstructured.Unstructured{}
		live.SetGroupVersionKind(o.GroupVersionKind())
		if err := g.Client.Get(ctx, client.ObjectKeyFromObject(o), live); apierrors.IsNotFound(err) {
			// The first apply creates the object whole.
			continue
		} else if err != nil {
			return fmt.Errorf("read %s: %w", key, err)
		}
		switch o.GetKind() {
		case "Deployment", "DaemonSet":
			unstructured.RemoveNestedField(o.Object, "spec", "replicas")
		case "Service":
			// A Service target's selector is its revision, the user's to
			// change; Sluice never points it anywhere.
			if targets[key].Spec.TargetRef.Kind != workload.KindService {
				unstructured.RemoveNestedField(o.Object, "spec", "selector")
			}
		}
	}
	return nil
}

// Health says whether the Canaries of the applied workloads have
// released the revision applied: ok when all have, a waiting message
// while one analyses it, and failed with the Canary's reason when one
// rolled it back.
func (g Guard) Health(ctx context.Context, objs []*unstructured.Unstructured, targets Targets) (waiting, failed string, err error) {
	var waits, fails []string
	for _, o := range objs {
		kind := o.GetKind()
		if kind != "Deployment" && kind != "DaemonSet" {
			continue
		}
		c := targets[kind+"/"+o.GetNamespace()+"/"+o.GetName()]
		if c == nil {
			continue
		}
		live, err := workload.New(kind)
		if err != nil {
			return "", "", err
		}
		// Straight from the API server: the cache may still hold the
		// template and configs from before this apply, whose revision the
		// Canary has.
		reader := g.Client
		if g.APIReader != nil {
			reader = g.APIReader
		}
		if err := reader.Get(ctx, client.ObjectKeyFromObject(o), live); err != nil {
			return "", "", fmt.Errorf("read %s %s: %w", kind, o.GetName(), err)
		}
		name := c.Namespace + "/" + c.Name
		configs, err := configtrack.Read(ctx, reader, o.GetNamespace(), &workload.PodTemplate(live).Spec)
		var missing *configtrack.MissingError
		if errors.As(err, &missing) {
			waits = append(waits, fmt.Sprintf("Canary %s waits for %s", name, missing))
			continue
		} else if err != nil {
			return "", "", err
		}
		// The revision the Canary counts: a commit that changes only a
		// tracked ConfigMap or Secret is a new one too.
		revision := workload.Revision(workload.PodTemplateHash(live), configtrack.Checksums(configs, g.ConfigTracking))
		if c.Status.LastTrackedRevision != revision {
			waits = append(waits, fmt.Sprintf("Canary %s has not picked up revision %s yet", name, revision))
			continue
		}
		switch c.Status.Phase {
		case sluicev1beta1.CanaryPhaseSucceeded, sluicev1beta1.CanaryPhaseInitialized:
		case sluicev1beta1.CanaryPhaseFailed:
			msg := "rolled back"
			if ready := meta.FindStatusCondition(c.Status.Conditions, sluicev1beta1.ReadyCondition); ready != nil {
				msg = ready.Message
			}
			fails = append(fails, fmt.Sprintf("Canary %s: %s", name, msg))
		default:
			waits = append(waits, fmt.Sprintf("Canary %s is %s", name, c.Status.Phase))
		}
	}
	return strings.Join(waits, "; "), strings.Join(fails, "; "), nil
}

// ByCanary maps a Canary to the sync object that applied its target,
// named by the target's nameLabel and namespaceLabel, so that a Canary's
// status change wakes the Kustomization or HelmRelease waiting on it.
func ByCanary(c client.Reader, nameLabel, namespaceLabel string) handler.MapFunc {
	return func(ctx context.Context, o client.Object) []reconcile.Request {
		cn, ok := o.(*sluicev1beta1.Canary)
		if !ok {
			return nil
		}
		target, err := workload.New(cn.Spec.TargetRef.Kind)
		if err != nil {
			return nil
		}
		if err := c.Get(ctx, types.NamespacedName{Namespace: cn.Namespace, Name: cn.Spec.TargetRef.Name}, target); err != nil {
			return nil
		}
		labels := target.GetLabels()
		if labels[nameLabel] == "" {
			return nil
		}
		return []reconcile.Request{{NamespacedName: types.NamespacedName{Namespace: labels[namespaceLabel], Name: labels[nameLabel]}}}
	}
}
