// Package deploy holds punchflow's deployment material and the tests that
// keep it honest: deploy/k8s (kustomize base and overlays, NACK resources,
// monitoring), deploy/nats (accounts, users and permissions; Helm values),
// deploy/docker (one Dockerfile per service) and deploy/systemd (a single
// server site). The Go code here is test support only.
package deploy
