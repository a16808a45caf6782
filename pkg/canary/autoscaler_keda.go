package canary

import (
	"context"
	"fmt"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	sluicev1beta1 "sluice.dev/sluice/api/v1beta1"
	"sluice.dev/sluice/pkg/workload"
)

// +kubebuilder:rbac:groups=keda.sh,resources=scaledobjects,verbs=get;list;watch;create;update;patch;delete

// scaledObjectGVK is KEDA's ScaledObject.
var scaledObjectGVK = schema.GroupVersionKind{Group: "keda.sh", Version: "v1alpha1", Kind: "ScaledObject"}

// kedaPausedReplicas is KEDA's annotation that holds a workload at a
// replica count, pausing the ScaledObject.
const kedaPausedReplicas = "autoscaling.keda.sh/paused-replicas"

// kedaDefaultMax is KEDA's maxReplicaCount when a ScaledObject sets none.
const kedaDefaultMax = 100

// scaledObject is a KEDA ScaledObject target's autoscaler, as Flagger
// handles it: the primary gets a copy, <name>-primary, scaling the
// primary, whose triggers' queries are spec.autoscalerRef.primaryScalerQueries
// by trigger name or else the target's with its name changed to the
// primary's; and the target's is paused at 0 replicas while the canary is
// at zero, since KEDA would otherwise scale it back up.
type scaledObject struct {
	obj    *unstructured.Unstructured
	target string
}

func observeScaledObject(ctx context.Context, r *Reconciler, c *sluicev1beta1.Canary) (autoscaler, error) {
	so := &unstructured.Unstructured{}
	so.SetGroupVersionKind(scaledObjectGVK)
	name := c.Spec.AutoscalerRef.Name
	if err := r.Client.Get(ctx, client.ObjectKey{Namespace: c.Namespace, Name: name}, so); apierrors.IsNotFound(err) {
		return nil, problem("AutoscalerNotFound", "spec.autoscalerRef: ScaledObject %s not found", name)
	} else if err != nil {
		return nil, problem("AutoscalerNotFound", "spec.autoscalerRef: get ScaledObject %s (is KEDA installed?): %v", name, err)
	}
	return scaledObject{obj: so, target: c.Spec.TargetRef.Name}, nil
}

func (s scaledObject) minReplicas() int32 {
	m, _, _ := unstructured.NestedInt64(s.obj.Object, "spec", "minReplicaCount")
	return int32(m)
}

func (s scaledObject) maxReplicas() int32 {
	if m, ok, _ := unstructured.NestedInt64(s.obj.Object, "spec", "maxReplicaCount"); ok {
		return int32(m)
	}
	return kedaDefaultMax
}

// hold pauses the target's ScaledObject at 0 replicas, or resumes it.
func (s scaledObject) hold(ctx context.Context, r *Reconciler, atZero bool) error {
	_, paused := s.obj.GetAnnotations()[kedaPausedReplicas]
	if paused == atZero {
		return nil
	}
	before := s.obj.DeepCopy()
	annotations := s.obj.GetAnnotations()
	if atZero {
		if annotations == nil {
			annotations = map[string]string{}
		}
		annotations[kedaPausedReplicas] = "0"
	} else {
		delete(annotations, kedaPausedReplicas)
	}
	s.obj.SetAnnotations(annotations)
	if err := r.Client.Patch(ctx, s.obj, client.MergeFrom(before)); err != nil {
		return fmt.Errorf("pause ScaledObject %s: %w", s.obj.GetName(), err)
	}
	return nil
}

// syncPrimary writes the primary's ScaledObject.
func (s scaledObject) syncPrimary(ctx context.Context, r *Reconciler, c *sluicev1beta1.Canary, primaryName string) error {
	copied := &unstructured.Unstructured{}
	copied.SetGroupVersionKind(scaledObjectGVK)
	copied.SetNamespace(c.Namespace)
	copied.SetName(s.obj.GetName() + workload.PrimarySuffix)
	_, err := controllerutil.CreateOrPatch(ctx, r.Client, copied, func() error {
		spec, _, _ := unstructured.NestedMap(s.obj.Object, "spec")
		if spec == nil {
			spec = map[string]any{}
		}
		ref, _, _ := unstructured.NestedMap(spec, "scaleTargetRef")
		if ref == nil {
			ref = map[string]any{}
		}
		ref["name"] = primaryName
		spec["scaleTargetRef"] = ref
		triggers, _, _ := unstructured.NestedSlice(spec, "triggers")
		for i, t := range triggers {
			tm, ok := t.(map[string]any)
			if !ok {
				continue
			}
			metadata, _ := tm["metadata"].(map[string]any)
			name, _ := tm["name"].(string)
			// A trigger primaryScalerQueries does not name is rewritten too,
			// where Flagger leaves it on the canary's query: the primary
			// would scale on the canary's load.
			if q, ok := c.Spec.AutoscalerRef.PrimaryScalerQueries[name]; ok && name != "" {
				if metadata == nil {
					metadata = map[string]any{}
				}
				metadata["query"] = q
			} else if q, ok := metadata["query"].(string); ok {
				metadata["query"] = primaryQuery(q, s.target)
			}
			if metadata != nil {
				tm["metadata"] = metadata
			}
			triggers[i] = tm
		}
		if triggers != nil {
			spec["triggers"] = triggers
		}
		if o := c.Spec.AutoscalerRef.PrimaryScalerReplicas; o != nil {
			if o.MinReplicas != nil {
				spec["minReplicaCount"] = int64(*o.MinReplicas)
			}
			if o.MaxReplicas != nil {
				spec["maxReplicaCount"] = int64(*o.MaxReplicas)
			}
		}
		copied.Object["spec"] = spec
		return controllerutil.SetControllerReference(c, copied, r.Scheme)
	})
	if err != nil {
		return fmt.Errorf("copy ScaledObject %s to %s: %w", s.obj.GetName(), copied.GetName(), err)
	}
	return nil
}

// primaryQuery is a trigger's query for the primary: the target's name,
// and the canary's (<target>-canary), written as the primary's, as
// Flagger does, without doubling a -primary the query already has.
func primaryQuery(q, target string) string {
	primary := target + workload.PrimarySuffix
	q = strings.ReplaceAll(q, target+"-canary", target)
	return strings.ReplaceAll(strings.ReplaceAll(q, target, primary), primary+workload.PrimarySuffix, primary)
}
