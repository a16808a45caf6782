package v1beta1

// Providers returns every provider name the API accepts, in the schema's
// order.
func Providers() []Provider {
	return []Provider{
		"apisix", "appmesh", "appmesh:v1beta2", "contour", "gatewayapi:v1", "gatewayapi:v1beta1",
		"gloo", "istio", "knative", "kubernetes", "kuma", "linkerd", "nginx", "osm", "skipper",
		"smi:v1alpha1", "smi:v1alpha2", "smi:v1alpha3", "traefik",
	}
}

// Known reports whether the API accepts p as a provider name.
func (p Provider) Known() bool {
	for _, known := range Providers() {
		if p == known {
			return true
		}
	}
	return false
}
