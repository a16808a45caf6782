package cli

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/fluxcd/cli-utils/pkg/kstatus/status"
	"github.com/spf13/cobra"
	appsv1 "k8s.io/api/apps/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	apiextensionshelpers "k8s.io/apiextensions-apiserver/pkg/apihelpers"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/version"
	"k8s.io/client-go/discovery"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"sluice.dev/sluice/kustomize"
)

// MinKubernetes is the oldest Kubernetes version Sluice supports, as the
// Helm chart's kubeVersion says: the CRDs' validation rules use CEL
// functions (isSorted, url) that older API servers lack.
const MinKubernetes = "1.30.0"

func newCheckCmd(g *globals) *cobra.Command {
	var pre bool
	cmd := &cobra.Command{
		Use:   "check",
		Short: "Check that the cluster can run Sluice, or that Sluice runs on it",
		Long: `check prints a ✔ or ✗ line per check and fails when one fails.

With --pre it checks what an install needs: a Kubernetes version of at
least ` + MinKubernetes + `, and that the current user may create and patch each
kind of object sluicectl install applies (a SelfSubjectAccessReview each).

Without --pre it checks an installation: the Kubernetes version, that
each Sluice CRD is installed and Established, and that the operator
Deployment is Ready. The Deployment is looked up in the namespace the
install manifests name (sluice-system) unless --namespace names another,
as when the Helm chart installed it there.

It then reads the leases in that namespace: each operator replica records
on its lease the label selector of the objects it owns (--shard-key,
--watch-label-selector). When one is there, it lists the Canaries, the
sync objects and the notification objects of every namespace, and fails
naming each that no replica holding a live lease owns, and each that more
than one owns.`,
		Example: "  sluicectl check --pre\n  sluicectl check",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return g.check(cmd.Context(), pre)
		},
	}
	cmd.Flags().BoolVar(&pre, "pre", false, "Check the prerequisites of an install rather than an installation.")
	return cmd
}

// checks collects the outcome of each check as it prints it.
type checks struct {
	g      *globals
	failed []string
}

func (c *checks) report(ok bool, format string, args ...any) {
	line := fmt.Sprintf(format, args...)
	mark := "✔"
	if !ok {
		mark = "✗"
		c.failed = append(c.failed, line)
	}
	fmt.Fprintf(c.g.streams.Out, "%s %s\n", mark, line)
}

func (g *globals) check(parent context.Context, pre bool) error {
	ctx, cancel, timeout := g.withTimeout(parent, readTimeout)
	defer cancel()
	objs, err := kustomize.Build()
	if err != nil {
		return err
	}
	cs := &checks{g: g}
	if err := g.checkVersion(cs); err != nil {
		return err
	}
	c, err := g.kubeClient()
	if err != nil {
		return err
	}
	if pre {
		err = checkAccess(ctx, c, cs, objs)
	} else {
		err = g.checkInstallation(ctx, c, cs, objs)
	}
	if err != nil {
		if ctx.Err() != nil {
			return g.watchEnded(parent, ctx, timeout, "the checks")
		}
		return err
	}
	if len(cs.failed) > 0 {
		return &ExitError{Code: ExitFailure, Err: fmt.Errorf("%d checks failed: %s", len(cs.failed), strings.Join(cs.failed, "; "))}
	}
	fmt.Fprintln(g.streams.Out, "✔ all checks passed")
	return nil
}

// checkVersion compares the API server's version with MinKubernetes.
func (g *globals) checkVersion(cs *checks) error {
	cfg, err := g.restConfig()
	if err != nil {
		return err
	}
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return fmt.Errorf("create a discovery client for %s: %w", cfg.Host, err)
	}
	info, err := dc.ServerVersion()
	if err != nil {
		return fmt.Errorf("read the Kubernetes version of %s: %w", cfg.Host, err)
	}
	got, err := version.ParseGeneric(info.GitVersion)
	if err != nil {
		cs.report(false, "Kubernetes version %q cannot be parsed: %v", info.GitVersion, err)
		return nil
	}
	cs.report(got.AtLeast(version.MustParseGeneric(MinKubernetes)), "Kubernetes %s >= %s", got, MinKubernetes)
	return nil
}

// checkAccess asks, for each kind of object the install applies, whether
// the user may create and patch it (server-side apply needs both).
func checkAccess(ctx context.Context, c client.Client, cs *checks, objs []*unstructured.Unstructured) error {
	seen := map[string]bool{}
	for _, o := range objs {
		gvk := o.GroupVersionKind()
		mapping, err := c.RESTMapper().RESTMapping(gvk.GroupKind(), gvk.Version)
		if err != nil {
			return fmt.Errorf("find the resource of %s: %w", gvk.Kind, err)
		}
		ns := o.GetNamespace()
		what := mapping.Resource.GroupResource().String()
		if ns != "" {
			what += " in namespace " + ns
		}
		if seen[what] {
			continue
		}
		seen[what] = true
		var denied []string
		for _, verb := range []string{"create", "patch"} {
			review := &authorizationv1.SelfSubjectAccessReview{Spec: authorizationv1.SelfSubjectAccessReviewSpec{
				ResourceAttributes: &authorizationv1.ResourceAttributes{
					Namespace: ns,
					Verb:      verb,
					Group:     mapping.Resource.Group,
					Resource:  mapping.Resource.Resource,
				},
			}}
			if err := c.Create(ctx, review); err != nil {
				return fmt.Errorf("review access to %s %s: %w", verb, what, err)
			}
			if !review.Status.Allowed {
				denied = append(denied, verb)
			}
		}
		if len(denied) > 0 {
			cs.report(false, "cannot %s %s", strings.Join(denied, " or "), what)
			continue
		}
		cs.report(true, "can create and patch %s", what)
	}
	return nil
}

// checkInstallation checks the CRDs and the operator Deployments of the
// install manifests, then which objects the running replicas own.
func (g *globals) checkInstallation(ctx context.Context, c client.Client, cs *checks, objs []*unstructured.Unstructured) error {
	operatorNamespace := g.namespace
	for _, o := range objs {
		var err error
		switch o.GetKind() {
		case "CustomResourceDefinition":
			err = checkCRD(ctx, c, cs, o.GetName())
		case "Deployment":
			ns := o.GetNamespace()
			// The Helm chart installs into any namespace.
			if g.namespace != "" {
				ns = g.namespace
			}
			operatorNamespace = ns
			err = checkDeployment(ctx, c, cs, ns, o.GetName())
		}
		if err != nil {
			return err
		}
	}
	return checkShards(ctx, c, cs, operatorNamespace, time.Now())
}

func checkCRD(ctx context.Context, c client.Client, cs *checks, name string) error {
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(apiextensionsv1.SchemeGroupVersion.WithKind("CustomResourceDefinition"))
	err := c.Get(ctx, client.ObjectKey{Name: name}, u)
	if apierrors.IsNotFound(err) {
		cs.report(false, "CustomResourceDefinition %s is not installed", name)
		return nil
	}
	if err != nil {
		return fmt.Errorf("read CustomResourceDefinition %s: %w", name, err)
	}
	crd := &apiextensionsv1.CustomResourceDefinition{}
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, crd); err != nil {
		return fmt.Errorf("decode CustomResourceDefinition %s: %w", name, err)
	}
	if !apiextensionshelpers.IsCRDConditionTrue(crd, apiextensionsv1.Established) {
		msg := "no Established condition yet"
		if cond := apiextensionshelpers.FindCRDCondition(crd, apiextensionsv1.Established); cond != nil {
			msg = cond.Message
		}
		cs.report(false, "CustomResourceDefinition %s is not established: %s", name, msg)
		return nil
	}
	cs.report(true, "CustomResourceDefinition %s is established", name)
	return nil
}

// checkDeployment tells whether the Deployment is Ready by kstatus: the
// rollout of its current generation is complete and available.
func checkDeployment(ctx context.Context, c client.Client, cs *checks, ns, name string) error {
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(appsv1.SchemeGroupVersion.WithKind("Deployment"))
	err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, u)
	if apierrors.IsNotFound(err) {
		cs.report(false, "operator Deployment %s/%s not found; run sluicectl install, or name its namespace with --namespace", ns, name)
		return nil
	}
	if err != nil {
		return fmt.Errorf("read Deployment %s/%s: %w", ns, name, err)
	}
	res, err := status.Compute(u)
	if err != nil {
		return fmt.Errorf("compute the status of Deployment %s/%s: %w", ns, name, err)
	}
	if res.Status != status.CurrentStatus {
		cs.report(false, "operator Deployment %s/%s is not ready (%s): %s", ns, name, res.Status, res.Message)
		return nil
	}
	cs.report(true, "operator Deployment %s/%s is ready", ns, name)
	return nil
}
