package chaos

import (
	"context"
	"fmt"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// RouteSplit says how an HTTPRoute the gatewayapi router writes for the
// Canary of target sends traffic anywhere but the primary: a rule that
// matches requests to the canary (A/B), or a weight on the canary's
// Service. It is empty when all traffic goes to the primary.
func RouteSplit(route *gatewayv1.HTTPRoute, target string) string {
	canary := target + "-canary"
	var split []string
	for i, rule := range route.Spec.Rules {
		for _, b := range rule.BackendRefs {
			if string(b.Name) != canary {
				continue
			}
			if b.Weight == nil || *b.Weight > 0 {
				w := "unset"
				if b.Weight != nil {
					w = fmt.Sprint(*b.Weight)
				}
				split = append(split, fmt.Sprintf("rule %d sends weight %s to %s", i, w, canary))
			}
		}
	}
	return strings.Join(split, "; ")
}

// SetImage changes the image of a Deployment's first container: a new
// revision.
func SetImage(ctx context.Context, c client.Client, key client.ObjectKey, image string) error {
	d := &appsv1.Deployment{}
	if err := c.Get(ctx, key, d); err != nil {
		return fmt.Errorf("get Deployment %s: %w", key, err)
	}
	before := d.DeepCopy()
	d.Spec.Template.Spec.Containers[0].Image = image
	if err := c.Patch(ctx, d, client.MergeFrom(before)); err != nil {
		return fmt.Errorf("set the image of Deployment %s: %w", key, err)
	}
	return nil
}
