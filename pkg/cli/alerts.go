package cli

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	nv1beta3 "sluice.dev/sluice/api/notification/v1beta3"
)

func alertKind() kind {
	return kind{
		name:      "Alert",
		newObject: func() client.Object { return &nv1beta3.Alert{} },
		newList:   func() client.ObjectList { return &nv1beta3.AlertList{} },
	}
}

func providerKind() kind {
	return kind{
		name:      "Provider",
		newObject: func() client.Object { return &nv1beta3.Provider{} },
		newList:   func() client.ObjectList { return &nv1beta3.ProviderList{} },
	}
}

// providerTypes are the types a Provider may have, as its CRD lists them.
var providerTypes = []string{
	nv1beta3.SlackProvider, nv1beta3.MSTeamsProvider, nv1beta3.DiscordProvider, nv1beta3.RocketProvider, nv1beta3.GoogleChatProvider,
	nv1beta3.GenericProvider, nv1beta3.GenericHMACProvider, nv1beta3.AlertmanagerProvider, nv1beta3.GitHubProvider, nv1beta3.GitLabProvider,
	nv1beta3.GrafanaProvider, nv1beta3.TelegramProvider,
}

// alertOptions are the flags of `create alert`.
type alertOptions struct {
	name, provider, severity, summary string
	sources, inclusions, exclusions   []string
	metadata                          map[string]string
}

func (o alertOptions) validate() error {
	var errs []error
	if o.provider == "" {
		errs = append(errs, errors.New("--provider-ref is required"))
	}
	if o.severity != nv1beta3.SeverityInfo && o.severity != nv1beta3.SeverityError {
		errs = append(errs, fmt.Errorf("--event-severity %q must be info or error", o.severity))
	}
	if len(o.sources) == 0 {
		errs = append(errs, errors.New("--event-source is required: Kind/name, Kind/* or Kind/name.namespace"))
	}
	for _, s := range o.sources {
		if _, err := parseEventSource(s); err != nil {
			errs = append(errs, err)
		}
	}
	for flag, list := range map[string][]string{"--inclusion-list": o.inclusions, "--exclusion-list": o.exclusions} {
		for _, p := range list {
			if _, err := regexp.Compile(p); err != nil {
				errs = append(errs, fmt.Errorf("%s %q is not a regular expression: %w", flag, p, err))
			}
		}
	}
	return errors.Join(errs...)
}

func (o alertOptions) object() *nv1beta3.Alert {
	a := &nv1beta3.Alert{ObjectMeta: metav1.ObjectMeta{Name: o.name}, Spec: nv1beta3.AlertSpec{
		ProviderRef: nv1beta3.LocalObjectReference{Name: o.provider}, EventSeverity: o.severity, Summary: o.summary,
		InclusionList: o.inclusions, ExclusionList: o.exclusions, EventMetadata: o.metadata,
	}}
	for _, s := range o.sources {
		ref, _ := parseEventSource(s)
		a.Spec.EventSources = append(a.Spec.EventSources, ref)
	}
	return a
}

// parseEventSource reads Kind/name, Kind/* or Kind/name.namespace, as
// flux create alert's --event-source does.
func parseEventSource(s string) (nv1beta3.CrossNamespaceObjectReference, error) {
	kind, name, ok := strings.Cut(s, "/")
	if !ok || kind == "" || name == "" {
		return nv1beta3.CrossNamespaceObjectReference{}, fmt.Errorf("--event-source %q is not Kind/name, Kind/* or Kind/name.namespace", s)
	}
	ref := nv1beta3.CrossNamespaceObjectReference{Kind: kind, Name: name}
	if n, ns, ok := strings.Cut(name, "."); ok {
		ref.Name, ref.Namespace = n, ns
	}
	return ref, nil
}

func newCreateAlertCmd(g *globals) *cobra.Command {
	var (
		f createFlags
		o alertOptions
	)
	cmd := &cobra.Command{
		Use:   "alert NAME --provider-ref PROVIDER --event-source Kind/name",
		Short: "Create or update an Alert, which sends the Events of chosen objects to a Provider",
		Example: "  sluicectl create alert releases --provider-ref slack --event-source 'Canary/*' --event-source Kustomization/apps --event-severity error\n" +
			"  sluicectl create alert commits --provider-ref github --event-source Kustomization/apps --export",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.name = args[0]
			if err := o.validate(); err != nil {
				return err
			}
			return g.create(cmd.Context(), f, o.object(), nil)
		},
	}
	f.add(cmd, false)
	fl := cmd.Flags()
	fl.StringVar(&o.provider, "provider-ref", "", "Name of the Provider, in the same namespace.")
	fl.StringVar(&o.severity, "event-severity", nv1beta3.SeverityInfo, "Lowest severity sent: info (every Event) or error (Warnings only).")
	fl.StringSliceVar(&o.sources, "event-source", nil, "Objects whose Events are sent: Kind/name, Kind/* or Kind/name.namespace; repeatable.")
	fl.StringSliceVar(&o.inclusions, "inclusion-list", nil, "Regular expressions; only Events whose message matches one are sent.")
	fl.StringSliceVar(&o.exclusions, "exclusion-list", nil, "Regular expressions; Events whose message matches one are not sent.")
	fl.StringToStringVar(&o.metadata, "event-metadata", nil, "key=value pairs added to each Event's metadata.")
	fl.StringVar(&o.summary, "summary", "", "A line added to each Event as its summary.")
	return cmd
}

// providerOptions are the flags of `create alert-provider`.
type providerOptions struct {
	name, typ, address, channel, username, proxy string
	secretRef, certSecretRef                     string
	timeout                                      time.Duration
}

func (o providerOptions) validate() error {
	var errs []error
	if !slices.Contains(providerTypes, o.typ) {
		errs = append(errs, fmt.Errorf("--type %q is not one of %s", o.typ, strings.Join(providerTypes, ", ")))
	}
	if o.address != "" {
		if err := validURL("--address", o.address, "http", "https"); err != nil {
			errs = append(errs, err)
		}
	}
	if o.proxy != "" {
		if err := validURL("--proxy", o.proxy, "http", "https"); err != nil {
			errs = append(errs, err)
		}
	}
	if o.timeout < 0 {
		errs = append(errs, fmt.Errorf("--timeout %s must not be negative", o.timeout))
	}
	needsAddress := []string{nv1beta3.GitHubProvider, nv1beta3.GitLabProvider, nv1beta3.AlertmanagerProvider, nv1beta3.GrafanaProvider, nv1beta3.GenericProvider, nv1beta3.GenericHMACProvider}
	if slices.Contains(needsAddress, o.typ) && o.address == "" && o.secretRef == "" {
		errs = append(errs, fmt.Errorf("--type %s needs --address, or --secret-ref to a Secret with an address key", o.typ))
	}
	needsToken := []string{nv1beta3.GitHubProvider, nv1beta3.GitLabProvider, nv1beta3.TelegramProvider, nv1beta3.GenericHMACProvider}
	if slices.Contains(needsToken, o.typ) && o.secretRef == "" {
		errs = append(errs, fmt.Errorf("--type %s needs --secret-ref to a Secret with a token key", o.typ))
	}
	if o.typ == nv1beta3.TelegramProvider && o.channel == "" {
		errs = append(errs, errors.New("--type telegram needs --channel, the chat id"))
	}
	return errors.Join(errs...)
}

func (o providerOptions) object() *nv1beta3.Provider {
	p := &nv1beta3.Provider{ObjectMeta: metav1.ObjectMeta{Name: o.name}, Spec: nv1beta3.ProviderSpec{
		Type: o.typ, Address: o.address, Channel: o.channel, Username: o.username, Proxy: o.proxy,
	}}
	if o.timeout > 0 {
		p.Spec.Timeout = &metav1.Duration{Duration: o.timeout}
	}
	if o.secretRef != "" {
		p.Spec.SecretRef = &nv1beta3.LocalObjectReference{Name: o.secretRef}
	}
	if o.certSecretRef != "" {
		p.Spec.CertSecretRef = &nv1beta3.LocalObjectReference{Name: o.certSecretRef}
	}
	return p
}

func newCreateProviderCmd(g *globals) *cobra.Command {
	var (
		f createFlags
		o providerOptions
	)
	cmd := &cobra.Command{
		Use:   "alert-provider NAME --type TYPE",
		Short: "Create or update a Provider, a service that Alerts send to",
		Example: "  sluicectl create alert-provider slack --type slack --channel releases --secret-ref slack-webhook\n" +
			"  sluicectl create alert-provider github --type github --address https://github.com/acme/app --secret-ref github-token --export",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.name = args[0]
			if err := o.validate(); err != nil {
				return err
			}
			return g.create(cmd.Context(), f, o.object(), nil)
		},
	}
	f.add(cmd, false)
	fl := cmd.Flags()
	fl.StringVar(&o.typ, "type", "", "Type of the service: "+strings.Join(providerTypes, ", ")+".")
	fl.StringVar(&o.address, "address", "", "URL of the service: a webhook, Alertmanager, a repository for commit statuses, Grafana.")
	fl.StringVar(&o.channel, "channel", "", "Channel to post to: a Slack channel, a Telegram chat id.")
	fl.StringVar(&o.username, "username", "", "Name the messages are posted as.")
	fl.StringVar(&o.proxy, "proxy", "", "HTTP(S) proxy to reach the service through.")
	fl.StringVar(&o.secretRef, "secret-ref", "", "Name of a Secret with address, token, username, password, proxy or headers keys.")
	fl.StringVar(&o.certSecretRef, "cert-secret-ref", "", "Name of a Secret with ca.crt, and tls.crt with tls.key, for the service's TLS.")
	fl.DurationVar(&o.timeout, "timeout", 0, "Timeout of one request (default 15s).")
	return cmd
}

func newGetAlertsCmd(g *globals) *cobra.Command {
	return newGetNotificationCmd(g, alertKind(), "alerts", "alert", "List Alerts with their Provider and whether it is ready",
		[]string{"NAME", "READY", "SUSPENDED", "PROVIDER", "SEVERITY", "MESSAGE"},
		func(obj client.Object) []string {
			a := obj.(*nv1beta3.Alert)
			return []string{strconv.FormatBool(a.Spec.Suspend), a.Spec.ProviderRef.Name, a.Spec.EventSeverity}
		})
}

func newGetProvidersCmd(g *globals) *cobra.Command {
	return newGetNotificationCmd(g, providerKind(), "alert-providers", "alert-provider", "List Providers with their type and whether they are ready",
		[]string{"NAME", "READY", "SUSPENDED", "TYPE", "MESSAGE"},
		func(obj client.Object) []string {
			p := obj.(*nv1beta3.Provider)
			return []string{strconv.FormatBool(p.Spec.Suspend), p.Spec.Type}
		})
}

// newGetNotificationCmd lists Alerts or Providers: the name and Ready
// first, the kind's own columns, and Ready's message last.
func newGetNotificationCmd(g *globals, k kind, use, alias, short string, header []string, columns func(client.Object) []string) *cobra.Command {
	return &cobra.Command{
		Use:               use + " [NAME]",
		Aliases:           []string{alias},
		Short:             short,
		Args:              cobra.MaximumNArgs(1),
		ValidArgsFunction: g.completeNames(k),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, cancel, _ := g.withTimeout(cmd.Context(), readTimeout)
			defer cancel()
			c, objs, single, err := g.fetch(ctx, k, args)
			if err != nil {
				return err
			}
			if g.output != outputTable {
				return g.printObjects(c, objs, single)
			}
			if len(objs) == 0 {
				return g.noneFound(k.name + " objects")
			}
			t := newTable(g.streams.Out, g.header(header...)...)
			for _, obj := range objs {
				ready, message := "Unknown", ""
				if o, ok := obj.(interface{ GetConditions() []metav1.Condition }); ok {
					if cond := meta.FindStatusCondition(o.GetConditions(), nv1beta3.ReadyCondition); cond != nil {
						ready, message = string(cond.Status), cond.Message
					}
				}
				row := append([]string{obj.GetName(), ready}, columns(obj)...)
				t.row(g.cells(obj, append(row, message)...)...)
			}
			return t.flush()
		},
	}
}
