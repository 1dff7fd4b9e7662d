package custommetrics

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	cmv1beta1 "k8s.io/metrics/pkg/apis/custom_metrics/v1beta1"
)

const exposition = `# HELP aiconform_probe_load Load on this probe.
# TYPE aiconform_probe_load gauge
aiconform_probe_load{queue="a"} 2.5
aiconform_probe_load{queue="b"} 1
# TYPE other gauge
other 7
`

func TestSampleValue(t *testing.T) {
	all := labels.Everything()
	v, found, err := sampleValue(strings.NewReader(exposition), "aiconform_probe_load", all)
	if err != nil || !found || v != 3.5 {
		t.Fatalf("sum over series: %v %v %v", v, found, err)
	}
	sel, _ := labels.Parse("queue=b")
	if v, found, _ := sampleValue(strings.NewReader(exposition), "aiconform_probe_load", sel); !found || v != 1 {
		t.Fatalf("metric label selector: %v %v", v, found)
	}
	none, _ := labels.Parse("queue=c")
	if _, found, _ := sampleValue(strings.NewReader(exposition), "aiconform_probe_load", none); found {
		t.Fatal("no series matches queue=c")
	}
	if _, found, _ := sampleValue(strings.NewReader(exposition), "missing", all); found {
		t.Fatal("missing metric found")
	}
	if _, _, err := sampleValue(strings.NewReader("not { an exposition"), "x", all); err == nil {
		t.Fatal("garbage parsed")
	}
}

func pod(name, ip string, annotations map[string]string, phase corev1.PodPhase) corev1.Pod {
	return corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns", Annotations: annotations, Labels: map[string]string{"app": "x"}},
		Status:     corev1.PodStatus{Phase: phase, PodIP: ip},
	}
}

func TestScrapeURL(t *testing.T) {
	ann := map[string]string{AnnotationScrape: "true", AnnotationPort: "8080"}
	if u, ok := scrapeURL(ref(pod("a", "127.16.0.2", ann, corev1.PodRunning))); !ok || u != "http://127.16.0.2:8080/metrics" {
		t.Fatalf("default path: %q %v", u, ok)
	}
	withPath := map[string]string{AnnotationScrape: "true", AnnotationPort: "9", AnnotationPath: "stats"}
	if u, _ := scrapeURL(ref(pod("a", "10.0.0.1", withPath, corev1.PodRunning))); u != "http://10.0.0.1:9/stats" {
		t.Fatalf("path: %q", u)
	}
	for name, p := range map[string]corev1.Pod{
		"pending":    pod("a", "127.16.0.2", ann, corev1.PodPending),
		"no ip":      pod("a", "", ann, corev1.PodRunning),
		"no opt-in":  pod("a", "127.16.0.2", map[string]string{AnnotationPort: "8080"}, corev1.PodRunning),
		"bad port":   pod("a", "127.16.0.2", map[string]string{AnnotationScrape: "true", AnnotationPort: "http"}, corev1.PodRunning),
		"no port":    pod("a", "127.16.0.2", map[string]string{AnnotationScrape: "true"}, corev1.PodRunning),
		"terminated": pod("a", "127.16.0.2", ann, corev1.PodSucceeded),
	} {
		if _, ok := scrapeURL(&p); ok {
			t.Errorf("%s: scraped", name)
		}
	}
}

func ref[T any](v T) *T { return &v }

func TestParseQuery(t *testing.T) {
	q, err := parseQuery("namespaces/ns/pods/*/aiconform_probe_load")
	if err != nil || q != (query{"ns", "*", "aiconform_probe_load"}) {
		t.Fatalf("%+v %v", q, err)
	}
	for _, bad := range []string{"namespaces/ns/services/x/m", "pods/*/m", "namespaces/ns/pods/*", "namespaces/ns/pods/*/bad-name"} {
		if _, err := parseQuery(bad); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
}

// TestHandlerScrapesPods serves real expositions from httptest servers and
// checks the MetricValueList the HPA controller would decode.
func TestHandlerScrapesPods(t *testing.T) {
	load := map[string]string{"a": "aiconform_probe_load 4\n", "b": "aiconform_probe_load 0.25\n", "c": "other 1\n"}
	targets := map[string]string{}
	for name, body := range load {
		body := body
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path != "/metrics" {
				http.NotFound(w, r)
				return
			}
			fmt.Fprint(w, "# TYPE aiconform_probe_load gauge\n"+body)
		}))
		t.Cleanup(srv.Close)
		targets[name] = srv.URL
	}
	ann := map[string]string{AnnotationScrape: "true", AnnotationPort: "1"}
	pods := []corev1.Pod{
		pod("a", "a", ann, corev1.PodRunning),
		pod("b", "b", ann, corev1.PodRunning),
		pod("c", "c", ann, corev1.PodRunning),
		pod("d", "d", ann, corev1.PodPending),
	}
	var gotSelector string
	h := &handler{
		pods: func(_ context.Context, ns string, sel labels.Selector) ([]corev1.Pod, error) {
			gotSelector = sel.String()
			return pods, nil
		},
		// Pod IPs stand for the test servers: replace host:port with the server's.
		scrape: func(ctx context.Context, url, name string, sel labels.Selector) (float64, bool, error) {
			host := strings.TrimPrefix(url, "http://")
			host = host[:strings.Index(host, ":")]
			return newScraper().scrape(ctx, targets[host]+"/metrics", name, sel)
		},
		now: func() time.Time { return time.Unix(1700000000, 0) },
	}
	srv := httptest.NewServer(h)
	defer srv.Close()

	get := func(path string) (int, []byte) {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var raw json.RawMessage
		_ = json.NewDecoder(resp.Body).Decode(&raw)
		return resp.StatusCode, raw
	}

	code, body := get("/apis/custom.metrics.k8s.io/v1beta1/namespaces/ns/pods/*/aiconform_probe_load?labelSelector=app%3Dx")
	if code != 200 {
		t.Fatalf("list: %d %s", code, body)
	}
	var list cmv1beta1.MetricValueList
	if err := json.Unmarshal(body, &list); err != nil {
		t.Fatal(err)
	}
	if gotSelector != "app=x" || list.Kind != "MetricValueList" || len(list.Items) != 2 {
		t.Fatalf("selector %q, list %+v", gotSelector, list)
	}
	if list.Items[0].DescribedObject.Name != "a" || list.Items[0].Value.MilliValue() != 4000 ||
		list.Items[1].DescribedObject.Name != "b" || list.Items[1].Value.MilliValue() != 250 {
		t.Fatalf("values: %+v", list.Items)
	}
	if list.Items[0].DescribedObject.Kind != "Pod" || list.Items[0].MetricName != "aiconform_probe_load" {
		t.Fatalf("described object: %+v", list.Items[0])
	}

	if code, body := get("/apis/custom.metrics.k8s.io/v1beta1/namespaces/ns/pods/b/aiconform_probe_load"); code != 200 || !strings.Contains(string(body), `"250m"`) {
		t.Fatalf("single pod: %d %s", code, body)
	}
	if code, body := get("/apis/custom.metrics.k8s.io/v1beta1/namespaces/ns/pods/c/aiconform_probe_load"); code != 404 || !strings.Contains(string(body), "could not find the metric") {
		t.Fatalf("pod without the metric: %d %s", code, body)
	}
	if code, body := get("/apis/custom.metrics.k8s.io/v1beta1"); code != 200 || !strings.Contains(string(body), `"pods/*"`) {
		t.Fatalf("discovery: %d %s", code, body)
	}
	if code, _ := get("/apis/custom.metrics.k8s.io/v1beta1/namespaces/ns/services/x/m"); code != 404 {
		t.Fatalf("unsupported resource: %d", code)
	}
	if code, _ := get("/apis"); code != 404 {
		t.Fatalf("/apis (aggregated discovery falls back to the group version): %d", code)
	}
}
