package notify

import (
	"fmt"
	"net/url"
)

// gitLab sets a commit status through the REST API,
// https://docs.gitlab.com/api/commits/#set-the-pipeline-status-of-a-commit.
// The address is the project's URL.
type gitLab struct{}

// gitLabStatus is the body of "Set the pipeline status of a commit".
type gitLabStatus struct {
	State       string `json:"state"`
	Name        string `json:"name"`
	Description string `json:"description"`
}

func (gitLab) build(t target, n note) (post, error) {
	repo, sha, err := commitTarget(t, n.event)
	if err != nil {
		return post{}, err
	}
	state := "success"
	if n.event.Severity == severityError {
		state = "failed"
	}
	// The project is its path with the slashes encoded, as one segment.
	address := fmt.Sprintf("%s://%s/api/v4/projects/%s/statuses/%s", repo.scheme, repo.host, url.PathEscape(repo.path), sha)
	p, err := jsonPost(t.typ, address, gitLabStatus{State: state, Name: commitStatusContext(t, n.event), Description: statusDescription(n.event)})
	p.header.Set("PRIVATE-TOKEN", t.token)
	return p, err
}
