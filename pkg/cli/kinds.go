package cli

import (
	"context"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"sigs.k8s.io/controller-runtime/pkg/client"

	imagev1 "sluice.dev/sluice/api/image/v1"
	sourcev1 "sluice.dev/sluice/api/source/v1"
	syncv1 "sluice.dev/sluice/api/sync/v1"
	syncv2 "sluice.dev/sluice/api/sync/v2"
	sluicev1beta1 "sluice.dev/sluice/api/v1beta1"
)

// kind is one of the operator's kinds the commands read.
type kind struct {
	// name is the Kind, as messages show it.
	name      string
	newObject func() client.Object
	newList   func() client.ObjectList
}

func canaryKind() kind {
	return kind{
		name:      "Canary",
		newObject: func() client.Object { return &sluicev1beta1.Canary{} },
		newList:   func() client.ObjectList { return &sluicev1beta1.CanaryList{} },
	}
}

// syncKind is a kind of the sync core: it has spec.suspend and answers
// the reconcile request annotation.
type syncKind struct {
	kind
	// use and aliases name it on the command line.
	use     string
	aliases []string
}

// sourceKinds are the kinds under `source` on the command line.
func sourceKinds() []syncKind {
	return []syncKind{
		{
			kind: kind{
				name:      "GitRepository",
				newObject: func() client.Object { return &sourcev1.GitRepository{} },
				newList:   func() client.ObjectList { return &sourcev1.GitRepositoryList{} },
			},
			use: "git",
		},
		{
			kind: kind{
				name:      "HelmRepository",
				newObject: func() client.Object { return &sourcev1.HelmRepository{} },
				newList:   func() client.ObjectList { return &sourcev1.HelmRepositoryList{} },
			},
			use: "helm",
		},
		{
			kind: kind{
				name:      "HelmChart",
				newObject: func() client.Object { return &sourcev1.HelmChart{} },
				newList:   func() client.ObjectList { return &sourcev1.HelmChartList{} },
			},
			use: "chart",
		},
		ociRepositoryKind(),
		{
			kind: kind{
				name:      "Bucket",
				newObject: func() client.Object { return &sourcev1.Bucket{} },
				newList:   func() client.ObjectList { return &sourcev1.BucketList{} },
			},
			use: "bucket",
		},
	}
}

func ociRepositoryKind() syncKind {
	return syncKind{
		kind: kind{
			name:      "OCIRepository",
			newObject: func() client.Object { return &sourcev1.OCIRepository{} },
			newList:   func() client.ObjectList { return &sourcev1.OCIRepositoryList{} },
		},
		use: "oci",
	}
}

// imageKinds are the kinds under `image` on the command line that
// reconcile, suspend and resume act on.
func imageKinds() []syncKind {
	return []syncKind{
		{
			kind: kind{
				name:      "ImageRepository",
				newObject: func() client.Object { return &imagev1.ImageRepository{} },
				newList:   func() client.ObjectList { return &imagev1.ImageRepositoryList{} },
			},
			use: "repository",
		},
		{
			kind: kind{
				name:      "ImageUpdateAutomation",
				newObject: func() client.Object { return &imagev1.ImageUpdateAutomation{} },
				newList:   func() client.ObjectList { return &imagev1.ImageUpdateAutomationList{} },
			},
			use: "update",
		},
	}
}

// imagePolicyKind has no suspend: `get images` lists it beside the
// others.
func imagePolicyKind() syncKind {
	return syncKind{
		kind: kind{
			name:      "ImagePolicy",
			newObject: func() client.Object { return &imagev1.ImagePolicy{} },
			newList:   func() client.ObjectList { return &imagev1.ImagePolicyList{} },
		},
		use: "policy",
	}
}

func kustomizationKind() syncKind {
	return syncKind{
		kind: kind{
			name:      "Kustomization",
			newObject: func() client.Object { return &syncv1.Kustomization{} },
			newList:   func() client.ObjectList { return &syncv1.KustomizationList{} },
		},
		use:     "kustomization",
		aliases: []string{"ks"},
	}
}

func helmReleaseKind() syncKind {
	return syncKind{
		kind: kind{
			name:      "HelmRelease",
			newObject: func() client.Object { return &syncv2.HelmRelease{} },
			newList:   func() client.ObjectList { return &syncv2.HelmReleaseList{} },
		},
		use:     "helmrelease",
		aliases: []string{"hr"},
	}
}

// getObject reads the object of kind k named name in namespace ns. When it
// does not exist, the error names the close matches.
func getObject(ctx context.Context, c client.Client, k kind, ns, name string) (client.Object, error) {
	obj := k.newObject()
	err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, obj)
	if apierrors.IsNotFound(err) {
		return nil, notFound(ctx, c, k, ns, name, err)
	}
	if err != nil {
		return nil, fmt.Errorf("get %s %s/%s: %w", k.name, ns, name, err)
	}
	return obj, nil
}

// notFound builds the NotFoundError for name. The names are best effort:
// when they cannot be listed, the error just has none.
func notFound(ctx context.Context, c client.Client, k kind, ns, name string, err error) error {
	names, _ := listNames(ctx, c, k, ns)
	return &NotFoundError{Kind: k.name, Namespace: ns, Name: name, Suggestions: closeMatches(name, names), Err: err}
}

// listObjects lists the objects of kind k in ns, or in every namespace
// when ns is empty.
func listObjects(ctx context.Context, c client.Client, k kind, ns string) ([]client.Object, error) {
	list := k.newList()
	if err := c.List(ctx, list, client.InNamespace(ns)); err != nil {
		where := "every namespace"
		if ns != "" {
			where = "namespace " + ns
		}
		return nil, fmt.Errorf("list %s objects in %s: %w", k.name, where, err)
	}
	items, err := meta.ExtractList(list)
	if err != nil {
		return nil, fmt.Errorf("read the %s list: %w", k.name, err)
	}
	objs := make([]client.Object, 0, len(items))
	for _, item := range items {
		obj, ok := item.(client.Object)
		if !ok {
			return nil, fmt.Errorf("the %s list holds a %T", k.name, item)
		}
		objs = append(objs, obj)
	}
	return objs, nil
}

func listNames(ctx context.Context, c client.Client, k kind, ns string) ([]string, error) {
	objs, err := listObjects(ctx, c, k, ns)
	if err != nil {
		return nil, err
	}
	names := make([]string, len(objs))
	for i, o := range objs {
		names[i] = o.GetName()
	}
	return names, nil
}
