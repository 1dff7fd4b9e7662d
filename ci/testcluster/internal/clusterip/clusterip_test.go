package clusterip

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/utils/ptr"
)

// serve answers each connection with one line naming itself.
func serve(t *testing.T, name string) (port int) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			fmt.Fprintf(c, "%s\n", name)
			c.Close()
		}
	}()
	return ln.Addr().(*net.TCPAddr).Port
}

// connect tunnels to target through the proxy's socket and reads one line.
func connect(t *testing.T, socket, target string) (string, int) {
	t.Helper()
	c, err := net.DialTimeout("unix", socket, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(c, "CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n", target, target)
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		return "", resp.StatusCode
	}
	line, _ := br.ReadString('\n')
	return strings.TrimSpace(line), resp.StatusCode
}

func TestProxyCarriesClusterIPsToReadyEndpoints(t *testing.T) {
	ready := serve(t, "ready")
	direct := serve(t, "direct")
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "webhook", Namespace: "kueue-system"},
		Spec: corev1.ServiceSpec{ClusterIP: "10.96.0.10", ClusterIPs: []string{"10.96.0.10"},
			Ports: []corev1.ServicePort{{Name: "https", Port: 443, TargetPort: intstr.FromInt32(9443)}}}}
	empty := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "empty", Namespace: "kueue-system"},
		Spec: corev1.ServiceSpec{ClusterIP: "10.96.0.11", ClusterIPs: []string{"10.96.0.11"},
			Ports: []corev1.ServicePort{{Name: "https", Port: 443}}}}
	slice := &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{Name: "webhook-1", Namespace: "kueue-system",
			Labels: map[string]string{discoveryv1.LabelServiceName: "webhook"}},
		Ports: []discoveryv1.EndpointPort{{Name: ptr.To("https"), Port: ptr.To(int32(ready))}},
		Endpoints: []discoveryv1.Endpoint{
			{Addresses: []string{"127.0.0.1"}, Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)}},
			{Addresses: []string{"127.0.0.9"}, Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(false)}},
		},
	}
	client := fake.NewSimpleClientset(svc, empty, slice)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	socket := filepath.Join(t.TempDir(), "egress.sock")
	p, err := Listen(ctx, socket)
	if err != nil {
		t.Fatal(err)
	}
	// Before the caches sync every target is dialled as given.
	if got, code := connect(t, socket, "127.0.0.1:"+strconv.Itoa(direct)); got != "direct" {
		t.Fatalf("direct before sync: %q (%d)", got, code)
	}
	if err := p.Watch(ctx, client); err != nil {
		t.Fatal(err)
	}
	if got, code := connect(t, socket, "10.96.0.10:443"); got != "ready" {
		t.Fatalf("ClusterIP: %q (%d), want the ready endpoint", got, code)
	}
	if got, code := connect(t, socket, "127.0.0.1:"+strconv.Itoa(direct)); got != "direct" {
		t.Fatalf("pod address: %q (%d)", got, code)
	}
	if _, code := connect(t, socket, "10.96.0.11:443"); code != http.StatusServiceUnavailable {
		t.Fatalf("service without endpoints: status %d, want 503", code)
	}
	if _, code := connect(t, socket, "10.96.0.10:80"); code != http.StatusServiceUnavailable {
		t.Fatalf("unknown service port: status %d, want 503", code)
	}
}
