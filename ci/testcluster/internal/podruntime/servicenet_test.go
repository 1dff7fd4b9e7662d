package podruntime

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/utils/ptr"

	"aiconform.dev/testcluster/internal/servicenet"
)

func TestPodResolvConf(t *testing.T) {
	dns := ClusterDNS{Nameserver: "10.96.0.10", Domain: "cluster.local"}
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "keda"}}
	want := "nameserver 10.96.0.10\nsearch keda.svc.cluster.local svc.cluster.local cluster.local\noptions ndots:5\n"
	if got := string(podResolvConf(pod, dns, nil)); got != want {
		t.Errorf("ClusterFirst:\n%s\nwant\n%s", got, want)
	}
	pod.Spec.DNSConfig = &corev1.PodDNSConfig{Nameservers: []string{"10.0.0.1"}, Searches: []string{"example.org"},
		Options: []corev1.PodDNSConfigOption{{Name: "ndots", Value: ptr.To("2")}, {Name: "edns0"}}}
	want = "nameserver 10.96.0.10\nnameserver 10.0.0.1\nsearch keda.svc.cluster.local svc.cluster.local cluster.local example.org\noptions ndots:2 edns0\n"
	if got := string(podResolvConf(pod, dns, nil)); got != want {
		t.Errorf("with dnsConfig:\n%s\nwant\n%s", got, want)
	}
	host := []byte("# host\nnameserver 192.0.2.53\nsearch corp.example\noptions timeout:1\n")
	pod.Spec.DNSConfig = nil
	pod.Spec.DNSPolicy = corev1.DNSDefault
	if got := string(podResolvConf(pod, dns, host)); got != "nameserver 192.0.2.53\nsearch corp.example\noptions timeout:1\n" {
		t.Errorf("Default:\n%s", got)
	}
	pod.Spec.DNSPolicy = corev1.DNSNone
	pod.Spec.DNSConfig = &corev1.PodDNSConfig{Nameservers: []string{"10.0.0.1"}}
	if got := string(podResolvConf(pod, dns, host)); got != "nameserver 10.0.0.1\n" {
		t.Errorf("None:\n%s", got)
	}
}

// TestPodNetnsServices: with --pod-netns and service networking on, a pod
// (a process in its own namespace) reaches a Service by name (cluster DNS,
// through its resolv.conf's search path and fully qualified), by ClusterIP,
// and a LoadBalancer Service at the address written into its status; each
// connection lands on the Service's ready endpoint, another pod (root only,
// in a scratch "host" namespace).
func TestPodNetnsServices(t *testing.T) {
	if !inScratchNetns(t) {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	api := serveLines(t, "127.0.0.1:0", "api")
	s, rt, pn := podNetnsCluster(t, ctx, "https://"+api, 0)
	defer rt.Shutdown()
	podnet, ok := rt.Podnet()
	if !ok {
		t.Fatal("no podnet namespace")
	}
	if err := podnet.AddLocalRoute(ctx, "10.96.0.0/16"); err != nil {
		t.Fatal(err)
	}
	rt.SetClusterDNS(ClusterDNS{Nameserver: "10.96.0.10", Domain: "cluster.local"})
	n := s.nodes["gpu-0"]
	ipA, ipC := pn.allocPodIP(), pn.allocPodIP()
	rt.ensure(ctx, helperPod("a", "serve", ""), n, ipA)

	service := func(name, ip string, port int32, typ corev1.ServiceType) *corev1.Service {
		return &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name},
			Spec: corev1.ServiceSpec{Type: typ, ClusterIP: ip, ClusterIPs: []string{ip},
				Ports: []corev1.ServicePort{{Name: "http", Port: port, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromInt32(8080)}}}}
	}
	endpoints := func(svc string) *discoveryv1.EndpointSlice {
		return &discoveryv1.EndpointSlice{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: svc + "-x",
			Labels: map[string]string{discoveryv1.LabelServiceName: svc}},
			AddressType: discoveryv1.AddressTypeIPv4,
			Ports:       []discoveryv1.EndpointPort{{Name: ptr.To("http"), Port: ptr.To[int32](8080)}},
			Endpoints: []discoveryv1.Endpoint{{Addresses: []string{ipA}, Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)}},
				{Addresses: []string{ipC}, Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(false)}}}}
	}
	client := fake.NewSimpleClientset(service("web", "10.96.5.5", 80, corev1.ServiceTypeClusterIP), endpoints("web"),
		service("web-lb", "10.96.5.6", 8081, corev1.ServiceTypeLoadBalancer), endpoints("web-lb"))
	lbWatch, err := client.CoreV1().Services("ns").Watch(ctx, metav1.ListOptions{FieldSelector: fields.OneTermEqualSelector("metadata.name", "web-lb").String()})
	if err != nil {
		t.Fatal(err)
	}
	defer lbWatch.Stop()
	// Load-balancer addresses from the last block of the pod network, as the
	// simulator hands them out; the first is someone else's (the gateway
	// stand-in's).
	lbAddress := func(n int) (string, bool) { return podNetAddr(255, n+1), true }
	pool := servicenet.NewAddressPool(lbAddress)
	if _, ok := pool.Take("gateway stand-in #0", nil); !ok {
		t.Fatal("no load-balancer address")
	}
	netCtx, stopNet := context.WithCancel(ctx)
	defer stopNet()
	if err := servicenet.Run(netCtx, client, servicenet.Options{Podnet: podnet, DNSIP: "10.96.0.10", Domain: "cluster.local",
		LoadBalancers: pool, LoadBalancerNamespace: servicenet.Host{}}); err != nil {
		t.Fatal(err)
	}
	lbIP := waitIngress(t, lbWatch)
	if want, _ := lbAddress(1); lbIP != want {
		t.Errorf("load-balancer address %s, want the first free one %s", lbIP, want)
	}
	targets := []string{"web.ns.svc.cluster.local:80", "web:80", "10.96.5.5:80", lbIP + ":8081", "web-lb:8081"}
	prC := rt.ensure(ctx, helperPod("c", "dial", strings.Join(targets, ",")), n, ipC)
	<-prC.done
	st := prC.status(helperPod("c", "dial", ""), &corev1.PodStatus{}, time.Now())
	// The proxy dials endpoints from the host: pod a sees the host's address.
	from := "a from " + pn.src() + "\n"
	if term := st.ContainerStatuses[0].State.Terminated; term == nil || term.ExitCode != 0 || term.Message != strings.Repeat(from, len(targets)) {
		log, _ := os.ReadFile(filepath.Join(prC.dir, "c.log"))
		resolv, _ := os.ReadFile(filepath.Join(prC.dir, "etc-resolv.conf"))
		t.Fatalf("pod c: %+v, want %d x %q; resolv.conf:\n%s\nlog:\n%s", st.ContainerStatuses[0].State, len(targets), from, resolv, log)
	}
	stopNet()
}

// waitIngress waits for the Service's first load-balancer ingress address.
func waitIngress(t *testing.T, w watch.Interface) string {
	t.Helper()
	for ev := range w.ResultChan() {
		if svc, ok := ev.Object.(*corev1.Service); ok && len(svc.Status.LoadBalancer.Ingress) > 0 {
			return svc.Status.LoadBalancer.Ingress[0].IP
		}
	}
	t.Fatal(fmt.Errorf("watch ended without a load-balancer address"))
	return ""
}
