package kustomization

import (
	"fmt"
	"sync"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"sluice.dev/sluice/pkg/sync/apply"
	"sluice.dev/sluice/pkg/sync/health"
)

// +kubebuilder:rbac:groups="",resources=serviceaccounts,verbs=impersonate

// Impersonator makes Appliers that act as a ServiceAccount, so that what a
// tenant's Kustomization may apply is what its account's RBAC allows,
// not what the operator's does. The API server checks each request; the
// operator needs only the right to impersonate.
type Impersonator struct {
	// Config is the operator's own; each Applier copies it.
	Config *rest.Config
	Scheme *runtime.Scheme
	// Mapper is shared, so impersonation costs no discovery.
	Mapper meta.RESTMapper

	mu     sync.Mutex
	actors map[types.NamespacedName]Actor
}

// As returns the Applier and the health Checker acting as the
// ServiceAccount, made once. Impersonation sends the operator's
// credentials with the account's name, so nothing goes stale when the
// account's tokens rotate. Health is read live as the account, not from
// the operator's cache: what the account may not read, it may not check.
func (i *Impersonator) As(account types.NamespacedName) (Actor, error) {
	i.mu.Lock()
	defer i.mu.Unlock()
	if a, ok := i.actors[account]; ok {
		return a, nil
	}
	cfg := rest.CopyConfig(i.Config)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: "system:serviceaccount:" + account.Namespace + ":" + account.Name}
	c, err := client.New(cfg, client.Options{Scheme: i.Scheme, Mapper: i.Mapper})
	if err != nil {
		return Actor{}, fmt.Errorf("client impersonating ServiceAccount %s: %w", account, err)
	}
	if i.actors == nil {
		i.actors = map[types.NamespacedName]Actor{}
	}
	a := Actor{Applier: apply.New(c, c), Health: &health.Checker{Reader: c, Scheme: i.Scheme, Mapper: i.Mapper}}
	i.actors[account] = a
	return a, nil
}
