package custommetrics

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/klog/v2"
	cmv1beta1 "k8s.io/metrics/pkg/apis/custom_metrics/v1beta1"
)

// podLister lists the pods of a namespace that match a label selector.
type podLister func(ctx context.Context, namespace string, selector labels.Selector) ([]corev1.Pod, error)

// scrapeFunc reads metric `name` (samples matching selector, summed) from a
// pod's exposition at url.
type scrapeFunc func(ctx context.Context, url, name string, selector labels.Selector) (float64, bool, error)

// handler serves custom.metrics.k8s.io/v1beta1 for pods: discovery of the
// group version and GET .../namespaces/NS/pods/{NAME|*}/METRIC, answered by
// scraping the selected pods' Prometheus endpoints.
type handler struct {
	pods   podLister
	scrape scrapeFunc
	now    func() time.Time
}

var groupVersionPath = "/apis/" + cmv1beta1.SchemeGroupVersion.String()

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		writeStatus(w, http.StatusMethodNotAllowed, metav1.StatusReasonMethodNotAllowed, "only GET is served")
		return
	}
	path := strings.TrimSuffix(r.URL.Path, "/")
	if path == groupVersionPath {
		writeJSON(w, http.StatusOK, discovery())
		return
	}
	rest, ok := strings.CutPrefix(path, groupVersionPath+"/")
	if !ok {
		writeStatus(w, http.StatusNotFound, metav1.StatusReasonNotFound, fmt.Sprintf("%s is not served", r.URL.Path))
		return
	}
	q, err := parseQuery(rest)
	if err != nil {
		writeStatus(w, http.StatusNotFound, metav1.StatusReasonNotFound, err.Error())
		return
	}
	sel, err := labels.Parse(r.URL.Query().Get("labelSelector"))
	if err != nil {
		writeStatus(w, http.StatusBadRequest, metav1.StatusReasonBadRequest, "labelSelector: "+err.Error())
		return
	}
	metricSel, err := labels.Parse(r.URL.Query().Get("metricLabelSelector"))
	if err != nil {
		writeStatus(w, http.StatusBadRequest, metav1.StatusReasonBadRequest, "metricLabelSelector: "+err.Error())
		return
	}
	list, err := h.values(r.Context(), q, sel, metricSel)
	if err != nil {
		writeStatus(w, http.StatusInternalServerError, metav1.StatusReasonInternalError, err.Error())
		return
	}
	if q.pod != cmv1beta1.AllObjects && len(list.Items) == 0 {
		writeStatus(w, http.StatusNotFound, metav1.StatusReasonNotFound,
			fmt.Sprintf("the server could not find the metric %s for pods %s/%s", q.metric, q.namespace, q.pod))
		return
	}
	klog.V(2).InfoS("custom metrics", "namespace", q.namespace, "pod", q.pod, "metric", q.metric, "selector", sel.String(), "items", len(list.Items))
	writeJSON(w, http.StatusOK, list)
}

// query is a parsed metric path.
type query struct {
	namespace, pod, metric string
}

// parseQuery parses `namespaces/NS/pods/NAME/METRIC` (NAME may be `*`).
func parseQuery(rest string) (query, error) {
	parts := strings.Split(rest, "/")
	if len(parts) != 5 || parts[0] != "namespaces" || parts[2] != "pods" {
		return query{}, fmt.Errorf("only namespaces/NAMESPACE/pods/{NAME|*}/METRIC is served, not %s", rest)
	}
	q := query{namespace: parts[1], pod: parts[3], metric: parts[4]}
	if q.namespace == "" || q.pod == "" || !validMetricName(q.metric) {
		return query{}, fmt.Errorf("invalid metric path %s", rest)
	}
	return q, nil
}

// values scrapes the selected pods concurrently and returns their values,
// sorted by pod name. Pods that are not scrape targets, cannot be scraped or
// lack the metric are left out, as a Prometheus-backed adapter leaves out
// series it does not have.
func (h *handler) values(ctx context.Context, q query, sel, metricSel labels.Selector) (*cmv1beta1.MetricValueList, error) {
	pods, err := h.pods(ctx, q.namespace, sel)
	if err != nil {
		return nil, err
	}
	var (
		mu    sync.Mutex
		wg    sync.WaitGroup
		items []cmv1beta1.MetricValue
	)
	ts := metav1.NewTime(h.now())
	for i := range pods {
		pod := &pods[i]
		if q.pod != cmv1beta1.AllObjects && pod.Name != q.pod {
			continue
		}
		url, ok := scrapeURL(pod)
		if !ok {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			v, found, err := h.scrape(ctx, url, q.metric, metricSel)
			if err != nil {
				klog.V(2).InfoS("custom metrics: scrape failed", "pod", klog.KObj(pod), "url", url, "err", err)
				return
			}
			if !found {
				return
			}
			item := cmv1beta1.MetricValue{
				DescribedObject: corev1.ObjectReference{Kind: "Pod", Namespace: pod.Namespace, Name: pod.Name, APIVersion: "/v1"},
				MetricName:      q.metric,
				Timestamp:       ts,
				Value:           quantity(v),
			}
			mu.Lock()
			items = append(items, item)
			mu.Unlock()
		}()
	}
	wg.Wait()
	sort.Slice(items, func(a, b int) bool { return items[a].DescribedObject.Name < items[b].DescribedObject.Name })
	if items == nil {
		items = []cmv1beta1.MetricValue{}
	}
	return &cmv1beta1.MetricValueList{
		TypeMeta: metav1.TypeMeta{Kind: "MetricValueList", APIVersion: cmv1beta1.SchemeGroupVersion.String()},
		Items:    items,
	}, nil
}

// quantity renders v with milli precision (the HPA compares milli-values).
func quantity(v float64) resource.Quantity {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		v = 0
	}
	return *resource.NewMilliQuantity(int64(math.Round(v*1000)), resource.DecimalSI)
}

func discovery() *metav1.APIResourceList {
	return &metav1.APIResourceList{
		TypeMeta:     metav1.TypeMeta{Kind: "APIResourceList", APIVersion: "v1"},
		GroupVersion: cmv1beta1.SchemeGroupVersion.String(),
		APIResources: []metav1.APIResource{{
			Name: "pods/*", Namespaced: true, Kind: "MetricValueList", Verbs: []string{"get"},
		}},
	}
}

func writeJSON(w http.ResponseWriter, code int, v interface{}) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func writeStatus(w http.ResponseWriter, code int, reason metav1.StatusReason, msg string) {
	writeJSON(w, code, &metav1.Status{
		TypeMeta: metav1.TypeMeta{Kind: "Status", APIVersion: "v1"},
		Status:   metav1.StatusFailure, Code: int32(code), Reason: reason, Message: msg,
	})
}
