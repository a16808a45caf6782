package build

import (
	"sigs.k8s.io/kustomize/api/types"
	"sigs.k8s.io/kustomize/kyaml/resid"

	syncv1 "sluice.dev/sluice/api/sync/v1"
)

// PatchesAndImages turns the API's patches and image overrides, shared by
// Kustomizations and HelmRelease post-renderers, into kustomize's.
func PatchesAndImages(patches []syncv1.Patch, images []syncv1.Image) ([]types.Patch, []types.Image) {
	var ps []types.Patch
	for _, p := range patches {
		patch := types.Patch{Patch: p.Patch}
		if t := p.Target; t != nil {
			patch.Target = &types.Selector{
				ResId:              resid.ResId{Gvk: resid.Gvk{Group: t.Group, Version: t.Version, Kind: t.Kind}, Name: t.Name, Namespace: t.Namespace},
				AnnotationSelector: t.AnnotationSelector,
				LabelSelector:      t.LabelSelector,
			}
		}
		ps = append(ps, patch)
	}
	var is []types.Image
	for _, img := range images {
		is = append(is, types.Image{Name: img.Name, NewName: img.NewName, NewTag: img.NewTag, Digest: img.Digest})
	}
	return ps, is
}
