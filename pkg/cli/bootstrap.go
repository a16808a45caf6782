package cli

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/fluxcd/cli-utils/pkg/object"
	"github.com/fluxcd/pkg/ssa"
	"github.com/spf13/cobra"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	sourcev1 "sluice.dev/sluice/api/source/v1"
	syncv1 "sluice.dev/sluice/api/sync/v1"
	"sluice.dev/sluice/kustomize"
	"sluice.dev/sluice/pkg/manual"
	gitsource "sluice.dev/sluice/pkg/source/git"
)

// bootstrapTimeout bounds a bootstrap, Git steps and waits included,
// when --timeout is not given: Flux's default.
const bootstrapTimeout = 5 * time.Minute

func newBootstrapCmd(g *globals, version string) *cobra.Command {
	cmd := groupCmd("bootstrap", "Install Sluice on a cluster that then manages itself from a Git repository")
	cmd.AddCommand(newBootstrapGitCmd(g, version))
	return cmd
}

// bootstrapOptions are the flags of `bootstrap git`.
type bootstrapOptions struct {
	url, branch, path, secretName string
	interval                      time.Duration
	username, password            string
	bearerToken                   bool
	privateKeyFile                string
	knownHostsFile                string
	allowInsecureHTTP             bool
	authorName, authorEmail       string
	messageAppendix               string
	noWait                        bool
}

// syncURL is the URL that both the push and the GitRepository use: an
// ssh URL that names no user gets --username, so that the operator, which
// connects as the URL's user (else git), fetches as the user that pushed.
func (o bootstrapOptions) syncURL() string {
	u, err := url.Parse(o.url)
	if err != nil || u.Scheme != "ssh" || u.User != nil || o.username == "" {
		return o.url
	}
	u.User = url.User(o.username)
	return u.String()
}

func (o bootstrapOptions) validate() error {
	if err := validURL("--url", o.url, "http", "https", "ssh"); err != nil {
		return err
	}
	u, _ := url.Parse(o.url)
	if u.Scheme == "http" && !o.allowInsecureHTTP {
		return fmt.Errorf("--url %q is plain http, which sends the credentials unencrypted: pass --allow-insecure-http to allow it", o.url)
	}
	if u.Scheme == "ssh" {
		if o.privateKeyFile == "" {
			return fmt.Errorf("--url %q is an ssh URL: it needs --private-key-file", o.url)
		}
		if o.bearerToken {
			return errors.New("--with-bearer-token is for http(s) URLs; an ssh URL authenticates with --private-key-file")
		}
	} else {
		if o.privateKeyFile != "" || o.knownHostsFile != "" {
			return fmt.Errorf("--private-key-file and --known-hosts-file are for ssh URLs; --url %q is %s", o.url, u.Scheme)
		}
		if o.bearerToken && o.password == "" {
			return errors.New("--with-bearer-token sends --password as the bearer token: give --password")
		}
	}
	if u.User != nil {
		if _, hasPassword := u.User.Password(); hasPassword {
			return fmt.Errorf("--url must not hold a password, which the GitRepository would store in clear: use --password")
		}
	}
	if o.branch == "" {
		return errors.New("--branch must not be empty")
	}
	if _, err := cleanRepoPath(o.path); err != nil {
		return err
	}
	if err := validInterval("--interval", o.interval); err != nil {
		return err
	}
	if o.authorEmail == "" {
		return errors.New("--author-email must not be empty")
	}
	return nil
}

func newBootstrapGitCmd(g *globals, version string) *cobra.Command {
	var o bootstrapOptions
	cmd := &cobra.Command{
		Use:   "git --url URL [--branch BRANCH] [--path PATH]",
		Short: "Commit Sluice's manifests to a Git repository and make the cluster sync itself from it",
		Long: `bootstrap git does what flux bootstrap git does, for Sluice:

1. It clones --branch of --url (or starts the branch, when the repository
   or the branch is empty) and commits <path>/<namespace>/` + componentsFile + `,
   the manifests sluicectl install applies, then pushes.
2. Unless the cluster's sync Kustomization has applied a revision already,
   it installs those manifests with server-side apply and waits for the
   CRDs to be Established.
3. It commits <path>/<namespace>/` + syncFile + `, a GitRepository that follows the
   branch and a Kustomization that applies ./<path> with prune, and a
   ` + kustomizationFile + ` that lists both files, and pushes.
4. It writes the Git credentials to the Secret the GitRepository names,
   and applies the GitRepository and the Kustomization.
5. It waits until the GitRepository has fetched the branch's head, the
   Kustomization has applied it and the operator Deployment is available.

From then on the cluster manages itself from Git: a commit under <path>
is applied, an upgrade of Sluice is a commit of new component manifests.
A commit is made only when a file's content changed, so running bootstrap
again with the same flags commits, pushes and changes nothing. No push is
ever forced: when the branch moved since the clone, bootstrap clones again
and commits on top; when the server refuses the push, it fails with the
server's reason.

The namespace is --namespace, or ` + installNamespace + `: it holds the operator,
the GitRepository, the Kustomization and the Secret, all named after it.
An http(s) repository is reached with --username and --password (or
--password as a bearer token with --with-bearer-token), which the
Secret keeps as username and password (or bearerToken). An ssh://
repository is reached with --private-key-file, whose host key is checked
against --known-hosts-file (default: $SSH_KNOWN_HOSTS, else
~/.ssh/known_hosts); the Secret keeps the key as identity, its
passphrase (--password) as password, and the host key that was checked
as known_hosts. Without credentials the GitRepository has no secretRef.`,
		Example: `  # Bootstrap over HTTPS with basic auth
  sluicectl bootstrap git --url https://git.example.com/org/fleet.git \
    --username git --password "$GIT_TOKEN" --path clusters/my-cluster

  # Bootstrap over SSH with a deploy key
  sluicectl bootstrap git --url ssh://git@git.example.com/org/fleet.git \
    --private-key-file ~/.ssh/fleet --path clusters/my-cluster`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := o.validate(); err != nil {
				return err
			}
			o.url = o.syncURL()
			return g.bootstrap(cmd.Context(), o, version)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.url, "url", "", "URL of the Git repository: https, ssh, or http with --allow-insecure-http.")
	f.StringVar(&o.branch, "branch", "main", "Branch to commit to and to sync from.")
	f.StringVar(&o.path, "path", "", "Folder of the cluster in the repository, e.g. clusters/my-cluster; the sync Kustomization applies it. Empty is the root.")
	f.DurationVar(&o.interval, "interval", defaultInterval, "Interval at which the GitRepository fetches the branch.")
	f.StringVarP(&o.username, "username", "u", "git", "Username of HTTPS basic auth, or of an ssh URL that names none.")
	f.StringVarP(&o.password, "password", "p", "", "Password of HTTPS basic auth, or the passphrase of --private-key-file.")
	f.BoolVar(&o.bearerToken, "with-bearer-token", false, "Send --password as a bearer token instead of basic auth (http and https).")
	f.StringVar(&o.privateKeyFile, "private-key-file", "", "SSH private key to push with and to store in the Secret (ssh URLs).")
	f.StringVar(&o.knownHostsFile, "known-hosts-file", "", "known_hosts file to check the SSH server's key against; defaults to $SSH_KNOWN_HOSTS, else ~/.ssh/known_hosts.")
	f.BoolVar(&o.allowInsecureHTTP, "allow-insecure-http", false, "Allow a plain http URL.")
	f.StringVar(&o.secretName, "secret-name", "", "Name of the Secret with the Git credentials; defaults to the namespace's name.")
	f.StringVar(&o.authorName, "author-name", "Sluice", "Author of the commits.")
	f.StringVar(&o.authorEmail, "author-email", "sluice@users.noreply.sluice.dev", "Email of the author of the commits.")
	f.StringVar(&o.messageAppendix, "commit-message-appendix", "", "Text added to the commit messages after a blank line, e.g. [ci skip].")
	f.BoolVar(&o.noWait, "no-wait", false, "Return once the sync manifests are applied, without waiting for the operator to apply the branch's head.")
	_ = cmd.MarkFlagRequired("url")
	return cmd
}

// bootstrapRun is one bootstrap's state.
type bootstrapRun struct {
	g       *globals
	o       bootstrapOptions
	layout  bootstrapLayout
	c       client.Client
	manager *ssa.ResourceManager
}

// say prints a progress line: ► for a step, ✔ for a result, ◎ for a
// wait, as flux bootstrap does.
func (r *bootstrapRun) say(mark, format string, args ...any) {
	fmt.Fprintf(r.g.streams.Err, "%s %s\n", mark, fmt.Sprintf(format, args...))
}

func (g *globals) bootstrap(parent context.Context, o bootstrapOptions, version string) error {
	if g.allNamespaces {
		return errors.New("bootstrap installs into one namespace: drop --all-namespaces")
	}
	ctx, cancel, timeout := g.withTimeout(parent, bootstrapTimeout)
	defer cancel()
	err := g.runBootstrap(ctx, o, version, timeout)
	if err != nil && ctx.Err() != nil {
		return g.watchEnded(parent, ctx, timeout, "the bootstrap: "+err.Error())
	}
	return err
}

func (g *globals) runBootstrap(ctx context.Context, o bootstrapOptions, version string, timeout time.Duration) error {
	ns := g.namespace
	if ns == "" {
		ns = installNamespace
	}
	repoPath, _ := cleanRepoPath(o.path)
	creds, err := o.credentials()
	if err != nil {
		return err
	}
	secretName := ""
	if creds.data != nil {
		secretName = o.secretName
		if secretName == "" {
			secretName = ns
		}
	}
	r := &bootstrapRun{g: g, o: o, layout: bootstrapLayout{
		namespace: ns, path: repoPath, url: o.url, branch: o.branch, interval: o.interval, secretName: secretName,
	}}
	if r.c, err = g.kubeClient(); err != nil {
		return err
	}
	if r.manager, err = g.resourceManager(); err != nil {
		return err
	}
	ks, err := r.syncKustomization(ctx)
	if err != nil {
		return err
	}
	// As Flux: a second bootstrap with another --path would take the
	// cluster's sync away from the folder it manages now.
	if ks != nil && ks.Spec.Path != r.layout.kustomizationPath() {
		return fmt.Errorf("the sync path %q would overwrite the path %q of the existing Kustomization %s/%s", r.layout.kustomizationPath(), ks.Spec.Path, ns, ns)
	}

	built, err := kustomize.Build()
	if err != nil {
		return err
	}
	components, err := r.layout.components(built)
	if err != nil {
		return err
	}
	syncObjs, err := r.layout.syncObjects()
	if err != nil {
		return err
	}
	files, err := r.layout.files(version, components, syncObjs)
	if err != nil {
		return err
	}
	repo := gitRepo{url: o.url, branch: o.branch, auth: creds.auth, author: gitsource.Signature{Name: o.authorName, Email: o.authorEmail}}
	message := func(m string) string {
		if o.messageAppendix != "" {
			return m + "\n\n" + o.messageAppendix
		}
		return m
	}

	// 1. The components, committed first as Flux does, so that a
	// history shows an upgrade apart from a sync change.
	r.say("►", "cloning branch %q from Git repository %q", o.branch, o.url)
	dir := r.layout.dir()
	compPath := dir + "/" + componentsFile
	if err := r.commitStep(ctx, repo, "component manifests", map[string][]byte{compPath: files[compPath]},
		message(fmt.Sprintf("Add Sluice %s component manifests", version))); err != nil {
		return err
	}

	// 2. The install, unless the cluster applies the components from
	// Git already: then the commit above is its upgrade.
	if ks == nil || ks.Status.LastAppliedRevision == "" {
		r.say("►", "installing components in %q namespace", ns)
		objs := make([]*unstructured.Unstructured, 0, len(components))
		for _, c := range components {
			objs = append(objs, c.DeepCopy())
		}
		changes, err := applyStaged(ctx, r.manager, objs, timeout)
		if err != nil {
			return fmt.Errorf("install the components: %w", err)
		}
		r.reportChanges(changes)
		r.say("✔", "installed components")
	} else {
		r.say("✔", "components are applied by Kustomization %s/%s from Git", ns, ns)
	}

	// 3. The sync manifests, committed.
	syncPath, kusPath := dir+"/"+syncFile, dir+"/"+kustomizationFile
	if err := r.commitStep(ctx, repo, "sync manifests", map[string][]byte{syncPath: files[syncPath], kusPath: files[kusPath]},
		message("Add Sluice sync manifests")); err != nil {
		return err
	}

	// 4. The credentials the GitRepository reads, and the sync objects.
	// The Secret is written only once the push went through: a refused
	// push leaves the cluster's sync as it was, not with credentials for
	// a URL it does not use.
	if creds.data != nil {
		if err := r.applySecret(ctx, creds); err != nil {
			return err
		}
	}
	r.say("►", "applying sync manifests")
	changes, err := r.manager.ApplyAll(ctx, syncObjs, ssa.DefaultApplyOptions())
	if err != nil {
		return fmt.Errorf("apply the sync manifests: %w", err)
	}
	r.reportChanges(changes)
	r.say("✔", "reconciled sync configuration")
	if o.noWait {
		return nil
	}

	// 5. The cluster at the branch's head.
	head, err := repo.head(ctx)
	if err != nil {
		return err
	}
	revision := o.branch + "@sha1:" + head
	if err := r.waitSource(ctx, revision); err != nil {
		return err
	}
	if err := r.waitKustomization(ctx, revision); err != nil {
		return err
	}
	return r.waitComponents(ctx, components, timeout)
}

// syncKustomization reads the sync Kustomization; nil when there is
// none yet.
func (r *bootstrapRun) syncKustomization(ctx context.Context) (*syncv1.Kustomization, error) {
	ks := &syncv1.Kustomization{}
	err := r.c.Get(ctx, client.ObjectKey{Namespace: r.layout.namespace, Name: r.layout.namespace}, ks)
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read Kustomization %s/%s: %w", r.layout.namespace, r.layout.namespace, err)
	}
	return ks, nil
}

// commitStep commits files unless they are up to date, and says which.
func (r *bootstrapRun) commitStep(ctx context.Context, repo gitRepo, what string, files map[string][]byte, message string) error {
	res, err := repo.commit(ctx, files, message)
	if err != nil {
		return fmt.Errorf("commit the %s: %w", what, err)
	}
	switch {
	case res.commit == "":
		r.say("✔", "%s are up to date", what)
	case res.created:
		r.say("✔", "created branch %q with the %s (%s)", repo.branch, what, res.commit)
	case res.attempts > 1:
		r.say("✔", "committed and pushed the %s to %q (%s), on a fresh clone after the branch moved (%d tries)", what, repo.branch, res.commit, res.attempts)
	default:
		r.say("✔", "committed and pushed the %s to %q (%s)", what, repo.branch, res.commit)
	}
	return nil
}

// reportChanges lists what an apply changed; unchanged objects are not
// news.
func (r *bootstrapRun) reportChanges(changes *ssa.ChangeSet) {
	if changes == nil {
		return
	}
	for _, e := range changes.Entries {
		if e.Action != ssa.UnchangedAction {
			fmt.Fprintf(r.g.streams.Err, "  %s\n", e.String())
		}
	}
}

// applySecret writes the Git credentials with server-side apply: keys
// that an earlier bootstrap wrote and this one does not are removed.
func (r *bootstrapRun) applySecret(ctx context.Context, creds *gitCredentials) error {
	data, err := creds.secretData()
	if err != nil {
		return err
	}
	encoded := map[string]any{}
	for k, v := range data {
		// The API takes a Secret's data as base64 strings.
		encoded[k] = base64.StdEncoding.EncodeToString(v)
	}
	secret := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "v1",
		"kind":       "Secret",
		"metadata":   map[string]any{"name": r.layout.secretName, "namespace": r.layout.namespace},
		"type":       "Opaque",
		"data":       encoded,
	}}
	r.say("►", "applying source secret %q", r.layout.namespace+"/"+r.layout.secretName)
	changes, err := r.manager.ApplyAll(ctx, []*unstructured.Unstructured{secret}, ssa.DefaultApplyOptions())
	if err != nil {
		return fmt.Errorf("apply Secret %s/%s: %w", r.layout.namespace, r.layout.secretName, err)
	}
	r.reportChanges(changes)
	r.say("✔", "reconciled source secret")
	return nil
}

// waitSource waits until the GitRepository's artifact is revision and
// it is Ready. It asks for a reconcile first when it is not there yet,
// so that a new commit does not wait for the next interval.
func (r *bootstrapRun) waitSource(ctx context.Context, revision string) error {
	key := client.ObjectKey{Namespace: r.layout.namespace, Name: r.layout.namespace}
	r.say("◎", "waiting for GitRepository %q to fetch %s", key.String(), revision)
	repo := &sourcev1.GitRepository{}
	at := func() bool {
		return repo.Status.Artifact != nil && repo.Status.Artifact.Revision == revision && readyStatus(repo.Status.Conditions) == metav1.ConditionTrue
	}
	requested := false
	var failed, lastRead error
	err := r.g.poll(ctx, func() bool {
		if err := r.c.Get(ctx, key, repo); err != nil {
			lastRead, failed = err, r.readFailed(ctx, "GitRepository", key, err)
			return failed != nil
		}
		lastRead = nil
		if !at() && !requested {
			requested = mergePatch(ctx, r.c, repo, manual.AnnotationPatch(sourcev1.ReconcileRequestAnnotation, time.Now().Format(time.RFC3339Nano))) == nil
		}
		return at()
	})
	switch {
	case failed != nil:
		return failed
	case err != nil && lastRead != nil:
		return fmt.Errorf("GitRepository %s did not fetch %s: read it: %w", key, revision, lastRead)
	case err != nil:
		return fmt.Errorf("GitRepository %s did not fetch %s (is the operator running?): %s", key, revision, readyMessage(repo.Status.Conditions))
	}
	r.say("✔", "GitRepository reconciled successfully")
	return nil
}

// waitKustomization waits until the Kustomization has tried revision at
// its current generation and tells how that went, as Flux does: Ready
// ends the wait, not Ready fails it.
func (r *bootstrapRun) waitKustomization(ctx context.Context, revision string) error {
	key := client.ObjectKey{Namespace: r.layout.namespace, Name: r.layout.namespace}
	r.say("◎", "waiting for Kustomization %q to apply %s", key.String(), revision)
	ks := &syncv1.Kustomization{}
	var failed, lastRead error
	requested := false
	err := r.g.poll(ctx, func() bool {
		if err := r.c.Get(ctx, key, ks); err != nil {
			lastRead, failed = err, r.readFailed(ctx, "Kustomization", key, err)
			return failed != nil
		}
		lastRead = nil
		if ks.Spec.Suspend {
			failed = fmt.Errorf("kustomization %s is suspended: resume it", key)
			return true
		}
		if ks.Generation != ks.Status.ObservedGeneration || ks.Status.LastAttemptedRevision != revision {
			if !requested {
				requested = mergePatch(ctx, r.c, ks, manual.AnnotationPatch(sourcev1.ReconcileRequestAnnotation, time.Now().Format(time.RFC3339Nano))) == nil
			}
			return false
		}
		switch readyStatus(ks.Status.Conditions) {
		case metav1.ConditionTrue:
			return true
		case metav1.ConditionFalse:
			failed = &ExitError{Code: ExitFailure, Err: fmt.Errorf("kustomization %s failed to apply %s: %s", key, revision, readyMessage(ks.Status.Conditions))}
			return true
		}
		return false
	})
	switch {
	case failed != nil:
		return failed
	case err != nil && lastRead != nil:
		return fmt.Errorf("kustomization %s did not apply %s: read it: %w", key, revision, lastRead)
	case err != nil:
		return fmt.Errorf("kustomization %s did not apply %s: %s", key, revision, readyMessage(ks.Status.Conditions))
	}
	r.say("✔", "Kustomization reconciled successfully")
	return nil
}

// readFailed sorts a failed read of a waited-for object: one that waiting
// cannot mend (no permission, or a kind the API server does not serve)
// ends the wait with the error; another is printed, as reconcile prints
// it, and the wait goes on.
func (r *bootstrapRun) readFailed(ctx context.Context, kind string, key client.ObjectKey, err error) error {
	if apierrors.IsForbidden(err) || apierrors.IsUnauthorized(err) || meta.IsNoMatchError(err) {
		return fmt.Errorf("read %s %s: %w", kind, key, err)
	}
	if ctx.Err() == nil {
		fmt.Fprintf(r.g.streams.Err, "read %s %s: %v\n", kind, key, err)
	}
	return nil
}

// waitComponents waits until the operator Deployments are available.
func (r *bootstrapRun) waitComponents(ctx context.Context, components []*unstructured.Unstructured, timeout time.Duration) error {
	var set object.ObjMetadataSet
	for _, o := range components {
		if o.GetKind() == "Deployment" {
			set = append(set, object.UnstructuredToObjMetadata(o))
		}
	}
	r.say("►", "confirming components are healthy")
	if err := r.manager.WaitForSetWithContext(ctx, set, ssa.WaitOptions{Interval: pollInterval, Timeout: timeout}); err != nil {
		return fmt.Errorf("the operator is not available: %w", err)
	}
	r.say("✔", "all components are healthy")
	return nil
}

func readyStatus(conds []metav1.Condition) metav1.ConditionStatus {
	if c := (manual.State{Conditions: conds}).Ready(); c != nil {
		return c.Status
	}
	return metav1.ConditionUnknown
}

func readyMessage(conds []metav1.Condition) string {
	c := (manual.State{Conditions: conds}).Ready()
	if c == nil {
		return "no Ready condition yet"
	}
	return fmt.Sprintf("Ready=%s (%s): %s", c.Status, c.Reason, strings.TrimSpace(c.Message))
}
