package podruntime

import (
	"context"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/informers"
	corelisters "k8s.io/client-go/listers/core/v1"
)

// cachedEnvSource reads ConfigMaps and Secrets from informer caches, as the
// kubelet's watch-based ConfigMap and Secret managers do, so starting a pod
// costs no GET per referenced object. An object missing from the cache (just
// created, the watch has not delivered it yet) is read from the API server.
type cachedEnvSource struct {
	configMaps corelisters.ConfigMapLister
	secrets    corelisters.SecretLister
	api        envSource
}

// newCachedEnvSource registers the informers with factory (start it afterwards).
func newCachedEnvSource(factory informers.SharedInformerFactory, api envSource) cachedEnvSource {
	return cachedEnvSource{
		configMaps: factory.Core().V1().ConfigMaps().Lister(),
		secrets:    factory.Core().V1().Secrets().Lister(),
		api:        api,
	}
}

func (c cachedEnvSource) configMap(ctx context.Context, ns, name string) (map[string]string, error) {
	cm, err := c.configMaps.ConfigMaps(ns).Get(name)
	if apierrors.IsNotFound(err) {
		return c.api.configMap(ctx, ns, name)
	}
	if err != nil {
		return nil, err
	}
	return cm.Data, nil
}

func (c cachedEnvSource) secret(ctx context.Context, ns, name string) (map[string]string, error) {
	s, err := c.secrets.Secrets(ns).Get(name)
	if apierrors.IsNotFound(err) {
		return c.api.secret(ctx, ns, name)
	}
	if err != nil {
		return nil, err
	}
	out := make(map[string]string, len(s.Data))
	for k, v := range s.Data {
		out[k] = string(v)
	}
	return out, nil
}
