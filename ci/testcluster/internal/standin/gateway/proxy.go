package gateway

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	corelisters "k8s.io/client-go/listers/core/v1"
	discoverylisters "k8s.io/client-go/listers/discovery/v1"
	"k8s.io/client-go/tools/cache"
)

// Endpoints resolves a Service port to the ready endpoint addresses
// (host:port) behind it.
type Endpoints interface {
	Ready(namespace, service string, port int32) ([]string, error)
	// PoolReady lists an InferencePool's ready members (host:targetPort).
	PoolReady(namespace, pool string) ([]string, error)
}

// sliceEndpoints reads Services, EndpointSlices and Pods from informer listers.
type sliceEndpoints struct {
	services corelisters.ServiceLister
	slices   discoverylisters.EndpointSliceLister
	pods     corelisters.PodLister
	pools    cache.GenericLister
	// live lists pods from the API server (not the cache).
	live func(ns, selector string) ([]*corev1.Pod, error)
}

func (e sliceEndpoints) PoolReady(ns, name string) ([]string, error) {
	out, _, err := e.poolMembers(ns, name)
	return out, err
}

// PoolRoles maps the pool's ready members to their RoleLabel values.
func (e sliceEndpoints) PoolRoles(ns, name string) (map[string]string, error) {
	addrs, pods, err := e.poolMembers(ns, name)
	if err != nil {
		return nil, err
	}
	roles := map[string]string{}
	for _, a := range addrs {
		if p := pods[a]; p != nil {
			roles[a] = p.Labels[RoleLabel]
		}
	}
	return roles, nil
}

// poolMembers lists the pool's ready members (host:targetPort) and the pod
// behind each.
func (e sliceEndpoints) poolMembers(ns, name string) ([]string, map[string]*corev1.Pod, error) {
	obj, err := e.pools.ByNamespace(ns).Get(name)
	if err != nil {
		return nil, nil, err
	}
	u, ok := obj.(*unstructured.Unstructured)
	if !ok {
		return nil, nil, fmt.Errorf("InferencePool %s/%s: unexpected object", ns, name)
	}
	var spec poolSpec
	if err := decode(u, "spec", &spec); err != nil {
		return nil, nil, err
	}
	if len(spec.TargetPorts) == 0 || len(spec.Selector.MatchLabels) == 0 {
		return nil, nil, fmt.Errorf("InferencePool %s/%s has no selector or target port", ns, name)
	}
	sel := labels.SelectorFromSet(spec.Selector.MatchLabels)
	pods, err := e.pods.Pods(ns).List(sel)
	if err != nil {
		return nil, nil, err
	}
	// The pool's target port as a Service port of the same number.
	port := spec.TargetPorts[0].Number
	svc := &corev1.Service{Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: port, TargetPort: intstr.FromInt32(port)}}}}
	out, err := readyPodAddresses(svc, pods, port)
	if err == nil && len(out) == 0 && e.live != nil {
		if pods, err = e.live(ns, sel.String()); err != nil {
			return nil, nil, err
		}
		out, err = readyPodAddresses(svc, pods, port)
	}
	if err != nil {
		return nil, nil, err
	}
	byAddr := map[string]*corev1.Pod{}
	for _, p := range pods {
		if p.Status.PodIP != "" {
			byAddr[net.JoinHostPort(p.Status.PodIP, strconv.Itoa(int(port)))] = p
		}
	}
	return out, byAddr, nil
}

// Ready reads the Service's EndpointSlices. Pod IPs of this cluster are in
// 127.0.0.0/8, which EndpointSlice validation rejects, so the endpointslice
// controller cannot publish them; when no slice lists a ready endpoint the
// same selection is made from the Pods (ready pods the selector matches).
func (e sliceEndpoints) Ready(ns, name string, port int32) ([]string, error) {
	svc, err := e.services.Services(ns).Get(name)
	if err != nil {
		return nil, err
	}
	slices, err := e.slices.EndpointSlices(ns).List(labels.SelectorFromSet(labels.Set{discoveryv1.LabelServiceName: name}))
	if err != nil {
		return nil, err
	}
	out, err := readyAddresses(svc, slices, port)
	if err != nil || len(out) > 0 || len(svc.Spec.Selector) == 0 {
		return out, err
	}
	sel := labels.SelectorFromSet(svc.Spec.Selector)
	pods, err := e.pods.Pods(ns).List(sel)
	if err != nil {
		return nil, err
	}
	out, err = readyPodAddresses(svc, pods, port)
	if err != nil || len(out) > 0 || e.live == nil {
		return out, err
	}
	// The cache may trail the API server by a moment; ask it before answering 503.
	live, err := e.live(ns, sel.String())
	if err != nil {
		return nil, err
	}
	return readyPodAddresses(svc, live, port)
}

// readyPodAddresses is what the endpointslice controller would publish: the
// ready, non-terminating pods with an IP, at the Service port's target port
// (a number, or a container port's name).
func readyPodAddresses(svc *corev1.Service, pods []*corev1.Pod, port int32) ([]string, error) {
	var sp *corev1.ServicePort
	for i := range svc.Spec.Ports {
		if svc.Spec.Ports[i].Port == port {
			sp = &svc.Spec.Ports[i]
		}
	}
	if sp == nil {
		return nil, fmt.Errorf("Service %s/%s has no port %d", svc.Namespace, svc.Name, port)
	}
	sorted := append([]*corev1.Pod(nil), pods...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Name < sorted[j].Name })
	var out []string
	for _, p := range sorted {
		if p.DeletionTimestamp != nil || p.Status.PodIP == "" || !podReady(p) {
			continue
		}
		target := sp.TargetPort.IntVal
		if sp.TargetPort.Type == intstr.String {
			target = 0
			for _, c := range p.Spec.Containers {
				for _, cp := range c.Ports {
					if cp.Name == sp.TargetPort.StrVal {
						target = cp.ContainerPort
					}
				}
			}
		} else if target == 0 {
			target = sp.Port
		}
		if target == 0 {
			continue
		}
		out = append(out, net.JoinHostPort(p.Status.PodIP, strconv.Itoa(int(target))))
	}
	return out, nil
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// readyAddresses maps a Service port to its target port in the slices and
// lists the ready endpoints' addresses with it, sorted by slice order.
func readyAddresses(svc *corev1.Service, slices []*discoveryv1.EndpointSlice, port int32) ([]string, error) {
	var sp *corev1.ServicePort
	for i := range svc.Spec.Ports {
		if svc.Spec.Ports[i].Port == port {
			sp = &svc.Spec.Ports[i]
		}
	}
	if sp == nil {
		return nil, fmt.Errorf("Service %s/%s has no port %d", svc.Namespace, svc.Name, port)
	}
	var out []string
	for _, s := range slices {
		var target int32
		for _, p := range s.Ports {
			if p.Port != nil && (p.Name == nil && sp.Name == "" || p.Name != nil && *p.Name == sp.Name) {
				target = *p.Port
			}
		}
		if target == 0 {
			continue
		}
		for _, ep := range s.Endpoints {
			if ep.Conditions.Ready != nil && !*ep.Conditions.Ready {
				continue
			}
			for _, a := range ep.Addresses {
				out = append(out, net.JoinHostPort(a, strconv.Itoa(int(target))))
			}
		}
	}
	return out, nil
}

// table is what one Gateway routes: its attached rules in precedence order.
type table struct {
	rules []routeRule
}

// proxy is one Gateway's data plane: it matches a request against the
// current table, picks a backend by weight, an endpoint round robin, and
// forwards the request.
type proxy struct {
	gateway   string
	table     atomic.Pointer[table]
	endpoints Endpoints
	picker    *endpointPicker
	transport http.RoundTripper
	// noDisaggregation ignores pool members' roles (fault).
	noDisaggregation bool

	mu   sync.Mutex
	next map[string]int // round-robin position per backend
}

func newProxy(gateway string, eps Endpoints, picker *endpointPicker) *proxy {
	p := &proxy{gateway: gateway, endpoints: eps, picker: picker, next: map[string]int{},
		transport: &http.Transport{MaxIdleConnsPerHost: 16, IdleConnTimeout: 30 * time.Second, ResponseHeaderTimeout: 30 * time.Second}}
	p.table.Store(&table{})
	return p
}

func (p *proxy) endpoint(b backend) (string, error) {
	addrs, err := p.endpoints.Ready(b.Namespace, b.Service, b.Port)
	if err != nil {
		return "", err
	}
	if len(addrs) == 0 {
		return "", fmt.Errorf("Service %s/%s port %d has no ready endpoints", b.Namespace, b.Service, b.Port)
	}
	key := fmt.Sprintf("%s/%s:%d", b.Namespace, b.Service, b.Port)
	p.mu.Lock()
	i := p.next[key] % len(addrs)
	p.next[key] = i + 1
	p.mu.Unlock()
	return addrs[i], nil
}

func (p *proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rule := firstMatch(p.table.Load().rules, r)
	if rule == nil {
		http.Error(w, fmt.Sprintf("gateway %s: no HTTPRoute rule matches %s %s", p.gateway, r.Method, r.URL.Path), http.StatusNotFound)
		return
	}
	b, ok := rule.Pick.next()
	if !ok {
		http.Error(w, fmt.Sprintf("gateway %s: HTTPRoute %s rule %d has no backend with weight", p.gateway, rule.Route, rule.Index), http.StatusInternalServerError)
		return
	}
	var addr string
	var err error
	if b.Pool {
		var members []string
		var split bool
		if addr, split, err = p.disaggregated(w, r, b); !split && err == nil {
			if members, err = p.endpoints.PoolReady(b.Namespace, b.Service); err == nil {
				addr, err = p.picker.pick(r.Context(), members)
			}
		}
		if err != nil {
			err = fmt.Errorf("InferencePool %s/%s: %w", b.Namespace, b.Service, err)
		}
	} else {
		addr, err = p.endpoint(b)
	}
	if err != nil {
		http.Error(w, fmt.Sprintf("gateway %s: %v", p.gateway, err), http.StatusServiceUnavailable)
		return
	}
	if b.Pool {
		r.Header.Set(DestinationHeader, addr)
		w.Header().Set(DestinationHeader, addr)
	}
	target := &url.URL{Scheme: "http", Host: addr}
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			pr.Out.Host = pr.In.Host
			pr.SetXForwarded()
		},
		Transport: p.transport,
		ErrorHandler: func(w http.ResponseWriter, _ *http.Request, err error) {
			http.Error(w, fmt.Sprintf("gateway %s: backend %s/%s (%s): %v", p.gateway, b.Namespace, b.Service, addr, err), http.StatusBadGateway)
		},
	}
	rp.ServeHTTP(w, r)
}
