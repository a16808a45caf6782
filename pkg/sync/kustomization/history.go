package kustomization

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"sort"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"

	sourcev1 "sluice.dev/sluice/api/source/v1"
	syncv1 "sluice.dev/sluice/api/sync/v1"
	"sluice.dev/sluice/pkg/source/oci"
)

// snapshot is what one apply was, for status.history: the digest of the
// objects built, the revisions they came from, and when it began.
type snapshot struct {
	digest, revision, origin string
	started                  time.Time
}

// newSnapshot digests the built objects, in a stable order, and reads the
// origin revision from an OCIRepository's artifact.
func (r *Reconciler) newSnapshot(ctx context.Context, ks *syncv1.Kustomization, revision string, objs []*unstructured.Unstructured) *snapshot {
	return &snapshot{digest: digestOf(objs), revision: revision, origin: r.originRevision(ctx, ks, revision), started: time.Now()}
}

// digestOf is sha256 over the objects' JSON, sorted by kind, namespace
// and name, so that the same build always has the same digest.
func digestOf(objs []*unstructured.Unstructured) string {
	sorted := make([]*unstructured.Unstructured, len(objs))
	copy(sorted, objs)
	key := func(o *unstructured.Unstructured) string {
		return o.GetAPIVersion() + "/" + o.GetKind() + "/" + o.GetNamespace() + "/" + o.GetName()
	}
	sort.Slice(sorted, func(i, j int) bool { return key(sorted[i]) < key(sorted[j]) })
	h := sha256.New()
	for _, o := range sorted {
		data, err := o.MarshalJSON()
		if err != nil {
			// An object that does not marshal was refused by the build
			// already; its key still counts.
			data = []byte(key(o))
		}
		h.Write(data)
		h.Write([]byte{'\n'})
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil))
}

// originRevision is the origin revision, from its manifest annotation, of
// the Kustomization's OCIRepository artifact at revision: empty for other
// sources, for artifacts without one, and when the OCIRepository's status
// is of another artifact than the one built.
func (r *Reconciler) originRevision(ctx context.Context, ks *syncv1.Kustomization, revision string) string {
	ref := ks.Spec.SourceRef
	if ref.Kind != "OCIRepository" {
		return ""
	}
	repo := &sourcev1.OCIRepository{}
	ns := ref.Namespace
	if ns == "" {
		ns = ks.Namespace
	}
	if err := r.Client.Get(ctx, types.NamespacedName{Namespace: ns, Name: ref.Name}, repo); err != nil || repo.Status.Artifact == nil || repo.Status.Artifact.Revision != revision {
		return ""
	}
	return repo.Status.Artifact.Metadata[oci.RevisionAnnotation]
}

// record counts a finished reconciliation in status.history, and a
// successful one's origin revision as the last applied.
func (s *snapshot) record(ks *syncv1.Kustomization, ready metav1.Condition) {
	if s == nil || ready.Status == metav1.ConditionUnknown {
		return
	}
	metadata := map[string]string{"revision": s.revision}
	if s.origin != "" {
		metadata["originRevision"] = s.origin
	}
	ks.Status.History.Upsert(s.digest, time.Now(), time.Since(s.started), ready.Reason, metadata)
	if ready.Status == metav1.ConditionTrue {
		ks.Status.LastAppliedOriginRevision = s.origin
	}
}
