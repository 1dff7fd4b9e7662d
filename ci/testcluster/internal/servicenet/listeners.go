package servicenet

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"syscall"

	corev1 "k8s.io/api/core/v1"
	discoverylisters "k8s.io/client-go/listers/discovery/v1"
	"k8s.io/klog/v2"

	"aiconform.dev/testcluster/internal/clusterip"
)

// listenerSet holds TCP listeners by address, each owned by one Service
// (key) and standing for one of its ports.
type listenerSet struct {
	ns     Namespace
	handle func(key string, port int32, c net.Conn)

	mu     sync.Mutex
	closed bool
	open   map[string]*serviceListener // by ip:port
}

type serviceListener struct {
	key  string
	port int32
	l    net.Listener
}

func newListenerSet(ns Namespace) *listenerSet {
	return &listenerSet{ns: ns, open: map[string]*serviceListener{}}
}

// sync makes the listeners of key exactly want (address -> Service port):
// it closes the others of key and opens the missing ones.
func (s *listenerSet) sync(key string, want map[string]int32) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	for addr, sl := range s.open {
		if sl.key == key && want[addr] != sl.port {
			sl.l.Close()
			delete(s.open, addr)
		}
	}
	var errs []error
	for addr, port := range want {
		if sl := s.open[addr]; sl != nil {
			if sl.key != key {
				errs = append(errs, fmt.Errorf("%s is Service %s's", addr, sl.key))
			}
			continue
		}
		l, err := s.ns.Listen("tcp", addr)
		if err != nil {
			errs = append(errs, fmt.Errorf("listening on %s for Service %s: %w", addr, key, err))
			continue
		}
		sl := &serviceListener{key: key, port: port, l: l}
		s.open[addr] = sl
		go s.serve(sl)
	}
	return errors.Join(errs...)
}

func (s *listenerSet) serve(sl *serviceListener) {
	for {
		c, err := sl.l.Accept()
		if err != nil {
			return
		}
		go s.handle(sl.key, sl.port, c)
	}
}

func (s *listenerSet) closeAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	for addr, sl := range s.open {
		sl.l.Close()
		delete(s.open, addr)
	}
}

// clusterIPListeners are the addresses kube-proxy would carry for the
// Service: each IPv4 ClusterIP with each TCP port. Headless and
// ExternalName Services have none; the DNS address is the DNS server's.
func clusterIPListeners(svc *corev1.Service, dnsIP string) map[string]int32 {
	if svc.Spec.Type == corev1.ServiceTypeExternalName {
		return nil
	}
	out := map[string]int32{}
	ips := svc.Spec.ClusterIPs
	if len(ips) == 0 && svc.Spec.ClusterIP != "" {
		ips = []string{svc.Spec.ClusterIP}
	}
	for _, ip := range ips {
		parsed := net.ParseIP(ip)
		if ip == corev1.ClusterIPNone || parsed == nil || parsed.To4() == nil || ip == dnsIP {
			continue
		}
		for _, p := range svc.Spec.Ports {
			if p.Protocol == "" || p.Protocol == corev1.ProtocolTCP {
				out[net.JoinHostPort(ip, strconv.Itoa(int(p.Port)))] = p.Port
			}
		}
	}
	return out
}

// wantsLoadBalancer: a LoadBalancer Service of the default class (a
// spec.loadBalancerClass names another implementation).
func wantsLoadBalancer(svc *corev1.Service) bool {
	return svc.Spec.Type == corev1.ServiceTypeLoadBalancer && svc.Spec.LoadBalancerClass == nil && svc.DeletionTimestamp == nil
}

// loadBalancerListeners are the Service's TCP ports on its load-balancer address.
func loadBalancerListeners(svc *corev1.Service, ip string) map[string]int32 {
	out := map[string]int32{}
	for _, p := range svc.Spec.Ports {
		if p.Protocol == "" || p.Protocol == corev1.ProtocolTCP {
			out[net.JoinHostPort(ip, strconv.Itoa(int(p.Port)))] = p.Port
		}
	}
	return out
}

// hasIngress reports whether the Service's status names ip.
func hasIngress(svc *corev1.Service, ip string) bool {
	for _, in := range svc.Status.LoadBalancer.Ingress {
		if in.IP == ip {
			return true
		}
	}
	return false
}

// portsFree reports whether none of the addresses is in use in ns (another
// process holds it), trying to bind each.
func portsFree(ns Namespace, addrs map[string]int32) bool {
	for addr := range addrs {
		l, err := ns.Listen("tcp", addr)
		if errors.Is(err, syscall.EADDRINUSE) {
			return false
		}
		if err == nil {
			l.Close()
		}
	}
	return true
}

// endpointsFor are the addresses a connection to the Service's port may
// go to: its ready endpoints (random order), or the API server for
// default/kubernetes, whose endpoints the API server does not publish here.
func endpointsFor(svc *corev1.Service, port int32, slices discoverylisters.EndpointSliceLister, apiServer string) ([]string, error) {
	if svc.Namespace == "default" && svc.Name == "kubernetes" && apiServer != "" {
		return []string{apiServer}, nil
	}
	return clusterip.ServiceEndpoints(svc, port, slices)
}

var dialer net.Dialer

// dialAny dials the first endpoint that answers.
func dialAny(ctx context.Context, addrs []string) (net.Conn, error) {
	return clusterip.DialAny(ctx, &dialer, addrs)
}

// splice copies both ways until both directions are done.
func splice(client, upstream net.Conn) {
	clusterip.Splice(client, client, upstream)
	klog.V(4).InfoS("service networking: connection done", "client", client.RemoteAddr())
}
