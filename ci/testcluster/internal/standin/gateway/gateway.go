// Package gateway is a stand-in Gateway API implementation for the embedded
// test cluster: it installs the GatewayClass, Gateway and HTTPRoute CRDs
// (gateway.networking.k8s.io/v1, standard channel, trimmed), a GatewayClass
// for its controller, and a controller that accepts that class, gives every
// Gateway of it a loopback address with a real HTTP listener per listener
// port (published in status.addresses, then Programmed), attaches
// HTTPRoutes (status.parents Accepted and ResolvedRefs) and proxies requests
// by the routes' path, method and header matches and backendRef weights to
// the ready endpoints of the referenced Services (EndpointSlices). Fault:
// IgnoresWeights routes every request of a rule to its first backendRef.
// InferencePools get an endpoint picker (inferencepool.go) and, for pools of
// prefill and decode model servers, llm-d style disaggregation (disagg.go).
package gateway

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

const (
	Group   = "gateway.networking.k8s.io"
	Version = "v1"
	// BundleVersion is the Gateway API release whose standard-channel
	// schemas the CRDs follow.
	BundleVersion = "v1.3.0"
	// ControllerName is the stand-in's spec.controllerName.
	ControllerName = "aiconform.dev/gateway-controller"
	// ClassName is the GatewayClass the stand-in installs.
	ClassName = "aiconform"
)

var (
	classGVR = schema.GroupVersionResource{Group: Group, Version: Version, Resource: "gatewayclasses"}
	gwGVR    = schema.GroupVersionResource{Group: Group, Version: Version, Resource: "gateways"}
	routeGVR = schema.GroupVersionResource{Group: Group, Version: Version, Resource: "httproutes"}
)

// Options select faults.
type Options struct {
	// IgnoresWeights sends every request of a rule to its first backendRef (fault).
	IgnoresWeights bool
	// EPPIgnoresMetrics makes the endpoint picker of InferencePools choose
	// round robin instead of the least-loaded model server (fault).
	EPPIgnoresMetrics bool
	// NoDisaggregation makes the endpoint picker ignore InferencePool
	// members' prefill/decode roles: each request goes to one member and no
	// prefill phase runs elsewhere (fault).
	NoDisaggregation bool
	// Informers, when set, is the informer factory the cluster's in-process
	// components share (nil: an own one).
	Informers informers.SharedInformerFactory
	// Address, when set, gives the n-th Gateway address (false: none left)
	// instead of loopback 127.2.0.0/16: pods in network namespaces of their
	// own cannot reach the host's loopback.
	Address func(n int) (string, bool)
}

// Run installs the CRDs and the GatewayClass and starts the controller. It
// returns once everything is installed and the controller's caches are
// synced; listeners and the controller stop with ctx.
func Run(ctx context.Context, cfg *rest.Config, opts Options) error {
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return err
	}
	if err := ensureCRDs(ctx, cfg); err != nil {
		return fmt.Errorf("Gateway API CRDs: %w", err)
	}
	class := &unstructured.Unstructured{Object: map[string]interface{}{
		"apiVersion": Group + "/" + Version, "kind": "GatewayClass",
		"metadata": map[string]interface{}{"name": ClassName},
		"spec": map[string]interface{}{
			"controllerName": ControllerName,
			"description":    "aiconform test cluster stand-in Gateway API implementation",
		},
	}}
	if _, err := dyn.Resource(classGVR).Create(ctx, class, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("GatewayClass %s: %w", ClassName, err)
	}
	return startController(ctx, client, dyn, opts)
}

// resolveBackend resolves a backendRef to an InferencePool (which must
// exist in the route's namespace) or to a Service.
func resolveBackend(ref backendRef, ns string, services func(ns, name string) (*corev1.Service, error), poolExists func(ns, name string) bool) (backend, string, string) {
	if deref(ref.Group, "") == PoolGroup && deref(ref.Kind, "") == "InferencePool" {
		b := backend{Namespace: deref(ref.Namespace, ns), Service: ref.Name, Weight: deref(ref.Weight, 1), Pool: true}
		if b.Namespace != ns {
			return b, "RefNotPermitted", fmt.Sprintf("backendRef %s/%s: cross-namespace references need a ReferenceGrant, which this implementation does not support", b.Namespace, ref.Name)
		}
		if !poolExists(ns, ref.Name) {
			return b, "BackendNotFound", fmt.Sprintf("InferencePool %s/%s not found", ns, ref.Name)
		}
		return b, "", ""
	}
	return serviceBackend(ref, ns, services)
}

// serviceBackend resolves a backendRef of a route in ns, or says why not
// (a ResolvedRefs reason and message).
func serviceBackend(ref backendRef, ns string, services func(ns, name string) (*corev1.Service, error)) (backend, string, string) {
	b := backend{Namespace: deref(ref.Namespace, ns), Service: ref.Name, Port: deref(ref.Port, 0), Weight: deref(ref.Weight, 1)}
	if deref(ref.Group, "") != "" || deref(ref.Kind, "Service") != "Service" {
		return b, "InvalidKind", fmt.Sprintf("backendRef %s: only core Services are supported", ref.Name)
	}
	if b.Namespace != ns {
		return b, "RefNotPermitted", fmt.Sprintf("backendRef %s/%s: cross-namespace references need a ReferenceGrant, which this implementation does not support", b.Namespace, ref.Name)
	}
	if b.Port == 0 {
		return b, "UnsupportedValue", fmt.Sprintf("backendRef %s: port is required for a Service", ref.Name)
	}
	svc, err := services(b.Namespace, b.Service)
	if apierrors.IsNotFound(err) {
		return b, "BackendNotFound", fmt.Sprintf("Service %s/%s not found", b.Namespace, b.Service)
	}
	if err != nil {
		return b, "BackendNotFound", err.Error()
	}
	for _, p := range svc.Spec.Ports {
		if p.Port == b.Port {
			return b, "", ""
		}
	}
	return b, "BackendNotFound", fmt.Sprintf("Service %s/%s has no port %d", b.Namespace, b.Service, b.Port)
}
