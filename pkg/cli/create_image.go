package cli

import (
	"errors"
	"fmt"
	"regexp"
	"text/template"
	"time"

	"github.com/Masterminds/semver/v3"
	"github.com/spf13/cobra"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	imagev1 "sluice.dev/sluice/api/image/v1"
)

func newCreateImageCmd(g *globals) *cobra.Command {
	cmd := groupCmd("image", "Create or update an ImageRepository, ImagePolicy or ImageUpdateAutomation")
	cmd.Aliases = []string{"images"}
	cmd.AddCommand(newCreateImageRepositoryCmd(g), newCreateImagePolicyCmd(g), newCreateImageUpdateCmd(g))
	return cmd
}

// imageRepositoryOptions are the flags of `create image repository`.
type imageRepositoryOptions struct {
	name, image, secretRef, certSecretRef string
	interval, timeout                     time.Duration
	insecure                              bool
	exclusions                            []string
}

func (o imageRepositoryOptions) validate() error {
	var errs []error
	if o.image == "" {
		errs = append(errs, errors.New("--image is required"))
	}
	if err := validInterval("--interval", o.interval); err != nil {
		errs = append(errs, err)
	}
	if o.timeout < 0 {
		errs = append(errs, fmt.Errorf("--timeout %s must not be negative", o.timeout))
	}
	for _, e := range o.exclusions {
		if _, err := regexp.Compile(e); err != nil {
			errs = append(errs, fmt.Errorf("--exclusion-list %q is not a regular expression: %w", e, err))
		}
	}
	return errors.Join(errs...)
}

func (o imageRepositoryOptions) object() *imagev1.ImageRepository {
	r := &imagev1.ImageRepository{
		ObjectMeta: metav1.ObjectMeta{Name: o.name},
		Spec: imagev1.ImageRepositorySpec{
			Image: o.image, Interval: metav1.Duration{Duration: o.interval}, Insecure: o.insecure, ExclusionList: o.exclusions,
		},
	}
	if o.timeout > 0 {
		r.Spec.Timeout = &metav1.Duration{Duration: o.timeout}
	}
	if o.secretRef != "" {
		r.Spec.SecretRef = &imagev1.LocalObjectReference{Name: o.secretRef}
	}
	if o.certSecretRef != "" {
		r.Spec.CertSecretRef = &imagev1.LocalObjectReference{Name: o.certSecretRef}
	}
	return r
}

func newCreateImageRepositoryCmd(g *globals) *cobra.Command {
	var (
		f createFlags
		o imageRepositoryOptions
	)
	k := imageKinds()[0]
	cmd := &cobra.Command{
		Use:     "repository NAME --image IMAGE",
		Short:   "Create or update an ImageRepository",
		Example: "  sluicectl create image repository podinfo --image ghcr.io/stefanprodan/podinfo --interval 5m",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.name = args[0]
			if err := o.validate(); err != nil {
				return err
			}
			return g.create(cmd.Context(), f, o.object(), &k)
		},
	}
	f.add(cmd, true)
	fl := cmd.Flags()
	fl.StringVar(&o.image, "image", "", "Image to scan, without a tag: registry host, optional port, and path.")
	fl.DurationVar(&o.interval, "interval", defaultInterval, "Interval between two scans.")
	fl.DurationVar(&o.timeout, "timeout", 0, "Timeout of one scan; the interval when unset.")
	fl.StringVar(&o.secretRef, "secret-ref", "", "Name of a docker-config Secret, in the same namespace, with the registry's credentials.")
	fl.StringVar(&o.certSecretRef, "cert-secret-ref", "", "Name of a Secret with ca.crt, and tls.crt with tls.key, for the registry's TLS.")
	fl.BoolVar(&o.insecure, "insecure", false, "Allow plain HTTP.")
	fl.StringSliceVar(&o.exclusions, "exclusion-list", nil, "Regular expressions of tags to leave out (default ^.*\\.sig$).")
	return cmd
}

// imagePolicyOptions are the flags of `create image policy`.
type imagePolicyOptions struct {
	name, repository                string
	semver, alphabetical, numerical string
	filterPattern, filterExtract    string
}

func (o imagePolicyOptions) validate() error {
	var errs []error
	if o.repository == "" {
		errs = append(errs, errors.New("--image-ref is required"))
	}
	set := 0
	for _, v := range []string{o.semver, o.alphabetical, o.numerical} {
		if v != "" {
			set++
		}
	}
	if set != 1 {
		errs = append(errs, errors.New("set exactly one of --select-semver, --select-alpha and --select-numeric"))
	}
	if o.semver != "" {
		if _, err := semver.NewConstraint(o.semver); err != nil {
			errs = append(errs, fmt.Errorf("--select-semver %q is not a semver range: %w", o.semver, err))
		}
	}
	for flag, v := range map[string]string{"--select-alpha": o.alphabetical, "--select-numeric": o.numerical} {
		if v != "" && v != "asc" && v != "desc" {
			errs = append(errs, fmt.Errorf("%s %q must be asc or desc", flag, v))
		}
	}
	if o.filterPattern != "" {
		if _, err := regexp.Compile(o.filterPattern); err != nil {
			errs = append(errs, fmt.Errorf("--filter-regex %q is not a regular expression: %w", o.filterPattern, err))
		}
	}
	if o.filterExtract != "" && o.filterPattern == "" {
		errs = append(errs, errors.New("--filter-extract needs --filter-regex"))
	}
	return errors.Join(errs...)
}

func (o imagePolicyOptions) object() *imagev1.ImagePolicy {
	p := &imagev1.ImagePolicy{
		ObjectMeta: metav1.ObjectMeta{Name: o.name},
		Spec:       imagev1.ImagePolicySpec{ImageRepositoryRef: imagev1.NamespacedObjectReference{Name: o.repository}},
	}
	switch {
	case o.semver != "":
		p.Spec.Policy.SemVer = &imagev1.SemVerPolicy{Range: o.semver}
	case o.alphabetical != "":
		p.Spec.Policy.Alphabetical = &imagev1.AlphabeticalPolicy{Order: o.alphabetical}
	case o.numerical != "":
		p.Spec.Policy.Numerical = &imagev1.NumericalPolicy{Order: o.numerical}
	}
	if o.filterPattern != "" {
		p.Spec.FilterTags = &imagev1.TagFilter{Pattern: o.filterPattern, Extract: o.filterExtract}
	}
	return p
}

func newCreateImagePolicyCmd(g *globals) *cobra.Command {
	var (
		f createFlags
		o imagePolicyOptions
	)
	cmd := &cobra.Command{
		Use:     "policy NAME --image-ref REPOSITORY (--select-semver RANGE | --select-alpha ORDER | --select-numeric ORDER)",
		Short:   "Create or update an ImagePolicy",
		Example: "  sluicectl create image policy podinfo --image-ref podinfo --select-semver '>=1.0.0 <2.0.0'",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.name = args[0]
			if err := o.validate(); err != nil {
				return err
			}
			// A policy answers no reconcile request: nothing to wait on.
			return g.create(cmd.Context(), f, o.object(), nil)
		},
	}
	f.add(cmd, false)
	fl := cmd.Flags()
	fl.StringVar(&o.repository, "image-ref", "", "Name of the ImageRepository, in the same namespace.")
	fl.StringVar(&o.semver, "select-semver", "", "Semver range; the highest matching version is chosen.")
	fl.StringVar(&o.alphabetical, "select-alpha", "", "Order tags alphabetically, asc or desc; the last is chosen.")
	fl.StringVar(&o.numerical, "select-numeric", "", "Order tags as numbers, asc or desc; the last is chosen.")
	fl.StringVar(&o.filterPattern, "filter-regex", "", "Regular expression tags must match.")
	fl.StringVar(&o.filterExtract, "filter-extract", "", "Value to order by, from the regular expression's groups, such as $ts.")
	return cmd
}

// imageUpdateOptions are the flags of `create image update`.
type imageUpdateOptions struct {
	name, source, path                       string
	checkoutBranch, pushBranch               string
	authorName, authorEmail, messageTemplate string
	onCanaryFailure                          string
	interval                                 time.Duration
}

func (o imageUpdateOptions) validate() error {
	var errs []error
	if o.source == "" {
		errs = append(errs, errors.New("--git-repo-ref is required"))
	}
	if o.authorEmail == "" {
		errs = append(errs, errors.New("--author-email is required"))
	}
	if err := validInterval("--interval", o.interval); err != nil {
		errs = append(errs, err)
	}
	if o.messageTemplate != "" {
		if _, err := template.New("message").Parse(o.messageTemplate); err != nil {
			errs = append(errs, fmt.Errorf("--commit-template: %w", err))
		}
	}
	if o.onCanaryFailure != imagev1.CanaryFailureIgnore && o.onCanaryFailure != imagev1.CanaryFailureRevert {
		errs = append(errs, fmt.Errorf("--on-canary-failure %q must be %s or %s", o.onCanaryFailure, imagev1.CanaryFailureIgnore, imagev1.CanaryFailureRevert))
	}
	return errors.Join(errs...)
}

func (o imageUpdateOptions) object() *imagev1.ImageUpdateAutomation {
	a := &imagev1.ImageUpdateAutomation{
		ObjectMeta: metav1.ObjectMeta{Name: o.name},
		Spec: imagev1.ImageUpdateAutomationSpec{
			SourceRef: imagev1.CrossNamespaceSourceReference{Kind: "GitRepository", Name: o.source},
			Interval:  metav1.Duration{Duration: o.interval},
			GitSpec: &imagev1.GitSpec{Commit: imagev1.CommitSpec{
				Author:          imagev1.CommitUser{Name: o.authorName, Email: o.authorEmail},
				MessageTemplate: o.messageTemplate,
			}},
			Update:          &imagev1.UpdateStrategy{Strategy: imagev1.UpdateStrategySetters, Path: o.path},
			OnCanaryFailure: o.onCanaryFailure,
		},
	}
	if o.checkoutBranch != "" {
		a.Spec.GitSpec.Checkout = &imagev1.GitCheckoutSpec{Reference: imagev1.GitRepositoryRef{Branch: o.checkoutBranch}}
	}
	if o.pushBranch != "" {
		a.Spec.GitSpec.Push = &imagev1.PushSpec{Branch: o.pushBranch}
	}
	return a
}

func newCreateImageUpdateCmd(g *globals) *cobra.Command {
	var (
		f createFlags
		o imageUpdateOptions
	)
	k := imageKinds()[1]
	cmd := &cobra.Command{
		Use:   "update NAME --git-repo-ref GITREPOSITORY --author-email EMAIL",
		Short: "Create or update an ImageUpdateAutomation",
		Example: "  sluicectl create image update apps --git-repo-ref flux-system --git-repo-path ./clusters/prod \\\n" +
			"    --checkout-branch main --push-branch main --author-name sluice --author-email sluice@example.com --on-canary-failure Revert",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.name = args[0]
			if err := o.validate(); err != nil {
				return err
			}
			return g.create(cmd.Context(), f, o.object(), &k)
		},
	}
	f.add(cmd, true)
	fl := cmd.Flags()
	fl.StringVar(&o.source, "git-repo-ref", "", "Name of the GitRepository to update, in the same namespace.")
	fl.StringVar(&o.path, "git-repo-path", "", "Folder to update, relative to the repository's root; the whole repository when empty.")
	fl.StringVar(&o.checkoutBranch, "checkout-branch", "", "Branch to check out; the GitRepository's when empty.")
	fl.StringVar(&o.pushBranch, "push-branch", "", "Branch to push to; the checked-out branch when empty.")
	fl.StringVar(&o.authorName, "author-name", "", "Name of the commits' author.")
	fl.StringVar(&o.authorEmail, "author-email", "", "Email of the commits' author.")
	fl.StringVar(&o.messageTemplate, "commit-template", "", "Go template of the commit message.")
	fl.StringVar(&o.onCanaryFailure, "on-canary-failure", imagev1.CanaryFailureIgnore, "What to do when a Canary rolls back a tag this automation wrote: Ignore, or Revert to write the last promoted tag back.")
	fl.DurationVar(&o.interval, "interval", defaultInterval, "Interval between two runs.")
	return cmd
}
