package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/spf13/cobra"

	"sluice.dev/sluice/pkg/source/oci"
)

// The artifact commands write and read OCI artifacts in Flux's layout,
// so that `flux pull artifact` and an OCIRepository read what
// `sluicectl push artifact` writes, and the other way round. They talk to
// the registry only, never to the cluster.

func newPushCmd(g *globals) *cobra.Command {
	cmd := groupCmd("push", "Push an OCI artifact to a container registry")
	cmd.AddCommand(newPushArtifactCmd(g))
	return cmd
}

func newPullCmd(g *globals) *cobra.Command {
	cmd := groupCmd("pull", "Pull an OCI artifact from a container registry")
	cmd.AddCommand(newPullArtifactCmd(g))
	return cmd
}

func newTagCmd(g *globals) *cobra.Command {
	cmd := groupCmd("tag", "Tag an OCI artifact in a container registry")
	cmd.AddCommand(newTagArtifactCmd(g))
	return cmd
}

// registryFlags say how every artifact command reaches the registry.
type registryFlags struct {
	creds    string
	insecure bool
}

func (f *registryFlags) add(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.creds, "creds", "", "Registry credentials as USERNAME:PASSWORD; without it, those of the Docker config (~/.docker/config.json) for the registry, if any.")
	cmd.Flags().BoolVar(&f.insecure, "insecure-registry", false, "Allow plain HTTP to the registry.")
}

func (f registryFlags) validate() error {
	if f.creds != "" && !strings.Contains(f.creds, ":") {
		return errors.New("--creds must be USERNAME:PASSWORD")
	}
	return nil
}

func (f registryFlags) remote() oci.Remote {
	r := oci.Remote{Insecure: f.insecure, Keychain: authn.DefaultKeychain}
	if user, pass, ok := strings.Cut(f.creds, ":"); ok {
		r.Auth = &authn.Basic{Username: user, Password: pass}
	}
	return r
}

// validArtifactURL checks an oci://<registry>/<path>:<tag> argument; with
// digestOK, @<digest> will do too.
func validArtifactURL(url string, digestOK bool) (name.Reference, error) {
	ref, err := oci.ParseReference(url, false)
	if err != nil {
		return nil, err
	}
	if _, isTag := ref.(name.Tag); !isTag && !digestOK {
		return nil, fmt.Errorf("%q must name a tag, oci://<registry>/<path>:<tag>", url)
	}
	return ref, nil
}

// pushOptions are the flags of `push artifact`.
type pushOptions struct {
	reg                         registryFlags
	url, path, source, revision string
	ignore                      []string
}

func (o pushOptions) validate() error {
	var errs []error
	if _, err := validArtifactURL(o.url, false); err != nil {
		errs = append(errs, err)
	}
	if _, err := os.Stat(o.path); err != nil {
		errs = append(errs, fmt.Errorf("--path: %w", err))
	}
	if strings.TrimSpace(o.source) == "" {
		errs = append(errs, errors.New("--source must not be empty"))
	}
	if strings.TrimSpace(o.revision) == "" {
		errs = append(errs, errors.New("--revision must not be empty"))
	}
	if err := o.reg.validate(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// run packs the files and pushes them, and returns the manifest digest.
func (o pushOptions) run(ctx context.Context) (string, error) {
	layer, err := oci.Pack(o.path, o.ignore)
	if err != nil {
		return "", err
	}
	return oci.Push(ctx, o.reg.remote(), o.url, layer, oci.Metadata{Source: o.source, Revision: o.revision})
}

func newPushArtifactCmd(g *globals) *cobra.Command {
	var o pushOptions
	cmd := &cobra.Command{
		Use:   "artifact oci://REGISTRY/PATH:TAG --path DIR --source URL --revision REVISION",
		Short: "Push a folder's files as an OCI artifact, as flux push artifact does",
		Long: `push artifact packs the files of --path (a folder, or one file) into a
tar+gzip layer and pushes it with Flux's media types, and --source and
--revision in the manifest's annotations: an OCIRepository, and flux pull
artifact, read it. Git metadata and binary media are left out unless
--ignore-paths says otherwise.`,
		Example: "  sluicectl push artifact oci://ghcr.io/org/manifests/app:$(git rev-parse --short HEAD) --path ./deploy \\\n" +
			"    --source \"$(git config --get remote.origin.url)\" --revision \"$(git branch --show-current)@sha1:$(git rev-parse HEAD)\"",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.url = args[0]
			if err := o.validate(); err != nil {
				return err
			}
			ctx, cancel, _ := g.withTimeout(cmd.Context(), readTimeout)
			defer cancel()
			digest, err := o.run(ctx)
			if err != nil {
				return err
			}
			_, err = fmt.Fprintf(g.streams.Out, "%s pushed: %s\n", o.url, digest)
			return err
		},
	}
	o.reg.add(cmd)
	fl := cmd.Flags()
	fl.StringVar(&o.path, "path", "", "Folder (or file) to push.")
	fl.StringVar(&o.source, "source", "", "Where the files come from, e.g. the Git URL (annotation "+oci.SourceAnnotation+").")
	fl.StringVar(&o.revision, "revision", "", "Which version of them, e.g. main@sha1:<commit> (annotation "+oci.RevisionAnnotation+").")
	fl.StringSliceVar(&o.ignore, "ignore-paths", oci.DefaultPushIgnore(), "Paths to leave out, in .gitignore format; repeat or separate with commas.")
	_ = cmd.MarkFlagRequired("path")
	_ = cmd.MarkFlagRequired("source")
	_ = cmd.MarkFlagRequired("revision")
	return cmd
}

// pullOptions are the flags of `pull artifact`.
type pullOptions struct {
	reg         registryFlags
	url, output string
}

func (o pullOptions) validate() error {
	var errs []error
	if _, err := validArtifactURL(o.url, true); err != nil {
		errs = append(errs, err)
	}
	if o.output == "" {
		errs = append(errs, errors.New("--output must not be empty"))
	}
	if err := o.reg.validate(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// run pulls the artifact's first layer, as flux pull artifact does, and
// writes its files under the output folder.
func (o pullOptions) run(ctx context.Context) (*oci.Artifact, error) {
	ref, err := oci.ParseReference(o.url, o.reg.insecure)
	if err != nil {
		return nil, err
	}
	opts := oci.FetchOptions{URL: oci.Scheme + ref.Context().Name(), Remote: o.reg.remote(), Copy: true}
	switch r := ref.(type) {
	case name.Tag:
		opts.Ref.Tag = r.TagStr()
	case name.Digest:
		opts.Ref.Digest = r.DigestStr()
	}
	a, err := oci.Fetch(ctx, opts)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(o.output, 0o755); err != nil {
		return nil, fmt.Errorf("--output: %w", err)
	}
	return a, oci.WriteFiles(o.output, a.Files)
}

func newPullArtifactCmd(g *globals) *cobra.Command {
	var o pullOptions
	cmd := &cobra.Command{
		Use:   "artifact oci://REGISTRY/PATH:TAG --output DIR",
		Short: "Pull an OCI artifact's files into a folder, as flux pull artifact does",
		Long: `pull artifact downloads the artifact's first layer, a tar+gzip, and writes
its files under --output, creating the folder if needed. It prints the
revision pulled and the source and revision the artifact records.`,
		Example: "  sluicectl pull artifact oci://ghcr.io/org/manifests/app:1.0.0 --output ./app",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.url = args[0]
			if err := o.validate(); err != nil {
				return err
			}
			ctx, cancel, _ := g.withTimeout(cmd.Context(), readTimeout)
			defer cancel()
			a, err := o.run(ctx)
			if err != nil {
				return err
			}
			_, err = fmt.Fprintf(g.streams.Out, "%s pulled into %s: revision %s, source %q, source revision %q\n",
				o.url, o.output, a.Revision, a.Annotations[oci.SourceAnnotation], a.Annotations[oci.RevisionAnnotation])
			return err
		},
	}
	o.reg.add(cmd)
	// It shadows the global --output (the format of tables), as in flux
	// pull artifact: this command prints no table.
	cmd.Flags().StringVar(&o.output, "output", "", "Folder to write the files to.")
	_ = cmd.MarkFlagRequired("output")
	return cmd
}

// tagOptions are the flags of `tag artifact`.
type tagOptions struct {
	reg  registryFlags
	url  string
	tags []string
}

func (o tagOptions) validate() error {
	var errs []error
	ref, err := validArtifactURL(o.url, true)
	if err != nil {
		errs = append(errs, err)
	}
	if len(o.tags) == 0 {
		errs = append(errs, errors.New("--tag is required"))
	}
	for _, t := range o.tags {
		if ref == nil {
			break
		}
		if _, err := name.NewTag(ref.Context().Name() + ":" + t); err != nil {
			errs = append(errs, fmt.Errorf("--tag %q is not a valid tag: %w", t, err))
		}
	}
	if err := o.reg.validate(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func newTagArtifactCmd(g *globals) *cobra.Command {
	var o tagOptions
	cmd := &cobra.Command{
		Use:     "artifact oci://REGISTRY/PATH:TAG --tag NEW",
		Short:   "Give an OCI artifact more tags, as flux tag artifact does",
		Example: "  sluicectl tag artifact oci://ghcr.io/org/manifests/app:1.0.0 --tag stable",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.url = args[0]
			if err := o.validate(); err != nil {
				return err
			}
			ctx, cancel, _ := g.withTimeout(cmd.Context(), readTimeout)
			defer cancel()
			for _, t := range o.tags {
				digest, err := oci.Tag(ctx, o.reg.remote(), o.url, t)
				if err != nil {
					return err
				}
				if _, err := fmt.Fprintf(g.streams.Out, "%s tagged %s: %s\n", o.url, t, digest); err != nil {
					return err
				}
			}
			return nil
		},
	}
	o.reg.add(cmd)
	cmd.Flags().StringSliceVar(&o.tags, "tag", nil, "Tag to add; repeat or separate with commas.")
	_ = cmd.MarkFlagRequired("tag")
	return cmd
}
