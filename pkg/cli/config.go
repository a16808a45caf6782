package cli

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	sluicescheme "sluice.dev/sluice/pkg/scheme"
)

// Output formats of -o.
const (
	outputTable = "table"
	outputJSON  = "json"
	outputYAML  = "yaml"
)

// Default timeouts of the commands, when --timeout is not given.
const (
	readTimeout      = time.Minute
	reconcileTimeout = 2 * time.Minute
	watchTimeout     = 30 * time.Minute
)

// globals holds the root's flags and what is built from them. It belongs
// to one command tree.
type globals struct {
	streams Streams

	kubeconfig    string
	kubeContext   string
	namespace     string
	allNamespaces bool
	output        string
	timeout       time.Duration

	// Built on first use, then shared by the rest of the run.
	config *rest.Config
	client client.Client
}

func (g *globals) addFlags(root *cobra.Command) {
	f := root.PersistentFlags()
	f.StringVar(&g.kubeconfig, "kubeconfig", "", "Path to the kubeconfig file; defaults to $KUBECONFIG, then ~/.kube/config.")
	f.StringVar(&g.kubeContext, "context", "", "Kubeconfig context to use; defaults to the current context.")
	f.StringVarP(&g.namespace, "namespace", "n", "", "Namespace of the objects; defaults to the context's namespace, else \"default\".")
	f.BoolVarP(&g.allNamespaces, "all-namespaces", "A", false, "List the objects of every namespace.")
	f.StringVarP(&g.output, "output", "o", outputTable, "Output format: table, json or yaml.")
	f.DurationVar(&g.timeout, "timeout", 0, "How long a command may take, waits included; 0 means the command's default (2m for reconcile, suspend, resume, create and install, 5m for bootstrap, 30m for status --watch, 1m otherwise).")

	_ = root.RegisterFlagCompletionFunc("output", cobra.FixedCompletions([]string{outputTable, outputJSON, outputYAML}, cobra.ShellCompDirectiveNoFileComp))
	_ = root.RegisterFlagCompletionFunc("namespace", g.completeNamespaces)
	_ = root.RegisterFlagCompletionFunc("context", g.completeContexts)
}

func (g *globals) validate() error {
	switch g.output {
	case outputTable, outputJSON, outputYAML:
	default:
		return fmt.Errorf("unknown output format %q: use table, json or yaml", g.output)
	}
	if g.timeout < 0 {
		return fmt.Errorf("--timeout must not be negative, got %s", g.timeout)
	}
	return nil
}

// clientConfig follows kubectl's loading rules: --kubeconfig, else the
// files of $KUBECONFIG, else ~/.kube/config.
func (g *globals) clientConfig() clientcmd.ClientConfig {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = g.kubeconfig
	overrides := &clientcmd.ConfigOverrides{CurrentContext: g.kubeContext}
	return clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, overrides)
}

func (g *globals) restConfig() (*rest.Config, error) {
	if g.config != nil {
		return g.config, nil
	}
	cfg, err := g.clientConfig().ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("load kubeconfig: %w", err)
	}
	g.config = cfg
	return cfg, nil
}

// kubeClient returns a client that knows the operator's kinds.
func (g *globals) kubeClient() (client.Client, error) {
	if g.client != nil {
		return g.client, nil
	}
	cfg, err := g.restConfig()
	if err != nil {
		return nil, err
	}
	scheme, err := sluicescheme.New()
	if err != nil {
		return nil, err
	}
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		return nil, fmt.Errorf("create a client for %s: %w", cfg.Host, err)
	}
	g.client = c
	return c, nil
}

// targetNamespace is the namespace named objects are looked up in:
// --namespace, else the kubeconfig context's, else "default".
func (g *globals) targetNamespace() (string, error) {
	if g.namespace != "" {
		return g.namespace, nil
	}
	ns, _, err := g.clientConfig().Namespace()
	if err != nil {
		return "", fmt.Errorf("read the namespace of the kubeconfig context: %w", err)
	}
	if ns == "" {
		ns = "default"
	}
	return ns, nil
}

// namedNamespace is the namespace of an object given by name. A name
// may exist in several namespaces, so --all-namespaces is refused rather
// than ignored.
func (g *globals) namedNamespace() (string, error) {
	if g.allNamespaces {
		return "", errors.New("a name is looked up in one namespace: drop --all-namespaces or the name")
	}
	return g.targetNamespace()
}

// listNamespace is the namespace lists are read from: "" (all) with
// --all-namespaces.
func (g *globals) listNamespace() (string, error) {
	if g.allNamespaces {
		return "", nil
	}
	return g.targetNamespace()
}

// withTimeout bounds ctx by --timeout, or by def when it is not given.
func (g *globals) withTimeout(ctx context.Context, def time.Duration) (context.Context, context.CancelFunc, time.Duration) {
	d := def
	if g.timeout > 0 {
		d = g.timeout
	}
	ctx, cancel := context.WithTimeout(ctx, d)
	return ctx, cancel, d
}
