// Package clusterip carries the control plane's connections to Service
// ClusterIPs to the Services' ready endpoints, as kube-proxy does on a
// control-plane node. The cluster has no kube-proxy (its rules would be
// global to the machine and shared by every test cluster on it), so
// kube-apiserver's "cluster" egress (admission and conversion webhooks,
// aggregated APIs, service and pod proxy, kubelets) goes through this HTTP
// CONNECT proxy on a unix socket (an EgressSelectorConfiguration): a target
// that is a ClusterIP:port is dialled at one of its ready endpoints, any
// other target directly.
package clusterip

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	discoverylisters "k8s.io/client-go/listers/discovery/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"
)

// EgressConfig is the kube-apiserver --egress-selector-config-file content
// that sends cluster traffic through the proxy at socket.
func EgressConfig(socket string) string {
	return fmt.Sprintf(`apiVersion: apiserver.k8s.io/v1beta1
kind: EgressSelectorConfiguration
egressSelections:
- name: cluster
  connection:
    proxyProtocol: HTTPConnect
    transport:
      uds:
        udsName: %s
`, socket)
}

// Proxy is the CONNECT proxy. It dials targets directly until Watch has
// synced its Service and EndpointSlice caches.
type Proxy struct {
	ln     net.Listener
	dialer net.Dialer

	mu     sync.RWMutex
	index  cache.Indexer // Services by ClusterIP; nil until synced
	slices discoverylisters.EndpointSliceLister
}

// Listen opens the proxy's unix socket (replacing a stale one) and serves
// until ctx ends. Call before kube-apiserver starts.
func Listen(ctx context.Context, socket string) (*Proxy, error) {
	_ = os.Remove(socket)
	ln, err := net.Listen("unix", socket)
	if err != nil {
		return nil, fmt.Errorf("cluster IP proxy: %w", err)
	}
	p := &Proxy{ln: ln, dialer: net.Dialer{Timeout: 10 * time.Second}}
	srv := &http.Server{Handler: p, ReadHeaderTimeout: 10 * time.Second}
	go func() { <-ctx.Done(); _ = srv.Close() }()
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			klog.ErrorS(err, "cluster IP proxy stopped")
		}
	}()
	return p, nil
}

// Watch resolves ClusterIPs from the cluster's Services and EndpointSlices
// once their caches have synced.
func (p *Proxy) Watch(ctx context.Context, client kubernetes.Interface) error {
	factory := informers.NewSharedInformerFactory(client, 0)
	svcInf := factory.Core().V1().Services()
	sliceInf := factory.Discovery().V1().EndpointSlices()
	if err := svcInf.Informer().AddIndexers(cache.Indexers{byClusterIP: clusterIPIndex}); err != nil {
		return err
	}
	slices := sliceInf.Lister()
	svcIndex := svcInf.Informer().GetIndexer()
	factory.Start(ctx.Done())
	for typ, ok := range factory.WaitForCacheSync(ctx.Done()) {
		if !ok {
			return fmt.Errorf("cluster IP proxy: %v cache did not sync", typ)
		}
	}
	p.mu.Lock()
	p.slices, p.index = slices, svcIndex
	p.mu.Unlock()
	return nil
}

const byClusterIP = "clusterIP"

func clusterIPIndex(obj interface{}) ([]string, error) {
	svc, ok := obj.(*corev1.Service)
	if !ok || svc.Spec.ClusterIP == "" || svc.Spec.ClusterIP == corev1.ClusterIPNone {
		return nil, nil
	}
	return svc.Spec.ClusterIPs, nil
}

// ServeHTTP answers CONNECT host:port with a tunnel to the target (or to an
// endpoint of the Service whose ClusterIP it is).
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodConnect {
		http.Error(w, "only CONNECT is served", http.StatusMethodNotAllowed)
		return
	}
	target, err := p.resolve(r.Host)
	if err != nil {
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	}
	upstream, err := DialAny(r.Context(), &p.dialer, target)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	hj, ok := w.(http.Hijacker)
	if !ok {
		upstream.Close()
		http.Error(w, "cannot hijack", http.StatusInternalServerError)
		return
	}
	conn, buf, err := hj.Hijack()
	if err != nil {
		upstream.Close()
		return
	}
	if _, err := conn.Write([]byte("HTTP/1.1 200 Connection established\r\n\r\n")); err != nil {
		conn.Close()
		upstream.Close()
		return
	}
	Splice(conn, buf.Reader, upstream)
}

// DialAny dials the first address that answers, in the given order.
func DialAny(ctx context.Context, d *net.Dialer, addrs []string) (net.Conn, error) {
	var last error
	for _, a := range addrs {
		c, err := d.DialContext(ctx, "tcp", a)
		if err == nil {
			return c, nil
		}
		last = err
	}
	return nil, last
}

// Splice copies both ways (client's bytes read from fromClient) until both
// directions are done, then closes both connections.
func Splice(client net.Conn, fromClient io.Reader, upstream net.Conn) {
	done := make(chan struct{}, 2)
	go func() { _, _ = io.Copy(upstream, fromClient); closeWrite(upstream); done <- struct{}{} }()
	go func() { _, _ = io.Copy(client, upstream); closeWrite(client); done <- struct{}{} }()
	<-done
	<-done
	client.Close()
	upstream.Close()
}

func closeWrite(c net.Conn) {
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
	} else {
		_ = c.Close()
	}
}

// resolve maps host:port to the addresses to dial: the ready endpoints (in
// random order) when host is a Service's ClusterIP, else host:port itself.
func (p *Proxy) resolve(hostport string) ([]string, error) {
	host, portStr, err := net.SplitHostPort(hostport)
	if err != nil {
		return nil, fmt.Errorf("bad CONNECT target %q: %w", hostport, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return nil, fmt.Errorf("bad CONNECT port %q", portStr)
	}
	p.mu.RLock()
	index, slices := p.index, p.slices
	p.mu.RUnlock()
	if index == nil {
		return []string{hostport}, nil
	}
	objs, err := index.ByIndex(byClusterIP, host)
	if err != nil || len(objs) == 0 {
		return []string{hostport}, nil
	}
	return ServiceEndpoints(objs[0].(*corev1.Service), int32(port), slices)
}

// ServiceEndpoints are the addresses (addr:targetPort, in random order) to
// dial for the Service's TCP port: its ready endpoints, as kube-proxy
// chooses among them.
func ServiceEndpoints(svc *corev1.Service, port int32, slices discoverylisters.EndpointSliceLister) ([]string, error) {
	sp := servicePort(svc, port)
	if sp == nil {
		return nil, fmt.Errorf("service %s/%s has no port %d", svc.Namespace, svc.Name, port)
	}
	list, err := slices.EndpointSlices(svc.Namespace).List(labels.SelectorFromSet(labels.Set{discoveryv1.LabelServiceName: svc.Name}))
	if err != nil {
		return nil, err
	}
	addrs := ReadyEndpoints(list, sp.Name)
	if len(addrs) == 0 {
		return nil, fmt.Errorf("service %s/%s has no ready endpoints for port %d", svc.Namespace, svc.Name, port)
	}
	rand.Shuffle(len(addrs), func(i, j int) { addrs[i], addrs[j] = addrs[j], addrs[i] })
	return addrs, nil
}

func servicePort(svc *corev1.Service, port int32) *corev1.ServicePort {
	for i := range svc.Spec.Ports {
		if svc.Spec.Ports[i].Port == port && svc.Spec.Ports[i].Protocol != corev1.ProtocolUDP {
			return &svc.Spec.Ports[i]
		}
	}
	return nil
}

// ReadyEndpoints are the addr:port of the ready endpoints of the slices for
// the service port named portName, sorted by slice then endpoint order.
func ReadyEndpoints(slices []*discoveryv1.EndpointSlice, portName string) []string {
	var out []string
	for _, s := range slices {
		var port *int32
		for _, p := range s.Ports {
			if p.Port != nil && (p.Name == nil && portName == "" || p.Name != nil && *p.Name == portName) {
				port = p.Port
				break
			}
		}
		if port == nil {
			continue
		}
		for _, e := range s.Endpoints {
			if e.Conditions.Ready != nil && !*e.Conditions.Ready {
				continue
			}
			for _, a := range e.Addresses {
				out = append(out, net.JoinHostPort(a, strconv.Itoa(int(*port))))
			}
		}
	}
	return out
}
