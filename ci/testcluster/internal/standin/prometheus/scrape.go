package prometheus

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
)

// Target is one endpoint a monitor selects: where to scrape and the labels
// its series get (as prometheus-operator's relabelling sets them).
type Target struct {
	URL      string
	Interval time.Duration
	Labels   map[string]string
}

// Key identifies a target across discovery rounds.
func (t Target) Key() string { return t.URL + "|" + seriesKey(t.Labels) }

const defaultInterval = 30 * time.Second

// monitorEndpoint is one entry of a ServiceMonitor's spec.endpoints or a
// PodMonitor's spec.podMetricsEndpoints.
type monitorEndpoint struct {
	Port       string `json:"port"`
	TargetPort any    `json:"targetPort"`
	Path       string `json:"path"`
	Scheme     string `json:"scheme"`
	Interval   string `json:"interval"`
}

type namespaceSelector struct {
	Any        bool     `json:"any"`
	MatchNames []string `json:"matchNames"`
}

type monitorSpec struct {
	JobLabel            string               `json:"jobLabel"`
	Selector            metav1.LabelSelector `json:"selector"`
	NamespaceSelector   namespaceSelector    `json:"namespaceSelector"`
	Endpoints           []monitorEndpoint    `json:"endpoints"`
	PodMetricsEndpoints []monitorEndpoint    `json:"podMetricsEndpoints"`
}

func decodeSpec(u *unstructured.Unstructured) (monitorSpec, error) {
	var s monitorSpec
	spec, _, _ := unstructured.NestedMap(u.Object, "spec")
	err := runtime.DefaultUnstructuredConverter.FromUnstructured(spec, &s)
	return s, err
}

func (n namespaceSelector) includes(own, ns string) bool {
	switch {
	case n.Any:
		return true
	case len(n.MatchNames) > 0:
		for _, m := range n.MatchNames {
			if m == ns {
				return true
			}
		}
		return false
	default:
		return ns == own
	}
}

func interval(s string) time.Duration {
	if d, err := model.ParseDuration(s); err == nil && d > 0 {
		return time.Duration(d)
	}
	return defaultInterval
}

func endpointURL(scheme, host string, port int32, path string) string {
	if scheme == "" {
		scheme = "http"
	}
	if path == "" {
		path = "/metrics"
	}
	return fmt.Sprintf("%s://%s%s", scheme, net.JoinHostPort(host, strconv.Itoa(int(port))), path)
}

// ServiceMonitorTargets resolves a ServiceMonitor: Services it selects, their
// ready EndpointSlice addresses on the port each endpoint names.
func ServiceMonitorTargets(mon *unstructured.Unstructured, services []*corev1.Service, slices []*discoveryv1.EndpointSlice) ([]Target, error) {
	spec, err := decodeSpec(mon)
	if err != nil {
		return nil, err
	}
	sel, err := metav1.LabelSelectorAsSelector(&spec.Selector)
	if err != nil {
		return nil, err
	}
	var out []Target
	for _, svc := range services {
		if !spec.NamespaceSelector.includes(mon.GetNamespace(), svc.Namespace) || !sel.Matches(labels.Set(svc.Labels)) {
			continue
		}
		job := svc.Name
		if v := svc.Labels[spec.JobLabel]; spec.JobLabel != "" && v != "" {
			job = v
		}
		for _, ep := range spec.Endpoints {
			for _, sl := range slices {
				if sl.Namespace != svc.Namespace || sl.Labels[discoveryv1.LabelServiceName] != svc.Name {
					continue
				}
				for _, p := range sl.Ports {
					if p.Port == nil || ptrString(p.Name) != ep.Port {
						continue
					}
					for _, e := range sl.Endpoints {
						if e.Conditions.Ready != nil && !*e.Conditions.Ready {
							continue
						}
						for _, addr := range e.Addresses {
							l := map[string]string{"job": job, "namespace": svc.Namespace, "service": svc.Name, "endpoint": ep.Port,
								"instance": net.JoinHostPort(addr, strconv.Itoa(int(*p.Port)))}
							if e.TargetRef != nil && e.TargetRef.Kind == "Pod" {
								l["pod"] = e.TargetRef.Name
							}
							out = append(out, Target{URL: endpointURL(ep.Scheme, addr, *p.Port, ep.Path), Interval: interval(ep.Interval), Labels: l})
						}
					}
				}
			}
		}
	}
	return out, nil
}

// PodMonitorTargets resolves a PodMonitor: running pods it selects, on the
// container port each endpoint names.
func PodMonitorTargets(mon *unstructured.Unstructured, pods []*corev1.Pod) ([]Target, error) {
	spec, err := decodeSpec(mon)
	if err != nil {
		return nil, err
	}
	sel, err := metav1.LabelSelectorAsSelector(&spec.Selector)
	if err != nil {
		return nil, err
	}
	job := mon.GetNamespace() + "/" + mon.GetName()
	var out []Target
	for _, pod := range pods {
		if !spec.NamespaceSelector.includes(mon.GetNamespace(), pod.Namespace) || !sel.Matches(labels.Set(pod.Labels)) ||
			pod.Status.Phase != corev1.PodRunning || pod.Status.PodIP == "" || pod.DeletionTimestamp != nil {
			continue
		}
		for _, ep := range spec.PodMetricsEndpoints {
			for _, c := range pod.Spec.Containers {
				for _, cp := range c.Ports {
					if cp.Name == "" || cp.Name != ep.Port {
						continue
					}
					l := map[string]string{"job": job, "namespace": pod.Namespace, "pod": pod.Name, "container": c.Name,
						"endpoint": ep.Port, "instance": net.JoinHostPort(pod.Status.PodIP, strconv.Itoa(int(cp.ContainerPort)))}
					out = append(out, Target{URL: endpointURL(ep.Scheme, pod.Status.PodIP, cp.ContainerPort, ep.Path), Interval: interval(ep.Interval), Labels: l})
				}
			}
		}
	}
	return out, nil
}

func ptrString(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// Scrape fetches a target and returns its samples with the target's labels
// (a scraped label that clashes with a target label is kept as exported_<name>)
// plus the `up` series.
func Scrape(ctx context.Context, client *http.Client, t Target, now time.Time) []point {
	up := func(v float64) point {
		l := map[string]string{"__name__": "up"}
		for k, x := range t.Labels {
			l[k] = x
		}
		return point{labels: l, value: v, at: now}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, t.URL, nil)
	if err != nil {
		return []point{up(0)}
	}
	resp, err := client.Do(req)
	if err != nil {
		return []point{up(0)}
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return []point{up(0)}
	}
	var parser expfmt.TextParser
	fams, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		return []point{up(0)}
	}
	out := []point{up(1)}
	for name, f := range fams {
		for _, m := range f.Metric {
			l := map[string]string{}
			for _, lp := range m.Label {
				l[lp.GetName()] = lp.GetValue()
			}
			for k, v := range t.Labels {
				if old, ok := l[k]; ok {
					l["exported_"+k] = old
				}
				l[k] = v
			}
			l["__name__"] = name
			var v float64
			switch {
			case m.Counter != nil:
				v = m.Counter.GetValue()
			case m.Gauge != nil:
				v = m.Gauge.GetValue()
			case m.Untyped != nil:
				v = m.Untyped.GetValue()
			default:
				continue // summaries and histograms are not needed by the query API's users here
			}
			out = append(out, point{labels: l, value: v, at: now})
		}
	}
	return out
}
