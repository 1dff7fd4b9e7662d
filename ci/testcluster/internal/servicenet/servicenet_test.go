package servicenet

import (
	"errors"
	"net"
	"sort"
	"strings"
	"syscall"
	"testing"

	"github.com/miekg/dns"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/utils/ptr"
)

// fakeRecords serves Services and slices from maps.
type fakeRecords struct {
	svcs   []*corev1.Service
	slices []*discoveryv1.EndpointSlice
}

func (f *fakeRecords) service(ns, name string) *corev1.Service {
	for _, s := range f.svcs {
		if s.Namespace == ns && s.Name == name {
			return s
		}
	}
	return nil
}

func (f *fakeRecords) endpointSlices(ns, service string) []*discoveryv1.EndpointSlice {
	var out []*discoveryv1.EndpointSlice
	for _, s := range f.slices {
		if s.Namespace == ns && s.Labels[discoveryv1.LabelServiceName] == service {
			out = append(out, s)
		}
	}
	return out
}

func svc(ns, name, clusterIP string, ports ...int32) *corev1.Service {
	s := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeClusterIP, ClusterIP: clusterIP, ClusterIPs: []string{clusterIP}}}
	for _, p := range ports {
		s.Spec.Ports = append(s.Spec.Ports, corev1.ServicePort{Name: "p" + strings.Repeat("x", int(p%3)), Port: p, Protocol: corev1.ProtocolTCP})
	}
	return s
}

type ep struct {
	ip, hostname string
	ready        bool
}

func slice(ns, service, name string, port int32, portName string, eps ...ep) *discoveryv1.EndpointSlice {
	s := &discoveryv1.EndpointSlice{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name,
		Labels: map[string]string{discoveryv1.LabelServiceName: service}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Name: ptr.To(portName), Port: ptr.To(port)}}}
	for _, e := range eps {
		d := discoveryv1.Endpoint{Addresses: []string{e.ip}, Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(e.ready)}}
		if e.hostname != "" {
			d.Hostname = ptr.To(e.hostname)
		}
		s.Endpoints = append(s.Endpoints, d)
	}
	return s
}

func testRecords() *fakeRecords {
	headless := svc("db", "pg", corev1.ClusterIPNone, 5432)
	ext := svc("web", "upstream", "", 80)
	ext.Spec.Type, ext.Spec.ExternalName, ext.Spec.ClusterIPs = corev1.ServiceTypeExternalName, "example.org", nil
	return &fakeRecords{
		svcs: []*corev1.Service{svc("keda", "keda-operator", "10.96.3.4", 9666), headless, ext},
		slices: []*discoveryv1.EndpointSlice{slice("db", "pg", "pg-1", 5432, "p",
			ep{"198.18.0.7", "pg-0", true}, ep{"198.18.0.8", "pg-1", true}, ep{"198.18.0.9", "pg-2", false})},
	}
}

func TestLookup(t *testing.T) {
	recs := testRecords()
	for _, tc := range []struct {
		name   string
		ips    string
		cname  string
		exists bool
	}{
		{name: "keda-operator.keda.svc.cluster.local.", ips: "10.96.3.4", exists: true},
		{name: "KEDA-Operator.keda.svc.cluster.local", ips: "10.96.3.4", exists: true},
		{name: "keda-operator.keda.svc.cluster.local.keda.svc.cluster.local.", exists: false},
		{name: "keda-operator.default.svc.cluster.local.", exists: false},
		{name: "pg.db.svc.cluster.local.", ips: "198.18.0.7,198.18.0.8", exists: true},
		{name: "pg-1.pg.db.svc.cluster.local.", ips: "198.18.0.8", exists: true},
		{name: "pg-2.pg.db.svc.cluster.local.", exists: false},
		{name: "x.keda-operator.keda.svc.cluster.local.", exists: false},
		{name: "upstream.web.svc.cluster.local.", cname: "example.org", exists: true},
		{name: "198-18-0-7.db.pod.cluster.local.", ips: "198.18.0.7", exists: true},
		{name: "keda.svc.cluster.local.", exists: true},
		{name: "svc.cluster.local.", exists: true},
		{name: "cluster.local.", exists: true},
		{name: "example.org.", exists: false},
		{name: "a.b.c.d.svc.cluster.local.", exists: false},
	} {
		ans, exists := lookup(tc.name, "cluster.local", recs)
		if exists != tc.exists || strings.Join(ans.ips, ",") != tc.ips || ans.cname != tc.cname {
			t.Errorf("%s: %+v %v, want ips %q cname %q exists %v", tc.name, ans, exists, tc.ips, tc.cname, tc.exists)
		}
	}
}

func TestReply(t *testing.T) {
	recs := testRecords()
	ask := func(name string, qtype uint16) *dns.Msg {
		req := new(dns.Msg)
		req.SetQuestion(name, qtype)
		return reply(req, "cluster.local", recs)
	}
	m := ask("keda-operator.keda.svc.cluster.local.", dns.TypeA)
	if m.Rcode != dns.RcodeSuccess || !m.Authoritative || len(m.Answer) != 1 || m.Answer[0].(*dns.A).A.String() != "10.96.3.4" {
		t.Errorf("A: %v", m)
	}
	// AAAA of an existing name: no data, not NXDOMAIN (resolvers ask both).
	if m := ask("keda-operator.keda.svc.cluster.local.", dns.TypeAAAA); m.Rcode != dns.RcodeSuccess || len(m.Answer) != 0 || len(m.Ns) != 1 {
		t.Errorf("AAAA: %v", m)
	}
	if m := ask("nope.keda.svc.cluster.local.", dns.TypeA); m.Rcode != dns.RcodeNameError || !m.Authoritative {
		t.Errorf("missing: %v", m)
	}
	if m := ask("example.org.", dns.TypeA); m.Rcode != dns.RcodeNameError || m.Authoritative || !m.RecursionAvailable {
		t.Errorf("outside the zone: %v", m)
	}
	if m := ask("upstream.web.svc.cluster.local.", dns.TypeA); len(m.Answer) != 1 || m.Answer[0].(*dns.CNAME).Target != "example.org." {
		t.Errorf("ExternalName: %v", m)
	}
}

func TestClusterIPListeners(t *testing.T) {
	s := svc("ns", "web", "10.96.5.5", 80, 443)
	s.Spec.Ports = append(s.Spec.Ports, corev1.ServicePort{Name: "dns", Port: 53, Protocol: corev1.ProtocolUDP})
	got := clusterIPListeners(s, "10.96.0.10")
	if len(got) != 2 || got["10.96.5.5:80"] != 80 || got["10.96.5.5:443"] != 443 {
		t.Errorf("listeners %v", got)
	}
	if got := clusterIPListeners(svc("db", "pg", corev1.ClusterIPNone, 5432), ""); len(got) != 0 {
		t.Errorf("headless: %v", got)
	}
	if got := clusterIPListeners(svc("kube-system", "kube-dns", "10.96.0.10", 53), "10.96.0.10"); len(got) != 0 {
		t.Errorf("the DNS server's address: %v", got)
	}
	lb := svc("ns", "lb", "10.96.5.6", 8080)
	lb.Spec.Type = corev1.ServiceTypeLoadBalancer
	if !wantsLoadBalancer(lb) || len(loadBalancerListeners(lb, "198.18.4.1")) != 1 || loadBalancerListeners(lb, "198.18.4.1")["198.18.4.1:8080"] != 8080 {
		t.Errorf("LoadBalancer: %v %v", wantsLoadBalancer(lb), loadBalancerListeners(lb, "198.18.4.1"))
	}
	lb.Spec.LoadBalancerClass = ptr.To("example.com/other")
	if wantsLoadBalancer(lb) || wantsLoadBalancer(s) {
		t.Error("another class's or a ClusterIP Service is not ours")
	}
}

// TestEndpointsFor: a connection goes to one of the ready endpoints of the
// port (by the port's name in the slices, at its target port), never to an
// unready one; the kubernetes Service goes to the API server.
func TestEndpointsFor(t *testing.T) {
	web := svc("ns", "web", "10.96.5.5", 80, 81)
	client := fake.NewSimpleClientset(
		slice("ns", "web", "web-a", 8080, web.Spec.Ports[0].Name, ep{"198.18.0.1", "", true}, ep{"198.18.0.2", "", false}),
		slice("ns", "web", "web-b", 8080, web.Spec.Ports[0].Name, ep{"198.18.0.3", "", true}),
		slice("ns", "web", "web-c", 9090, web.Spec.Ports[1].Name, ep{"198.18.0.4", "", true}),
		slice("ns", "empty", "empty-a", 8080, "p", ep{"198.18.0.5", "", false}),
	)
	f := informers.NewSharedInformerFactory(client, 0)
	lister := f.Discovery().V1().EndpointSlices().Lister()
	stop := make(chan struct{})
	defer close(stop)
	f.Start(stop)
	f.WaitForCacheSync(stop)
	got, err := endpointsFor(web, 80, lister, "127.0.0.1:6443")
	sort.Strings(got)
	if err != nil || strings.Join(got, ",") != "198.18.0.1:8080,198.18.0.3:8080" {
		t.Errorf("port 80: %v %v", got, err)
	}
	if got, err := endpointsFor(web, 81, lister, ""); err != nil || strings.Join(got, ",") != "198.18.0.4:9090" {
		t.Errorf("port 81: %v %v", got, err)
	}
	if _, err := endpointsFor(svc("ns", "empty", "10.96.5.7", 80), 80, lister, ""); err == nil || !strings.Contains(err.Error(), "no ready endpoints") {
		t.Errorf("no ready endpoint: %v", err)
	}
	if got, err := endpointsFor(svc("default", "kubernetes", "10.96.0.1", 443), 443, lister, "127.0.0.1:6443"); err != nil || got[0] != "127.0.0.1:6443" {
		t.Errorf("kubernetes: %v %v", got, err)
	}
}

func TestAddressPool(t *testing.T) {
	block := func(n int) (string, bool) {
		if n >= 4 {
			return "", false
		}
		return net.IPv4(198, 18, 4, byte(n+1)).String(), true
	}
	p := NewAddressPool(block)
	a, _ := p.Take("gateway #0", nil)
	b, _ := p.Take("Service ns/a", func(ip string) bool { return ip != "198.18.4.2" })
	c, _ := p.Take("Service ns/b", nil)
	if a != "198.18.4.1" || b != "198.18.4.3" || c != "198.18.4.4" {
		t.Errorf("taken %s %s %s (198.18.4.2 is in use elsewhere)", a, b, c)
	}
	if ip, ok := p.Take("Service ns/c", nil); ok {
		t.Errorf("block exhausted, got %s", ip)
	}
	p.Release("Service ns/a")
	if ip, ok := p.Take("Service ns/c", nil); !ok || ip != "198.18.4.3" {
		t.Errorf("after release: %s %v", ip, ok)
	}
}

func TestListenerSet(t *testing.T) {
	got := make(chan string, 4)
	s := newListenerSet(Host{})
	s.handle = func(key string, port int32, c net.Conn) { got <- key; c.Close() }
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	if err := s.sync("ns/a", map[string]int32{addr: 80}); err != nil {
		t.Fatal(err)
	}
	if err := s.sync("ns/b", map[string]int32{addr: 80}); err == nil {
		t.Error("two Services on one address")
	}
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	if k := <-got; k != "ns/a" {
		t.Errorf("handled by %s", k)
	}
	_ = s.sync("ns/a", nil)
	if _, err := net.Dial("tcp", addr); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("closed listener still answers: %v", err)
	}
	s.closeAll()
}
