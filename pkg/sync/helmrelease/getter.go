package helmrelease

import (
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// getter gives the Helm SDK its clients from a rest.Config held in
// memory: the operator has no kubeconfig file, and one HelmRelease may
// act as its own ServiceAccount. Discovery is shared by every release of
// an identity, so an action does not rediscover the API.
type getter struct {
	config    *rest.Config
	discovery discovery.CachedDiscoveryInterface
	mapper    meta.RESTMapper
	namespace string
}

func newGetter(cfg *rest.Config) (*getter, error) {
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return nil, err
	}
	cached := memory.NewMemCacheClient(dc)
	mapper := restmapper.NewShortcutExpander(restmapper.NewDeferredDiscoveryRESTMapper(cached), cached, nil)
	return &getter{config: cfg, discovery: cached, mapper: mapper}, nil
}

// sharedGetter serves a remote cluster's clients: its discovery and
// mapper are made once per kubeconfig and shared by every release and
// account on it, so a getter costs nothing to make.
func sharedGetter(cfg *rest.Config, dc discovery.CachedDiscoveryInterface, mapper meta.RESTMapper) *getter {
	return &getter{config: cfg, discovery: dc, mapper: mapper}
}

// inNamespace is the same getter with another default namespace.
func (g *getter) inNamespace(ns string) *getter {
	c := *g
	c.namespace = ns
	return &c
}

func (g *getter) ToRESTConfig() (*rest.Config, error) { return rest.CopyConfig(g.config), nil }

func (g *getter) ToDiscoveryClient() (discovery.CachedDiscoveryInterface, error) {
	return g.discovery, nil
}

func (g *getter) ToRESTMapper() (meta.RESTMapper, error) { return g.mapper, nil }

// ToRawKubeConfigLoader serves the default namespace, which is all the
// Helm SDK asks of it.
func (g *getter) ToRawKubeConfigLoader() clientcmd.ClientConfig {
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["sluice"] = &clientcmdapi.Cluster{Server: g.config.Host}
	cfg.Contexts["sluice"] = &clientcmdapi.Context{Cluster: "sluice", Namespace: g.namespace}
	cfg.CurrentContext = "sluice"
	return clientcmd.NewDefaultClientConfig(*cfg, &clientcmd.ConfigOverrides{})
}
