package notify

import (
	"fmt"
	"strings"
)

// gitHub sets a commit status on the revision an event is about, through
// the REST API: https://docs.github.com/rest/commits/statuses. The
// address is the repository's URL; github.com goes to api.github.com and
// any other host is GitHub Enterprise, at /api/v3.
type gitHub struct{}

// gitHubStatus is the body of "Create a commit status".
type gitHubStatus struct {
	State       string `json:"state"`
	Description string `json:"description"`
	Context     string `json:"context"`
}

// gitHubDescriptionMax is the longest description GitHub accepts.
const gitHubDescriptionMax = 140

func (gitHub) build(t target, n note) (post, error) {
	repo, sha, err := commitTarget(t, n.event)
	if err != nil {
		return post{}, err
	}
	api := repo.scheme + "://" + repo.host + "/api/v3"
	if repo.host == "github.com" {
		api = "https://api.github.com"
	}
	state := "success"
	if n.event.Severity == severityError {
		state = "failure"
	}
	p, err := jsonPost(t.typ, fmt.Sprintf("%s/repos/%s/statuses/%s", api, repo.path, sha), gitHubStatus{
		State:       state,
		Description: cutRunes(statusDescription(n.event), gitHubDescriptionMax),
		Context:     commitStatusContext(t, n.event),
	})
	p.header.Set("Authorization", "Bearer "+t.token)
	p.header.Set("Accept", "application/vnd.github+json")
	p.header.Set("X-GitHub-Api-Version", "2022-11-28")
	return p, err
}

// repository is a Git host's repository, from a Provider's address.
type repository struct {
	scheme, host string
	// path is owner/name, or group/subgroup/name on GitLab.
	path string
}

// parseRepository reads https://host/owner/name(.git).
func parseRepository(address string) (repository, error) {
	u, err := checkAddress(address)
	if err != nil {
		return repository{}, err
	}
	path := strings.TrimSuffix(strings.Trim(u.Path, "/"), ".git")
	if strings.Count(path, "/") < 1 || strings.Contains(path, "//") {
		return repository{}, fmt.Errorf("%w: a commit status needs the repository's URL, https://host/owner/repository", errInvalidAddress)
	}
	return repository{scheme: u.Scheme, host: u.Host, path: path}, nil
}

// commitTarget is the repository and commit a commit status goes to,
// errNotApplicable for an event with no commit in its revision.
func commitTarget(t target, e Event) (repository, string, error) {
	repo, err := parseRepository(t.address)
	if err != nil {
		return repository{}, "", err
	}
	if t.token == "" {
		return repository{}, "", errNoToken
	}
	sha, ok := commitOf(e)
	if !ok {
		return repository{}, "", errNotApplicable
	}
	return repo, sha, nil
}

// commitOf reads the commit hash of the event's revision, written as
// main@sha1:<hash>, sha1:<hash>, main/<hash> or <hash>.
func commitOf(e Event) (string, bool) {
	rev := e.Metadata[metaRevision]
	if i := strings.LastIndexAny(rev, ":/"); i >= 0 {
		rev = rev[i+1:]
	}
	if len(rev) != 40 && len(rev) != 64 {
		return "", false
	}
	for _, c := range rev {
		if hex := c >= '0' && c <= '9' || c >= 'a' && c <= 'f'; !hex {
			return "", false
		}
	}
	return rev, true
}

// commitStatusContext names the status as Flux does, kind/name/ and the
// first part of the provider's UID, so that each object's status replaces
// its own previous one and two clusters do not overwrite each other's.
func commitStatusContext(t target, e Event) string {
	uid, _, _ := strings.Cut(string(t.uid), "-")
	return strings.ToLower(e.InvolvedObject.Kind + "/" + e.InvolvedObject.Name + "/" + uid)
}

// statusDescription is the reason and the message on one line.
func statusDescription(e Event) string {
	msg := strings.Join(strings.Fields(e.Message), " ")
	if e.Reason == "" {
		return msg
	}
	return e.Reason + ": " + msg
}
