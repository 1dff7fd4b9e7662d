package prometheus

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/utils/ptr"
)

func TestParseSelector(t *testing.T) {
	ms, err := ParseSelector(`requests_total{namespace="a",pod!="x", job=~"web|api",le!~'0\.5'}`)
	if err != nil || len(ms) != 5 || ms[0].Value != "requests_total" || ms[3].Op != "=~" || ms[4].Value != `0.5` {
		t.Fatalf("%+v %v", ms, err)
	}
	if !ms[3].matches("api") || ms[3].matches("apix") || !ms[2].matches("y") || ms[4].matches("0.5") {
		t.Errorf("matchers %+v", ms)
	}
	if ms, err := ParseSelector(`{__name__="up"}`); err != nil || len(ms) != 1 {
		t.Errorf("name matcher: %+v %v", ms, err)
	}
	for _, bad := range []string{"", "rate(x[5m])", "sum(up)", `up{a="1"`, `up{a=1}`, `{a=""}`, `up{a=~"("}`, "up + 1"} {
		if _, err := ParseSelector(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func monitor(kind string, spec map[string]interface{}) *unstructured.Unstructured {
	return &unstructured.Unstructured{Object: map[string]interface{}{
		"apiVersion": Group + "/v1", "kind": kind,
		"metadata": map[string]interface{}{"name": "m", "namespace": "app"},
		"spec":     spec,
	}}
}

func TestMonitorTargets(t *testing.T) {
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "app", Labels: map[string]string{"app": "web"}}}
	other := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "db", Namespace: "app", Labels: map[string]string{"app": "db"}}}
	slice := &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{Name: "web-x", Namespace: "app", Labels: map[string]string{discoveryv1.LabelServiceName: "web"}},
		Ports:      []discoveryv1.EndpointPort{{Name: ptr.To("http"), Port: ptr.To[int32](8080)}},
		Endpoints: []discoveryv1.Endpoint{
			{Addresses: []string{"198.18.0.5"}, Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)}, TargetRef: &corev1.ObjectReference{Kind: "Pod", Name: "web-1"}},
			{Addresses: []string{"198.18.0.6"}, Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(false)}},
		},
	}
	sm := monitor("ServiceMonitor", map[string]interface{}{
		"selector":  map[string]interface{}{"matchLabels": map[string]interface{}{"app": "web"}},
		"endpoints": []interface{}{map[string]interface{}{"port": "http", "interval": "2s"}},
	})
	ts, err := ServiceMonitorTargets(sm, []*corev1.Service{svc, other}, []*discoveryv1.EndpointSlice{slice})
	if err != nil || len(ts) != 1 {
		t.Fatalf("%+v %v", ts, err)
	}
	if ts[0].URL != "http://198.18.0.5:8080/metrics" || ts[0].Interval != 2*time.Second ||
		ts[0].Labels["job"] != "web" || ts[0].Labels["pod"] != "web-1" || ts[0].Labels["namespace"] != "app" {
		t.Errorf("%+v", ts[0])
	}
	// Another namespace is not selected unless the namespace selector says so.
	svc.Namespace, slice.Namespace = "elsewhere", "elsewhere"
	if ts, _ := ServiceMonitorTargets(sm, []*corev1.Service{svc}, []*discoveryv1.EndpointSlice{slice}); len(ts) != 0 {
		t.Errorf("other namespace selected: %+v", ts)
	}
	sm.Object["spec"].(map[string]interface{})["namespaceSelector"] = map[string]interface{}{"any": true}
	if ts, _ := ServiceMonitorTargets(sm, []*corev1.Service{svc}, []*discoveryv1.EndpointSlice{slice}); len(ts) != 1 {
		t.Errorf("any namespace: %+v", ts)
	}

	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "app", Labels: map[string]string{"app": "web"}},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Ports: []corev1.ContainerPort{{Name: "metrics", ContainerPort: 9000}}}}},
		Status:     corev1.PodStatus{Phase: corev1.PodRunning, PodIP: "198.18.0.7"},
	}
	pending := pod.DeepCopy()
	pending.Name, pending.Status.Phase = "q", corev1.PodPending
	pm := monitor("PodMonitor", map[string]interface{}{
		"selector":            map[string]interface{}{"matchLabels": map[string]interface{}{"app": "web"}},
		"podMetricsEndpoints": []interface{}{map[string]interface{}{"port": "metrics", "path": "/m"}},
	})
	ts, err = PodMonitorTargets(pm, []*corev1.Pod{pod, pending})
	if err != nil || len(ts) != 1 || ts[0].URL != "http://198.18.0.7:9000/m" || ts[0].Interval != defaultInterval || ts[0].Labels["job"] != "app/m" {
		t.Fatalf("%+v %v", ts, err)
	}
}

func TestScrapeStoreAndQueryAPI(t *testing.T) {
	count := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		count++
		_, _ = w.Write([]byte("# TYPE reqs_total counter\nreqs_total{job=\"inner\",code=\"200\"} " + string(rune('0'+count)) + "\n"))
	}))
	defer srv.Close()
	st := newStore()
	target := Target{URL: srv.URL + "/metrics", Labels: map[string]string{"job": "web", "namespace": "app"}}
	st.put(target.Key(), Scrape(context.Background(), srv.Client(), target, time.Now()))
	st.put(target.Key(), Scrape(context.Background(), srv.Client(), target, time.Now()))
	down := Target{URL: "http://127.0.0.1:1/metrics", Labels: map[string]string{"job": "gone"}}
	st.put(down.Key(), Scrape(context.Background(), srv.Client(), down, time.Now()))

	h := api(st)
	query := func(q string) (int, map[string]interface{}) {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/api/v1/query?query="+url.QueryEscape(q), nil))
		var out map[string]interface{}
		_ = json.Unmarshal(w.Body.Bytes(), &out)
		return w.Code, out
	}
	code, out := query(`reqs_total{namespace="app"}`)
	body, _ := json.Marshal(out)
	if code != 200 || !strings.Contains(string(body), `"exported_job":"inner"`) || !strings.Contains(string(body), `"2"]`) ||
		!strings.Contains(string(body), `"job":"web"`) {
		t.Errorf("%d %s", code, body)
	}
	_, out = query(`up`)
	body, _ = json.Marshal(out)
	if !strings.Contains(string(body), `"job":"gone"},"value":[`) || !strings.Contains(string(body), `"0"]`) {
		t.Errorf("up: %s", body)
	}
	st.keep(map[string]bool{target.Key(): true})
	if _, out = query(`up{job="gone"}`); len(out["data"].(map[string]interface{})["result"].([]interface{})) != 0 {
		t.Errorf("series of a vanished target kept: %v", out)
	}
	if code, out := query(`rate(reqs_total[1m])`); code != 400 || out["status"] != "error" {
		t.Errorf("unsupported query: %d %v", code, out)
	}
}
