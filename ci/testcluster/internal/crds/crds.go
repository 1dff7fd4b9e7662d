// Package crds installs CustomResourceDefinitions the way a controller's
// installer does: create each (an existing one is left as it is), then watch
// until the API server reports it Established, so its kind can be served.
package crds

import (
	"context"
	"fmt"
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apiextensionsclient "k8s.io/apiextensions-apiserver/pkg/client/clientset/clientset"
	apiextensionsv1client "k8s.io/apiextensions-apiserver/pkg/client/clientset/clientset/typed/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	watchtools "k8s.io/client-go/tools/watch"
)

// Timeout bounds the wait for each CRD to become Established.
const Timeout = time.Minute

// Install creates the CRDs through the API server of cfg and waits until each
// is Established.
func Install(ctx context.Context, cfg *rest.Config, crds ...*apiextensionsv1.CustomResourceDefinition) error {
	cs, err := apiextensionsclient.NewForConfig(cfg)
	if err != nil {
		return err
	}
	return InstallWith(ctx, cs.ApiextensionsV1().CustomResourceDefinitions(), crds...)
}

// InstallWith is Install over a CRD client (a fake one in tests).
func InstallWith(ctx context.Context, api apiextensionsv1client.CustomResourceDefinitionInterface, crds ...*apiextensionsv1.CustomResourceDefinition) error {
	for _, crd := range crds {
		if _, err := api.Create(ctx, crd, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("creating CRD %s: %w", crd.Name, err)
		}
	}
	for _, crd := range crds {
		if err := WaitEstablished(ctx, api, crd.Name, Timeout); err != nil {
			return err
		}
	}
	return nil
}

// Established reports whether the CRD's Established condition is True.
func Established(crd *apiextensionsv1.CustomResourceDefinition) bool {
	for _, c := range crd.Status.Conditions {
		if c.Type == apiextensionsv1.Established && c.Status == apiextensionsv1.ConditionTrue {
			return true
		}
	}
	return false
}

// WaitEstablished watches the CRD name until it is Established or timeout
// passes.
func WaitEstablished(ctx context.Context, api apiextensionsv1client.CustomResourceDefinitionInterface, name string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	selector := fields.OneTermEqualSelector("metadata.name", name).String()
	lw := &cache.ListWatch{
		ListFunc: func(o metav1.ListOptions) (runtime.Object, error) {
			o.FieldSelector = selector
			return api.List(ctx, o)
		},
		WatchFunc: func(o metav1.ListOptions) (watch.Interface, error) {
			o.FieldSelector = selector
			return api.Watch(ctx, o)
		},
	}
	_, err := watchtools.UntilWithSync(ctx, lw, &apiextensionsv1.CustomResourceDefinition{}, nil,
		func(ev watch.Event) (bool, error) {
			crd, ok := ev.Object.(*apiextensionsv1.CustomResourceDefinition)
			return ok && Established(crd), nil
		})
	if err != nil {
		return fmt.Errorf("CRD %s not Established within %s: %w", name, timeout, err)
	}
	return nil
}
