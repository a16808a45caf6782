package v1

// KubeConfigReference names the kubeconfig of the cluster a Kustomization
// or a HelmRelease acts on, as Flux's spec.kubeConfig does: what it
// applies, prunes, checks and releases goes to that cluster, while its
// sources and the Secrets and ConfigMaps it reads stay in this one.
//
// Flux's configMapRef builds the client from a cloud or workload identity
// (a ServiceAccount token that the remote API server must trust as an
// OIDC issuer); Sluice reaches a remote cluster only through a kubeconfig
// in a Secret, so it is refused.
//
// +kubebuilder:validation:XValidation:rule="!has(self.configMapRef)",message="spec.kubeConfig.configMapRef is not supported: it authenticates with a cloud or workload identity (a ServiceAccount token the remote API server must trust as an OIDC issuer); put a kubeconfig in the Secret of spec.kubeConfig.secretRef"
// +kubebuilder:validation:XValidation:rule="has(self.secretRef)",message="spec.kubeConfig.secretRef is required"
type KubeConfigReference struct {
	// ConfigMapRef is Flux's provider-based kubeconfig; refused.
	// +optional
	ConfigMapRef *LocalObjectReference `json:"configMapRef,omitempty"`

	// SecretRef names a Secret, in the object's namespace, holding a
	// kubeconfig under Key, or else under value, then value.yaml. The
	// kubeconfig's current context is used, with the server, certificate
	// authority, client certificate and key, token or basic auth written
	// in it; files it points to, exec and auth-provider plugins, proxies
	// and insecure-skip-tls-verify are ignored, as Flux does by default.
	// +optional
	SecretRef *SecretKeyReference `json:"secretRef,omitempty"`
}

// SecretKeyReference names a Secret in the same namespace, and
// optionally one of its keys.
type SecretKeyReference struct {
	// Name of the Secret.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`

	// Key in the Secret; empty means the kind's default.
	// +kubebuilder:validation:MaxLength=253
	// +optional
	Key string `json:"key,omitempty"`
}
