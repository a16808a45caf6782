// Package router adapts Canaries to the user's mesh or ingress: Kubernetes
// Services, Gateway API, Istio, NGINX, Skipper, Traefik and SMI. Each
// adapter lives in its own file and declares its capabilities in code.
package router
