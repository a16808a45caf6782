package build

import (
	"context"
	"fmt"
	"maps"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	k8stypes "k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
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

// Variables merges the postBuild substituteFrom, in order, under
// substitute, reading the ConfigMaps and Secrets through c.
func Variables(ctx context.Context, c client.Reader, ks *syncv1.Kustomization) (map[string]string, error) {
	pb := ks.Spec.PostBuild
	if pb == nil {
		return nil, nil
	}
	vars := map[string]string{}
	for i, ref := range pb.SubstituteFrom {
		data, err := substituteData(ctx, c, ks.Namespace, ref)
		if err != nil {
			return nil, fmt.Errorf("spec.postBuild.substituteFrom[%d]: %s %s: %w", i, ref.Kind, ref.Name, err)
		}
		maps.Copy(vars, data)
	}
	maps.Copy(vars, pb.Substitute)
	return vars, nil
}

// substituteData reads the variables of a ConfigMap or Secret; a missing
// optional one has none.
func substituteData(ctx context.Context, c client.Reader, namespace string, ref syncv1.SubstituteReference) (map[string]string, error) {
	key := k8stypes.NamespacedName{Namespace: namespace, Name: ref.Name}
	get := func(obj client.Object) error {
		if err := c.Get(ctx, key, obj); err != nil && (!apierrors.IsNotFound(err) || !ref.Optional) {
			return err
		}
		return nil
	}
	if ref.Kind == "Secret" {
		secret := &corev1.Secret{}
		if err := get(secret); err != nil {
			return nil, err
		}
		data := map[string]string{}
		for k, v := range secret.Data {
			data[k] = string(v)
		}
		return data, nil
	}
	cm := &corev1.ConfigMap{}
	if err := get(cm); err != nil {
		return nil, err
	}
	return cm.Data, nil
}

// ForKustomization turns the spec into build options, with the variables
// of Variables.
func ForKustomization(ks *syncv1.Kustomization, vars map[string]string) Options {
	opts := Options{Path: ks.Spec.Path, TargetNamespace: ks.Spec.TargetNamespace, Components: ks.Spec.Components, Substitute: vars}
	opts.NamePrefix, opts.NameSuffix = ks.Spec.NamePrefix, ks.Spec.NameSuffix
	if m := ks.Spec.CommonMetadata; m != nil {
		opts.Labels, opts.Annotations = m.Labels, m.Annotations
	}
	opts.Patches, opts.Images = PatchesAndImages(ks.Spec.Patches, ks.Spec.Images)
	opts.IgnoreMissingComponents = ks.Spec.IgnoreMissingComponents
	opts.SubstituteAlways = ks.Spec.PostBuild != nil && ks.Spec.PostBuild.SubstituteStrategy == syncv1.SubstituteAlways
	for _, m := range ks.Spec.BuildMetadata {
		opts.BuildMetadata = append(opts.BuildMetadata, string(m))
	}
	return opts
}
