package cli

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"sync"

	"github.com/go-git/go-git/v5/plumbing/transport"
	gitssh "github.com/go-git/go-git/v5/plumbing/transport/ssh"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	gitsource "sluice.dev/sluice/pkg/source/git"
)

// gitCredentials are the bootstrap's Git credentials: what sluicectl
// pushes with and what the cluster's Secret holds, with the keys of a
// GitRepository's secretRef.
type gitCredentials struct {
	// data is the Secret's data; nil when the repository needs none.
	// For SSH, known_hosts is filled in by the first connection.
	data map[string][]byte
	auth transport.AuthMethod
	// hostKey is the SSH host key the first connection checked against
	// the known_hosts file, so that the Secret trusts that key only.
	hostKey *capturedHostKey
}

// capturedHostKey remembers the host key a known_hosts check accepted.
type capturedHostKey struct {
	mu   sync.Mutex
	line string
}

func (c *capturedHostKey) get() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.line
}

// secretData is the Secret's data once the Git steps ran: for SSH, with
// the known_hosts line of the host key they checked.
func (c *gitCredentials) secretData() (map[string][]byte, error) {
	if c.hostKey == nil {
		return c.data, nil
	}
	line := c.hostKey.get()
	if line == "" {
		return nil, errors.New("no SSH host key was checked: the Git steps did not connect")
	}
	data := map[string][]byte{"known_hosts": []byte(line + "\n")}
	for k, v := range c.data {
		data[k] = v
	}
	return data, nil
}

// credentials builds the credentials of o: HTTPS basic auth (username
// and password) or a bearer token, or for an ssh URL the private key,
// checked against known_hosts.
func (o bootstrapOptions) credentials() (*gitCredentials, error) {
	u, err := url.Parse(o.url)
	if err != nil {
		return nil, fmt.Errorf("--url %q: %w", o.url, err)
	}
	if u.Scheme != "ssh" {
		var data map[string][]byte
		switch {
		case o.bearerToken:
			data = map[string][]byte{"bearerToken": []byte(o.password)}
		case o.password != "":
			data = map[string][]byte{"username": []byte(o.username), "password": []byte(o.password)}
		}
		auth, err := gitsource.AuthFromSecret(o.url, data)
		if err != nil {
			return nil, err
		}
		return &gitCredentials{data: data, auth: auth}, nil
	}
	identity, err := os.ReadFile(o.privateKeyFile)
	if err != nil {
		return nil, fmt.Errorf("read --private-key-file: %w", err)
	}
	user := o.username
	if u.User != nil && u.User.Username() != "" {
		user = u.User.Username()
	}
	keys, err := gitssh.NewPublicKeys(user, identity, o.password)
	if err != nil {
		return nil, fmt.Errorf("--private-key-file %s: %w", o.privateKeyFile, err)
	}
	var files []string
	if o.knownHostsFile != "" {
		files = append(files, o.knownHostsFile)
	}
	// With no file named, go-git reads $SSH_KNOWN_HOSTS, else
	// ~/.ssh/known_hosts, as ssh does.
	check, err := gitssh.NewKnownHostsCallback(files...)
	if err != nil {
		return nil, fmt.Errorf("read the known_hosts file: %w", err)
	}
	captured := &capturedHostKey{}
	keys.HostKeyCallback = func(hostname string, remote net.Addr, key ssh.PublicKey) error {
		if err := check(hostname, remote, key); err != nil {
			return fmt.Errorf("host key of %s: %w", hostname, err)
		}
		captured.mu.Lock()
		captured.line = knownhosts.Line([]string{knownhosts.Normalize(hostname)}, key)
		captured.mu.Unlock()
		return nil
	}
	data := map[string][]byte{"identity": identity}
	if o.password != "" {
		// The passphrase of the key, under Flux's key.
		data["password"] = []byte(o.password)
	}
	return &gitCredentials{data: data, auth: keys, hostKey: captured}, nil
}

// gitRepo commits files to one branch of a repository and pushes them,
// never with force.
type gitRepo struct {
	url, branch string
	auth        transport.AuthMethod
	author      gitsource.Signature
}

// commitResult says what a commit step did.
type commitResult struct {
	// commit is the pushed commit; "" when the files were up to date.
	commit string
	// attempts counts the clones: more than 1 when the branch moved
	// between a clone and its push.
	attempts int
	// created is set when the branch did not exist and the commit is
	// its first.
	created bool
}

// commit writes files (repository paths to contents) on top of the
// branch's head and pushes the commit, unless the branch holds those
// contents already. A push that is not a fast-forward, because someone
// pushed meanwhile, is tried again on a fresh clone; the push is never
// forced, so the remote history is kept. An empty repository, or one
// without the branch, gets the branch with this commit as its first.
func (r gitRepo) commit(ctx context.Context, files map[string][]byte, message string) (commitResult, error) {
	pushed, err := gitsource.Update(ctx, gitsource.UpdateOptions{
		URL: r.url, Auth: r.auth, CheckoutRef: gitsource.Ref{Branch: r.branch}, Author: r.author, CreateBranch: true,
	}, func(map[string][]byte) (map[string][]byte, string, error) { return files, message, nil })
	switch {
	case errors.Is(err, gitsource.ErrNoChange):
		return commitResult{}, nil
	case err != nil:
		return commitResult{}, err
	}
	return commitResult{commit: pushed.Commit, attempts: pushed.Attempts, created: pushed.Created}, nil
}

// head is the branch's commit on the remote.
func (r gitRepo) head(ctx context.Context) (string, error) {
	head, err := gitsource.BranchHead(ctx, r.url, r.auth, r.branch)
	if err != nil {
		return "", err
	}
	if head == "" {
		return "", fmt.Errorf("%s has no branch %q", r.url, r.branch)
	}
	return head, nil
}
