package git

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path"
	"slices"
	"strings"

	"github.com/go-git/go-billy/v5"
	"github.com/go-git/go-billy/v5/memfs"
	gogit "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/transport"
	"github.com/go-git/go-git/v5/storage/memory"
)

// submoduleDepth bounds the nesting of submodules, as go-git's
// DefaultSubmoduleRecursionDepth does.
const submoduleDepth = int(gogit.DefaultSubmoduleRecursionDepth)

// checkoutSubmodules writes the files of repo's submodules into fs, below
// their paths, each at the commit the tree records, and theirs in turn
// down to depth levels. Each is cloned on its own rather than by go-git's
// submodule update, which would send the credentials to every host a
// .gitmodules names and drop the TLS and proxy settings: here the
// credentials and client certificate go only to the parent's host, and a
// URL must be http, https or ssh, as spec.url must.
func checkoutSubmodules(ctx context.Context, opts Options, repo *gogit.Repository, fs billy.Filesystem, depth int) error {
	data, err := readFile(fs, ".gitmodules")
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read .gitmodules: %w", err)
	}
	if depth <= 0 {
		return fmt.Errorf("submodules nest deeper than %d levels", submoduleDepth)
	}
	modules := config.NewModules()
	if err := modules.Unmarshal(data); err != nil {
		return fmt.Errorf("read .gitmodules: %w", err)
	}
	idx, err := repo.Storer.Index()
	if err != nil {
		return fmt.Errorf("read the index: %w", err)
	}
	for _, name := range slices.Sorted(maps.Keys(modules.Submodules)) {
		sub := modules.Submodules[name]
		if err := sub.Validate(); err != nil {
			return fmt.Errorf("submodule %q: %w", name, err)
		}
		entry, err := idx.Entry(sub.Path)
		if err != nil || entry.Mode != filemode.Submodule {
			// .gitmodules names a path the tree holds no submodule at, as
			// git submodule update skips it.
			continue
		}
		subURL, err := submoduleURL(opts.URL, sub.URL)
		if err != nil {
			return fmt.Errorf("submodule %s: %w", sub.Path, err)
		}
		subOpts := Options{URL: subURL, TLS: TLS{CABundle: opts.TLS.CABundle}, Proxy: opts.Proxy}
		if sameHost(opts.URL, subURL) {
			subOpts.Auth, subOpts.TLS = opts.Auth, opts.TLS
		}
		files, err := checkoutSubmodule(ctx, subOpts, entry.Hash, depth-1)
		if err != nil {
			return fmt.Errorf("submodule %s (%s): %w", sub.Path, subURL, err)
		}
		dir := strings.Trim(path.Clean("/"+sub.Path), "/")
		for _, n := range slices.Sorted(maps.Keys(files)) {
			if err := writeFile(fs, path.Join(dir, n), files[n]); err != nil {
				return fmt.Errorf("submodule %s: %w", sub.Path, err)
			}
		}
	}
	return nil
}

// checkoutSubmodule clones a submodule's repository, checks out commit
// and returns its files, its own submodules' included.
func checkoutSubmodule(ctx context.Context, opts Options, commit plumbing.Hash, depth int) (map[string][]byte, error) {
	fs := memfs.New()
	// The commit may be on no branch head, and a server need not serve
	// an object it does not advertise: the branches are cloned whole.
	repo, err := gogit.CloneContext(ctx, memory.NewStorage(), fs, &gogit.CloneOptions{
		URL: opts.URL, Auth: opts.Auth, NoCheckout: true, Tags: gogit.NoTags,
		CABundle: opts.TLS.CABundle, ClientCert: opts.TLS.ClientCert, ClientKey: opts.TLS.ClientKey, ProxyOptions: opts.Proxy,
	})
	if err != nil {
		return nil, remoteError("clone", err)
	}
	wt, err := repo.Worktree()
	if err != nil {
		return nil, fmt.Errorf("worktree: %w", err)
	}
	if err := wt.Checkout(&gogit.CheckoutOptions{Hash: commit, Force: true}); err != nil {
		return nil, fmt.Errorf("%w: commit %s: %w", ErrRefNotFound, commit, err)
	}
	if err := checkoutSubmodules(ctx, opts, repo, fs, depth); err != nil {
		return nil, err
	}
	return readFiles(fs, func(p string, dir bool) bool { return p == ".git" })
}

// submoduleURL resolves a .gitmodules URL: a relative one (../lib.git)
// against the parent's URL, as git does. Only http, https and ssh URLs
// are taken, an scp-like one (git@host:org/lib.git) being ssh, as go-git
// reads them: a file:// URL or a local path would read the controller's
// own disk.
func submoduleURL(parent, raw string) (string, error) {
	if strings.HasPrefix(raw, "./") || strings.HasPrefix(raw, "../") {
		base, err := transport.NewEndpoint(parent)
		if err != nil {
			return "", fmt.Errorf("parse the parent URL: %w", err)
		}
		if !remoteProtocols[base.Protocol] || base.Host == "" {
			return "", fmt.Errorf("URL %q is relative to %q, which is not an http, https or ssh URL", raw, parent)
		}
		if isSCPLike(parent) {
			// An scp-like path is relative to the login's home: it stays
			// scp-like, or it would become absolute.
			raw = scpLike(base.User, base.Host, path.Join(base.Path, raw))
		} else {
			base.Path = path.Join(base.Path, raw)
			raw = base.String()
		}
	}
	ep, err := transport.NewEndpoint(raw)
	if err != nil || !remoteProtocols[ep.Protocol] || ep.Host == "" {
		return "", fmt.Errorf("URL %q is not an http, https or ssh URL", raw)
	}
	return raw, nil
}

// remoteProtocols are the transports a submodule may use.
var remoteProtocols = map[string]bool{"http": true, "https": true, "ssh": true}

// isSCPLike tells whether a URL is scp-like, user@host:path, which has
// no scheme.
func isSCPLike(raw string) bool {
	ep, err := transport.NewEndpoint(raw)
	return err == nil && ep.Protocol == "ssh" && !strings.Contains(raw, "://")
}

func scpLike(user, host, p string) string {
	if user != "" {
		host = user + "@" + host
	}
	return host + ":" + p
}

// sameHost tells whether two URLs name the same host over the same
// transport, so that credentials for one fit the other: an ssh key for
// ssh, and for https neither a plain-HTTP URL, which would send them in
// the clear, nor another host. The port may differ: it is the same
// machine and the same operator. An scp-like URL is ssh.
func sameHost(a, b string) bool {
	ea, errA := transport.NewEndpoint(a)
	eb, errB := transport.NewEndpoint(b)
	if errA != nil || errB != nil {
		return false
	}
	return ea.Host != "" && strings.EqualFold(ea.Host, eb.Host) && ea.Protocol == eb.Protocol
}
