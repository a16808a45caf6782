package cli

import (
	"errors"
	"fmt"
	"regexp"
	"time"

	"github.com/Masterminds/semver/v3"
	"github.com/spf13/cobra"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	sourcev1 "sluice.dev/sluice/api/source/v1"
	"sluice.dev/sluice/pkg/source/oci"
)

// ociOptions are the flags of `create source oci`.
type ociOptions struct {
	name, url, secretRef, certSecretRef string
	tag, semVer, digest                 string
	interval                            time.Duration
	insecure                            bool
}

// ociDigest is the digest the OCIRepository API accepts.
var ociDigest = regexp.MustCompile(`^sha(256|384|512):[a-f0-9]{64,128}$`)

func (o ociOptions) validate() error {
	var errs []error
	if _, err := oci.ParseRepository(o.url, o.insecure); err != nil {
		errs = append(errs, fmt.Errorf("--url: %w", err))
	}
	if o.semVer != "" {
		if _, err := semver.NewConstraint(o.semVer); err != nil {
			errs = append(errs, fmt.Errorf("--tag-semver %q is not a semver range: %w", o.semVer, err))
		}
	}
	if o.digest != "" && !ociDigest.MatchString(o.digest) {
		errs = append(errs, fmt.Errorf("--digest %q must be sha256:<64 lowercase hex digits>", o.digest))
	}
	if err := validInterval("--interval", o.interval); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func (o ociOptions) object() *sourcev1.OCIRepository {
	repo := &sourcev1.OCIRepository{
		ObjectMeta: metav1.ObjectMeta{Name: o.name},
		Spec: sourcev1.OCIRepositorySpec{
			URL:       o.url,
			Interval:  metav1.Duration{Duration: o.interval},
			Reference: &sourcev1.OCIRepositoryRef{Tag: o.tag, SemVer: o.semVer, Digest: o.digest},
			Insecure:  o.insecure,
		},
	}
	if o.secretRef != "" {
		repo.Spec.SecretRef = &sourcev1.LocalObjectReference{Name: o.secretRef}
	}
	if o.certSecretRef != "" {
		repo.Spec.CertSecretRef = &sourcev1.LocalObjectReference{Name: o.certSecretRef}
	}
	return repo
}

func newCreateOCICmd(g *globals) *cobra.Command {
	var (
		f createFlags
		o ociOptions
	)
	k := ociRepositoryKind()
	cmd := &cobra.Command{
		Use:     "oci NAME --url oci://REGISTRY/PATH (--tag TAG | --tag-semver RANGE | --digest DIGEST)",
		Short:   "Create or update an OCIRepository",
		Example: "  sluicectl create source oci podinfo --url oci://ghcr.io/stefanprodan/manifests/podinfo --tag-semver '>=6.0.0' --interval 5m",
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
	fl.StringVar(&o.url, "url", "", "Repository of the artifact, oci://REGISTRY/PATH, without a tag.")
	fl.StringVar(&o.tag, "tag", "", "Tag to pull.")
	fl.StringVar(&o.semVer, "tag-semver", "", "Semver range over the tags; the highest match is pulled.")
	fl.StringVar(&o.digest, "digest", "", "Digest of the manifest to pull, sha256:<hex>.")
	fl.DurationVar(&o.interval, "interval", defaultInterval, "Interval between two checks for a new artifact.")
	fl.StringVar(&o.secretRef, "secret-ref", "", "Name of the Secret, in the same namespace, with the registry credentials (dockerconfigjson, or username and password).")
	fl.StringVar(&o.certSecretRef, "cert-ref", "", "Name of the Secret, in the same namespace, with ca.crt, tls.crt and tls.key for the registry.")
	fl.BoolVar(&o.insecure, "insecure", false, "Allow plain HTTP to the registry.")
	_ = cmd.MarkFlagRequired("url")
	cmd.MarkFlagsMutuallyExclusive("tag", "tag-semver", "digest")
	cmd.MarkFlagsOneRequired("tag", "tag-semver", "digest")
	return cmd
}
