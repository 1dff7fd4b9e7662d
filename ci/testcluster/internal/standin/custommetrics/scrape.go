package custommetrics

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// Pod annotations that make a pod a scrape target, as in Prometheus' common
// kubernetes-pods scrape configuration.
const (
	AnnotationScrape = "prometheus.io/scrape"
	AnnotationPort   = "prometheus.io/port"
	AnnotationPath   = "prometheus.io/path"
)

// scrapeURL is the metrics URL of a Running pod that asks to be scraped
// (`prometheus.io/scrape: "true"` and a `prometheus.io/port`), or false.
func scrapeURL(pod *corev1.Pod) (string, bool) {
	a := pod.Annotations
	if a[AnnotationScrape] != "true" || pod.Status.Phase != corev1.PodRunning || pod.Status.PodIP == "" || pod.DeletionTimestamp != nil {
		return "", false
	}
	port, err := strconv.Atoi(a[AnnotationPort])
	if err != nil || port <= 0 || port > 65535 {
		return "", false
	}
	path := a[AnnotationPath]
	if path == "" {
		path = "/metrics"
	}
	if !strings.HasPrefix(path, "/") {
		path = "/" + path
	}
	return "http://" + net.JoinHostPort(pod.Status.PodIP, strconv.Itoa(port)) + path, true
}

// sampleValue sums the samples of gauge or untyped family `name` whose labels
// match `selector`, from a Prometheus text exposition. Found is false when no
// sample matches.
func sampleValue(text io.Reader, name string, selector labels.Selector) (value float64, found bool, err error) {
	parser := expfmt.TextParser{}
	families, err := parser.TextToMetricFamilies(text)
	if err != nil {
		return 0, false, fmt.Errorf("parsing the exposition: %w", err)
	}
	fam, ok := families[name]
	if !ok {
		return 0, false, nil
	}
	for _, m := range fam.GetMetric() {
		set := labels.Set{}
		for _, l := range m.GetLabel() {
			set[l.GetName()] = l.GetValue()
		}
		if !selector.Matches(set) {
			continue
		}
		switch {
		case m.GetGauge() != nil:
			value += m.GetGauge().GetValue()
		case m.GetUntyped() != nil:
			value += m.GetUntyped().GetValue()
		case m.GetCounter() != nil:
			value += m.GetCounter().GetValue()
		default:
			continue
		}
		found = true
	}
	return value, found, nil
}

// validMetricName reports whether s is a legacy Prometheus metric name (the
// only names a custom metrics path segment carries here).
func validMetricName(s string) bool {
	return model.IsValidLegacyMetricName(s)
}

// scraper fetches expositions over HTTP with a short timeout.
type scraper struct {
	client *http.Client
}

func newScraper() *scraper {
	return &scraper{client: &http.Client{Timeout: 3 * time.Second}}
}

func (s *scraper) scrape(ctx context.Context, url, name string, selector labels.Selector) (float64, bool, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, false, err
	}
	req.Header.Set("Accept", "text/plain;version=0.0.4")
	resp, err := s.client.Do(req)
	if err != nil {
		return 0, false, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, false, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return sampleValue(io.LimitReader(resp.Body, 8<<20), name, selector)
}
