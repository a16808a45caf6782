package helmrelease

import (
	"bytes"
	"context"
	"fmt"
	"maps"

	"github.com/fluxcd/pkg/ssa/utils"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	syncv1 "sluice.dev/sluice/api/sync/v1"
	syncv2 "sluice.dev/sluice/api/sync/v2"
	"sluice.dev/sluice/pkg/sync/build"
	"sluice.dev/sluice/pkg/sync/handoff"
)

// Labels that mark what a HelmRelease installed, so that a Canary's
// status change finds the HelmRelease to wake; they are the API's.
const (
	OwnerNameLabel      = syncv2.AppliedByNameLabel
	OwnerNamespaceLabel = syncv2.AppliedByNamespaceLabel
)

// postRenderer runs after Helm renders the chart: the spec's kustomize
// post-renderers, then spec.commonMetadata, then the hand-off to the canary engine (fields a Canary
// owns are dropped, so neither an upgrade nor drift correction undoes
// the engine, flagger#1407), then the ownership labels.
type postRenderer struct {
	ctx       context.Context
	hr        *syncv2.HelmRelease
	namespace string
	guard     handoff.Guard
}

// Run implements Helm's postrenderer.PostRenderer.
func (p *postRenderer) Run(rendered *bytes.Buffer) (*bytes.Buffer, error) {
	objs, err := readManifest(rendered.String(), p.namespace)
	if err != nil {
		return nil, err
	}
	for i, pr := range p.hr.Spec.PostRenderers {
		if pr.Kustomize == nil {
			continue
		}
		var opts build.Options
		opts.Patches, opts.Images = build.PatchesAndImages(pr.Kustomize.Patches, pr.Kustomize.Images)
		data, err := writeManifest(objs)
		if err != nil {
			return nil, err
		}
		if objs, err = build.Build(map[string][]byte{"rendered/manifest.yaml": data}, build.Options{Path: "rendered", Patches: opts.Patches, Images: opts.Images}); err != nil {
			return nil, fmt.Errorf("spec.postRenderers[%d].kustomize: %w", i, err)
		}
	}
	if m := p.hr.Spec.CommonMetadata; m != nil {
		for _, o := range objs {
			setCommonMetadata(o, m)
		}
	}
	targets, err := p.guard.Targets(p.ctx, objs)
	if err != nil {
		return nil, err
	}
	if err := p.guard.LeaveAlone(p.ctx, objs, targets); err != nil {
		return nil, err
	}
	for _, o := range objs {
		labels := o.GetLabels()
		if labels == nil {
			labels = map[string]string{}
		}
		labels[OwnerNameLabel], labels[OwnerNamespaceLabel] = p.hr.Name, p.hr.Namespace
		o.SetLabels(labels)
	}
	data, err := writeManifest(objs)
	if err != nil {
		return nil, err
	}
	return bytes.NewBuffer(data), nil
}

// setCommonMetadata sets spec.commonMetadata's labels and annotations on
// the object's own metadata, overriding the chart's for the same keys:
// selectors and pod templates stay as rendered, so no workload rolls
// out for a label.
func setCommonMetadata(o *unstructured.Unstructured, m *syncv1.CommonMetadata) {
	if len(m.Labels) > 0 {
		labels := o.GetLabels()
		if labels == nil {
			labels = map[string]string{}
		}
		maps.Copy(labels, m.Labels)
		o.SetLabels(labels)
	}
	if len(m.Annotations) > 0 {
		annotations := o.GetAnnotations()
		if annotations == nil {
			annotations = map[string]string{}
		}
		maps.Copy(annotations, m.Annotations)
		o.SetAnnotations(annotations)
	}
}

// postRenderersDigest is sha256:<hex> of spec.postRenderers and
// spec.commonMetadata, what the post-renderer changes the manifests
// with; empty when there are none, so that a release made without them
// needs no upgrade.
func postRenderersDigest(hr *syncv2.HelmRelease) string {
	if len(hr.Spec.PostRenderers) == 0 && hr.Spec.CommonMetadata == nil {
		return ""
	}
	return jsonDigest(struct {
		PostRenderers  []syncv2.PostRenderer  `json:"postRenderers,omitempty"`
		CommonMetadata *syncv1.CommonMetadata `json:"commonMetadata,omitempty"`
	}{hr.Spec.PostRenderers, hr.Spec.CommonMetadata})
}

// readManifest parses a release manifest. The kinds the hand-off looks
// at get the release namespace when they name none, as Helm's apply
// would give them.
func readManifest(manifest, namespace string) ([]*unstructured.Unstructured, error) {
	objs, err := utils.ReadObjects(bytes.NewBufferString(manifest))
	if err != nil {
		return nil, fmt.Errorf("read rendered manifests: %w", err)
	}
	for _, o := range objs {
		switch o.GetKind() {
		case "Deployment", "DaemonSet", "Service":
			if o.GetNamespace() == "" {
				o.SetNamespace(namespace)
			}
		}
	}
	return objs, nil
}

func writeManifest(objs []*unstructured.Unstructured) ([]byte, error) {
	var buf bytes.Buffer
	for _, o := range objs {
		data, err := yaml.Marshal(o.Object)
		if err != nil {
			return nil, fmt.Errorf("write %s %s: %w", o.GetKind(), o.GetName(), err)
		}
		buf.WriteString("---\n")
		buf.Write(data)
	}
	return buf.Bytes(), nil
}
