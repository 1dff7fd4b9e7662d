// Package custommetrics is a stand-in custom metrics adapter for the
// embedded test cluster: it serves custom.metrics.k8s.io/v1beta1 for pods
// over TLS, registered as an APIService the kube-aggregator proxies to
// through an ExternalName Service, and answers every query by scraping the
// selected pods' Prometheus endpoints (pods annotated
// `prometheus.io/scrape: "true"` with a `prometheus.io/port`), the way
// prometheus-adapter answers from what Prometheus scraped. A gauge named
// METRIC in a pod's exposition is the pod's custom metric METRIC.
package custommetrics

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	certutil "k8s.io/client-go/util/cert"
	"k8s.io/klog/v2"
	apiregistrationv1 "k8s.io/kube-aggregator/pkg/apis/apiregistration/v1"
	aggregator "k8s.io/kube-aggregator/pkg/client/clientset_generated/clientset"
	cmv1beta1 "k8s.io/metrics/pkg/apis/custom_metrics/v1beta1"
	"k8s.io/utils/ptr"
)

const (
	// Namespace holds the adapter's Service.
	Namespace   = "custom-metrics"
	ServiceName = "custom-metrics-apiserver"
	// AppName labels the adapter's objects.
	AppName = "custom-metrics-apiserver"
)

// APIServiceName is the registered group version.
var APIServiceName = cmv1beta1.SchemeGroupVersion.Version + "." + cmv1beta1.SchemeGroupVersion.Group

// Run starts the adapter's TLS server and registers it (Namespace,
// ExternalName Service, APIService). It returns once everything is
// registered; the server stops with ctx.
func Run(ctx context.Context, cfg *rest.Config) error {
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	agg, err := aggregator.NewForConfig(cfg)
	if err != nil {
		return err
	}
	lister := func(ctx context.Context, ns string, sel labels.Selector) ([]corev1.Pod, error) {
		l, err := client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: sel.String()})
		if err != nil {
			return nil, err
		}
		return l.Items, nil
	}
	port, caBundle, err := serve(ctx, &handler{pods: lister, scrape: newScraper().scrape, now: time.Now})
	if err != nil {
		return fmt.Errorf("custom metrics server: %w", err)
	}
	if err := ensure(func() error {
		_, err := client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: Namespace}}, metav1.CreateOptions{})
		return err
	}); err != nil {
		return err
	}
	if err := ensure(func() error {
		_, err := client.CoreV1().Services(Namespace).Create(ctx, service(), metav1.CreateOptions{})
		return err
	}); err != nil {
		return err
	}
	return ensure(func() error {
		_, err := agg.ApiregistrationV1().APIServices().Create(ctx, apiService(caBundle, port), metav1.CreateOptions{})
		return err
	})
}

// ensure runs a create and treats AlreadyExists as done.
func ensure(create func() error) error {
	if err := create(); err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	return nil
}

// serve listens on a loopback port with a fresh self-signed certificate for
// the Service's DNS name; it returns the port and the CA bundle.
func serve(ctx context.Context, h http.Handler) (int32, []byte, error) {
	host := ServiceName + "." + Namespace + ".svc"
	certPEM, keyPEM, err := certutil.GenerateSelfSignedCertKey(host, []net.IP{net.ParseIP("127.0.0.1")}, []string{"localhost"})
	if err != nil {
		return 0, nil, err
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return 0, nil, err
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, nil, err
	}
	srv := &http.Server{
		Handler:           h,
		TLSConfig:         &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12},
		ReadHeaderTimeout: 10 * time.Second,
	}
	go func() {
		if err := srv.ServeTLS(l, "", ""); err != nil && err != http.ErrServerClosed {
			klog.ErrorS(err, "custom metrics server")
		}
	}()
	go func() {
		<-ctx.Done()
		_ = srv.Close()
	}()
	return int32(l.Addr().(*net.TCPAddr).Port), certPEM, nil
}

// service resolves, as the aggregator's service resolver does for
// ExternalName Services, to the adapter's loopback listener.
func service() *corev1.Service {
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: ServiceName, Namespace: Namespace, Labels: map[string]string{"app.kubernetes.io/name": AppName}},
		Spec:       corev1.ServiceSpec{Type: corev1.ServiceTypeExternalName, ExternalName: "localhost"},
	}
}

func apiService(caBundle []byte, port int32) *apiregistrationv1.APIService {
	return &apiregistrationv1.APIService{
		ObjectMeta: metav1.ObjectMeta{Name: APIServiceName, Labels: map[string]string{"app.kubernetes.io/name": AppName}},
		Spec: apiregistrationv1.APIServiceSpec{
			Service:              &apiregistrationv1.ServiceReference{Namespace: Namespace, Name: ServiceName, Port: ptr.To(port)},
			Group:                cmv1beta1.SchemeGroupVersion.Group,
			Version:              cmv1beta1.SchemeGroupVersion.Version,
			CABundle:             caBundle,
			GroupPriorityMinimum: 100,
			VersionPriority:      100,
		},
	}
}
