package notify

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"unicode/utf8"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	notificationv1beta3 "sluice.dev/sluice/api/notification/v1beta3"
)

// service is one kind of receiver of notifications: a chat, Alertmanager,
// a Git host's commit statuses. Each lives in its own file and is listed
// in services.
type service interface {
	// build returns the request that delivers n to t. errNotApplicable
	// means this event has nothing to say to the service (a commit status
	// without a revision); another error means t cannot work as it is.
	build(t target, n note) (post, error)
}

// escaper is a service whose markup reads some characters as control
// characters in values.
type escaper interface {
	escape(s string) string
}

// services are the service types by the name a Provider or an
// AlertProvider gives in spec.type.
func services() map[string]service {
	return map[string]service{
		notificationv1beta3.SlackProvider:        slack{},
		notificationv1beta3.MSTeamsProvider:      msTeams{},
		notificationv1beta3.DiscordProvider:      discord{},
		notificationv1beta3.RocketProvider:       rocket{},
		notificationv1beta3.GoogleChatProvider:   googleChat{},
		googleChatFlaggerType:                    googleChat{},
		notificationv1beta3.GenericProvider:      generic{},
		notificationv1beta3.GenericHMACProvider:  genericHMAC{},
		notificationv1beta3.AlertmanagerProvider: alertmanager{},
		notificationv1beta3.GitHubProvider:       gitHub{},
		notificationv1beta3.GitLabProvider:       gitLab{},
		notificationv1beta3.GrafanaProvider:      grafana{},
		notificationv1beta3.TelegramProvider:     telegram{},
	}
}

// lookup returns the service of a type.
func lookup(typ string) (service, error) {
	s, ok := services()[typ]
	if !ok {
		return nil, fmt.Errorf("unknown type %q", typ)
	}
	return s, nil
}

// escapeFor returns how values are escaped for a type's markup. Only
// values are escaped, so that markup written in a messageTemplate (a
// Slack <url|link>) still works.
func escapeFor(typ string) func(string) string {
	if e, ok := services()[typ].(escaper); ok {
		return e.escape
	}
	return func(s string) string { return s }
}

// target is a resolved Provider or AlertProvider: where and as whom to
// post.
type target struct {
	typ      string
	address  string
	channel  string
	username string
	// token is a bot token, an API token or an HMAC key, from the Secret.
	token string
	// user and password are basic auth, from the Secret.
	user, password string
	// headers are extra HTTP headers, from the Secret's headers key.
	headers map[string]string
	// uid identifies the provider, for commit status contexts.
	uid types.UID
}

// Event is one notification in Flux's event format: the body that the
// generic providers post, and what every other service's message is made
// from.
type Event struct {
	InvolvedObject      corev1.ObjectReference `json:"involvedObject"`
	Severity            string                 `json:"severity"`
	Timestamp           metav1.Time            `json:"timestamp"`
	Message             string                 `json:"message"`
	Reason              string                 `json:"reason"`
	Metadata            map[string]string      `json:"metadata,omitempty"`
	ReportingController string                 `json:"reportingController"`
	ReportingInstance   string                 `json:"reportingInstance,omitempty"`
}

// Event severities. A Canary alert keeps its own (info, warn, error); a
// Kubernetes Event is info when Normal and error when Warning, as in Flux.
const (
	severityInfo  = "info"
	severityError = "error"
)

// Metadata keys that services read.
const (
	// metaRevision is the source revision an object acted on, such as
	// main@sha1:<hash>.
	metaRevision = "revision"
	// metaSummary is a short line about the Alert, from spec.summary.
	metaSummary = "summary"
)

// note is what a service is sent: the event, its message rendered for
// people (with the service's escaping), and the labels of its object.
type note struct {
	event   Event
	message message
	labels  map[string]string
}

// post is an HTTP POST ready to be sent, again on a retry.
type post struct {
	url    string
	header http.Header
	body   []byte
	// check reads the body of a 2xx answer for a failure that the status
	// does not tell.
	check func(body []byte) error
}

// jsonPost encodes a payload as the body of a POST to address.
func jsonPost(typ, address string, payload any) (post, error) {
	body, err := json.Marshal(payload)
	if err != nil {
		return post{}, fmt.Errorf("encode %s payload: %w", typ, err)
	}
	return post{url: address, header: http.Header{}, body: body}, nil
}

// Errors of building a post, which a Provider's Ready reason tells apart.
var (
	errNoAddress      = errors.New("no address: set spec.address or the address key of the Secret in spec.secretRef")
	errInvalidAddress = errors.New("the address is not an http or https URL")
	errNoToken        = errors.New("no token: the Secret in spec.secretRef needs a token key")
	// errNotApplicable: the event has nothing for this service.
	errNotApplicable = errors.New("nothing to send for this event")
)

// checkAddress accepts an http or https URL. The URL itself stays out of
// errors and logs: webhook URLs carry their credentials.
func checkAddress(address string) (*url.URL, error) {
	if address == "" {
		return nil, errNoAddress
	}
	u, err := url.Parse(address)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, errInvalidAddress
	}
	return u, nil
}

// severityStyle is how a severity looks in each format.
type severityStyle struct {
	// color is a hex colour for Slack and Rocket.Chat attachments; rgb is
	// the same colour for Discord embeds.
	color string
	rgb   int
	// teams is an Adaptive Card TextBlock colour.
	teams string
	emoji string
}

func style(severity string) severityStyle {
	switch severity {
	case severityError:
		return severityStyle{color: "#A30200", rgb: 0xA30200, teams: "Attention", emoji: "🚨"}
	case "warn":
		return severityStyle{color: "#DAA038", rgb: 0xDAA038, teams: "Warning", emoji: "⚠️"}
	}
	return severityStyle{color: "#2EB886", rgb: 0x2EB886, teams: "Good", emoji: "ℹ️"}
}

// cutRunes cuts s to at most n characters, marking the cut.
func cutRunes(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return string([]rune(s)[:n-1]) + "…"
}

// orElse returns s, or otherwise when s is empty.
func orElse(s, otherwise string) string {
	if strings.TrimSpace(s) == "" {
		return otherwise
	}
	return s
}
