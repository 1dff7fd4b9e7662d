// Package prometheus is a stand-in for a Prometheus Operator stack
// (kube-prometheus-stack) on the embedded test cluster: the
// monitoring.coreos.com CRDs ServiceMonitor, PodMonitor and Prometheus, one
// Prometheus object monitoring/testcluster selecting every monitor, and a
// server that really scrapes the targets the monitors select (Services'
// EndpointSlices or pods, on the named ports, at each endpoint's interval)
// and answers the Prometheus HTTP API's instant queries for vector selectors
// (/api/v1/query). Its pod runs on a simulated node behind the Service
// monitoring/prometheus-testcluster:9090, so the API server's service proxy
// reaches it as it reaches a real Prometheus. Fault: no scraping (the query
// API answers, with no series).
package prometheus

import (
	crdinstall "aiconform.dev/testcluster/internal/crds"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/klog/v2"
	"k8s.io/utils/ptr"
)

const (
	Group     = "monitoring.coreos.com"
	Namespace = "monitoring"
	// Name of the Prometheus object; its Service is ServiceName:9090 (port "web").
	Name        = "testcluster"
	ServiceName = "prometheus-testcluster"
	image       = "quay.io/prometheus/prometheus:v3.5.0"
)

var (
	serviceMonitors = schema.GroupVersionResource{Group: Group, Version: "v1", Resource: "servicemonitors"}
	podMonitors     = schema.GroupVersionResource{Group: Group, Version: "v1", Resource: "podmonitors"}
	prometheuses    = schema.GroupVersionResource{Group: Group, Version: "v1", Resource: "prometheuses"}
)

// Options select faults.
type Options struct {
	// NoScrape leaves every target unscraped: the query API answers, with nothing (fault).
	NoScrape bool
	// Informers, when set, is the informer factory the cluster's in-process
	// components share (nil: an own one).
	Informers informers.SharedInformerFactory
}

// Run installs the CRDs, the Prometheus object, its Deployment and Service,
// and starts the server (and, unless opts.NoScrape, the scraper). It returns
// once everything is installed; the rest stops with ctx.
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
		return fmt.Errorf("monitoring CRDs: %w", err)
	}
	st := newStore()
	l, err := net.Listen("tcp", ":0")
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: api(st), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := srv.Serve(l); err != nil && err != http.ErrServerClosed {
			klog.ErrorS(err, "prometheus stand-in server")
		}
	}()
	go func() {
		<-ctx.Done()
		_ = srv.Close()
	}()
	port := int32(l.Addr().(*net.TCPAddr).Port)
	create := func(err error) error {
		if err != nil && !apierrors.IsAlreadyExists(err) {
			return err
		}
		return nil
	}
	if err := create(func() error {
		_, err := client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: Namespace}}, metav1.CreateOptions{})
		return err
	}()); err != nil {
		return err
	}
	if err := create(func() error {
		_, err := dyn.Resource(prometheuses).Namespace(Namespace).Create(ctx, prometheusObject(), metav1.CreateOptions{})
		return err
	}()); err != nil {
		return err
	}
	if err := create(func() error {
		_, err := client.AppsV1().Deployments(Namespace).Create(ctx, deployment(port), metav1.CreateOptions{})
		return err
	}()); err != nil {
		return err
	}
	if err := create(func() error {
		_, err := client.CoreV1().Services(Namespace).Create(ctx, service(), metav1.CreateOptions{})
		return err
	}()); err != nil {
		return err
	}
	if opts.NoScrape {
		return nil
	}
	return startScraper(ctx, client, dyn, st, opts.Informers)
}

var podLabels = map[string]string{"app.kubernetes.io/name": "prometheus", "prometheus": Name}

func prometheusObject() *unstructured.Unstructured {
	return &unstructured.Unstructured{Object: map[string]interface{}{
		"apiVersion": Group + "/v1", "kind": "Prometheus",
		"metadata": map[string]interface{}{"name": Name, "namespace": Namespace},
		"spec": map[string]interface{}{
			"replicas":                        int64(1),
			"serviceMonitorSelector":          map[string]interface{}{},
			"serviceMonitorNamespaceSelector": map[string]interface{}{},
			"podMonitorSelector":              map[string]interface{}{},
			"podMonitorNamespaceSelector":     map[string]interface{}{},
		},
	}}
}

func deployment(port int32) *appsv1.Deployment {
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: ServiceName, Namespace: Namespace, Labels: podLabels},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](1),
			Selector: &metav1.LabelSelector{MatchLabels: podLabels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: podLabels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{
					Name: "prometheus", Image: image,
					Ports: []corev1.ContainerPort{{Name: "web", ContainerPort: port, Protocol: corev1.ProtocolTCP}},
				}}},
			},
		},
	}
}

func service() *corev1.Service {
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: ServiceName, Namespace: Namespace,
			Labels: map[string]string{"app.kubernetes.io/name": "prometheus", "operated-prometheus": "true"}},
		Spec: corev1.ServiceSpec{
			Selector: podLabels,
			Ports:    []corev1.ServicePort{{Name: "web", Port: 9090, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromString("web")}},
		},
	}
}

// startScraper discovers targets every second and scrapes each at its interval.
func startScraper(ctx context.Context, client kubernetes.Interface, dyn dynamic.Interface, st *store, f informers.SharedInformerFactory) error {
	if f == nil {
		f = informers.NewSharedInformerFactory(client, 0)
	}
	pods := f.Core().V1().Pods().Lister()
	services := f.Core().V1().Services().Lister()
	slices := f.Discovery().V1().EndpointSlices().Lister()
	f.Start(ctx.Done())
	for typ, ok := range f.WaitForCacheSync(ctx.Done()) {
		if !ok {
			return fmt.Errorf("prometheus stand-in: informer %v did not sync", typ)
		}
	}
	httpClient := &http.Client{Timeout: 5 * time.Second}
	var mu sync.Mutex
	last := map[string]time.Time{} // target key -> last scrape start
	go wait.UntilWithContext(ctx, func(ctx context.Context) {
		var targets []Target
		for _, gvr := range []schema.GroupVersionResource{serviceMonitors, podMonitors} {
			list, err := dyn.Resource(gvr).List(ctx, metav1.ListOptions{})
			if err != nil {
				continue
			}
			for i := range list.Items {
				mon := &list.Items[i]
				var ts []Target
				if gvr == serviceMonitors {
					svcs, _ := services.List(labels.Everything())
					sls, _ := slices.List(labels.Everything())
					ts, err = ServiceMonitorTargets(mon, svcs, sls)
				} else {
					ps, _ := pods.List(labels.Everything())
					ts, err = PodMonitorTargets(mon, ps)
				}
				if err != nil {
					klog.V(2).InfoS("prometheus stand-in: bad monitor", "monitor", mon.GetNamespace()+"/"+mon.GetName(), "err", err)
					continue
				}
				targets = append(targets, ts...)
			}
		}
		live := map[string]bool{}
		now := time.Now()
		for _, t := range targets {
			key := t.Key()
			live[key] = true
			mu.Lock()
			due := now.Sub(last[key]) >= t.Interval
			if due {
				last[key] = now
			}
			mu.Unlock()
			if due {
				go func(t Target) { st.put(t.Key(), Scrape(ctx, httpClient, t, time.Now())) }(t)
			}
		}
		st.keep(live)
		mu.Lock()
		for k := range last {
			if !live[k] {
				delete(last, k)
			}
		}
		mu.Unlock()
	}, time.Second)
	return nil
}

// api serves /api/v1/query (GET or POST form) for instant vector selectors,
// and /-/ready.
func api(st *store) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/-/ready", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("Prometheus Server is Ready.\n")) })
	mux.HandleFunc("/api/v1/query", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if err := r.ParseForm(); err != nil {
			writeError(w, err)
			return
		}
		ms, err := ParseSelector(r.Form.Get("query"))
		if err != nil {
			writeError(w, err)
			return
		}
		now := time.Now()
		result := []map[string]interface{}{}
		for _, p := range st.query(ms) {
			if now.Sub(p.at) > 5*time.Minute { // stale, as Prometheus' lookback
				continue
			}
			result = append(result, map[string]interface{}{
				"metric": p.labels,
				"value":  []interface{}{float64(p.at.UnixMilli()) / 1000, strconv.FormatFloat(p.value, 'f', -1, 64)},
			})
		}
		_ = json.NewEncoder(w).Encode(map[string]interface{}{"status": "success",
			"data": map[string]interface{}{"resultType": "vector", "result": result}})
	})
	return mux
}

func writeError(w http.ResponseWriter, err error) {
	w.WriteHeader(http.StatusBadRequest)
	_ = json.NewEncoder(w).Encode(map[string]interface{}{"status": "error", "errorType": "bad_data", "error": err.Error()})
}

// crds are the monitoring.coreos.com kinds, schemaless like a trimmed copy of
// prometheus-operator's.
func crds() []*apiextensionsv1.CustomResourceDefinition {
	var out []*apiextensionsv1.CustomResourceDefinition
	for _, k := range []struct{ kind, plural string }{{"ServiceMonitor", "servicemonitors"}, {"PodMonitor", "podmonitors"}, {"Prometheus", "prometheuses"}} {
		out = append(out, &apiextensionsv1.CustomResourceDefinition{
			ObjectMeta: metav1.ObjectMeta{Name: k.plural + "." + Group},
			Spec: apiextensionsv1.CustomResourceDefinitionSpec{
				Group: Group,
				Names: apiextensionsv1.CustomResourceDefinitionNames{Plural: k.plural, Kind: k.kind, ListKind: k.kind + "List",
					Singular: map[string]string{"servicemonitors": "servicemonitor", "podmonitors": "podmonitor", "prometheuses": "prometheus"}[k.plural]},
				Scope: apiextensionsv1.NamespaceScoped,
				Versions: []apiextensionsv1.CustomResourceDefinitionVersion{{
					Name: "v1", Served: true, Storage: true,
					Schema: &apiextensionsv1.CustomResourceValidation{OpenAPIV3Schema: &apiextensionsv1.JSONSchemaProps{
						Type: "object", XPreserveUnknownFields: ptr.To(true)}},
				}},
			},
		})
	}
	return out
}

func ensureCRDs(ctx context.Context, cfg *rest.Config) error {
	return crdinstall.Install(ctx, cfg, crds()...)
}
