// Package scheme builds the runtime.Scheme with every kind Sluice reads
// and writes. It is a leaf: the operator and the CLI both import it, so
// the CLI links the API types without the controllers.
package scheme

import (
	"fmt"

	istionetworkingv1 "istio.io/client-go/pkg/apis/networking/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	imagev1 "sluice.dev/sluice/api/image/v1"
	notificationv1 "sluice.dev/sluice/api/notification/v1"
	notificationv1beta3 "sluice.dev/sluice/api/notification/v1beta3"
	sourcev1 "sluice.dev/sluice/api/source/v1"
	syncv1 "sluice.dev/sluice/api/sync/v1"
	syncv2 "sluice.dev/sluice/api/sync/v2"
	sluicev1beta1 "sluice.dev/sluice/api/v1beta1"
)

// New returns a scheme with Kubernetes' built-in kinds, Sluice's kinds and
// the routing kinds with Go types (Gateway API, Istio).
func New() (*runtime.Scheme, error) {
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{
		clientgoscheme.AddToScheme, sluicev1beta1.AddToScheme, sourcev1.AddToScheme, syncv1.AddToScheme, syncv2.AddToScheme,
		notificationv1.AddToScheme, notificationv1beta3.AddToScheme, imagev1.AddToScheme, gatewayv1.Install, istionetworkingv1.AddToScheme,
	} {
		if err := add(s); err != nil {
			return nil, fmt.Errorf("build scheme: %w", err)
		}
	}
	return s, nil
}
