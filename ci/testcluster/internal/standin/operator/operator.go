// Package operator is a stand-in AI operator for the embedded test cluster: a
// ModelServer CRD (ml.aiconform.dev/v1), a validating admission webhook served
// over TLS that the API server calls through a Service reference, and a
// reconciler that creates a child Deployment per ModelServer and reports
// Ready from the Deployment's observed status. Faults: a webhook that admits
// everything, and no reconciler.
package operator

import (
	"context"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
)

const (
	Group   = "ml.aiconform.dev"
	Version = "v1"
	Kind    = "ModelServer"
	Plural  = "modelservers"
	// Namespace holds the operator's Deployment and webhook Service.
	Namespace = "modelserver-system"
	// AppName labels the operator's pods.
	AppName     = "modelserver-operator"
	ServiceName = "modelserver-webhook"
	// WebhookName is the webhook's name in the ValidatingWebhookConfiguration;
	// the API server names it in every denial.
	WebhookName = "validate.modelservers.ml.aiconform.dev"
	ConfigName  = "modelserver-validation"
	// OwnerLabel marks a child Deployment with its ModelServer's name.
	OwnerLabel = "ml.aiconform.dev/modelserver"
)

// Options select faults.
type Options struct {
	// WebhookAdmitsAll makes the webhook allow every object (fault).
	WebhookAdmitsAll bool
	// NoReconciler leaves ModelServers alone: no children, never Ready (fault).
	NoReconciler bool
}

// Run installs the operator (CRD, webhook server, Service, webhook
// configuration, operator Deployment) and starts its reconciler. It returns
// once everything is installed; the server and reconciler stop with ctx.
func Run(ctx context.Context, cfg *rest.Config, opts Options) error {
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return err
	}
	if err := ensureCRD(ctx, cfg); err != nil {
		return fmt.Errorf("ModelServer CRD: %w", err)
	}
	if err := ensure(ctx, func() error {
		_, err := client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: Namespace}}, metav1.CreateOptions{})
		return err
	}); err != nil {
		return err
	}
	srv, err := startWebhookServer(ctx, opts.WebhookAdmitsAll)
	if err != nil {
		return fmt.Errorf("webhook server: %w", err)
	}
	if err := ensure(ctx, func() error {
		_, err := client.CoreV1().Services(Namespace).Create(ctx, webhookService(), metav1.CreateOptions{})
		return err
	}); err != nil {
		return err
	}
	if err := ensure(ctx, func() error {
		_, err := client.AdmissionregistrationV1().ValidatingWebhookConfigurations().Create(ctx, webhookConfiguration(srv.caBundle, srv.port), metav1.CreateOptions{})
		return err
	}); err != nil {
		return err
	}
	if err := ensure(ctx, func() error {
		_, err := client.AppsV1().Deployments(Namespace).Create(ctx, operatorDeployment(), metav1.CreateOptions{})
		return err
	}); err != nil {
		return err
	}
	if !opts.NoReconciler {
		return startReconciler(ctx, client, dyn)
	}
	return nil
}

// ensure runs a create and treats AlreadyExists as done.
func ensure(_ context.Context, create func() error) error {
	if err := create(); err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	return nil
}

// webhookService resolves, as the API server's ClusterIP resolver does for
// ExternalName Services, to the webhook's loopback listener: the way a
// cluster without pod networking reaches an in-process endpoint.
func webhookService() *corev1.Service {
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: ServiceName, Namespace: Namespace, Labels: map[string]string{"app.kubernetes.io/name": AppName}},
		Spec: corev1.ServiceSpec{
			Type:         corev1.ServiceTypeExternalName,
			ExternalName: "localhost",
		},
	}
}

func operatorDeployment() *appsv1.Deployment {
	labels := map[string]string{"app.kubernetes.io/name": AppName}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: AppName, Namespace: Namespace, Labels: labels},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](1),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{
					Name:  "manager",
					Image: "ghcr.io/aiconform/modelserver-operator:stand-in",
				}}},
			},
		},
	}
}
