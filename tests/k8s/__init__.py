"""Offline checks of the Kubernetes manifests (knative/, eventing/) and of what builds them."""
