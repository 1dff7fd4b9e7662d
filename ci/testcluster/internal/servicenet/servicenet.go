// Package servicenet gives pods in network namespaces of their own
// (--pod-netns) the Service networking of a real cluster: what kube-proxy
// does for ClusterIPs (a TCP proxy per Service ClusterIP:port, listening in
// the cluster's podnet namespace, through which every pod's traffic goes,
// to one of the Service's ready endpoints), cluster DNS (kube-system/kube-dns
// answering <svc>.<ns>.svc.<domain> and friends, in the podnet namespace)
// and what a cloud's service controller or MetalLB does for
// `type: LoadBalancer` Services (an address from the pod network's
// load-balancer block in status.loadBalancer.ingress, proxied on the host,
// whose local addresses pods reach over their uplink). Nothing of the
// machine's global network configuration is touched: ClusterIPs are local in
// the podnet namespace only, load-balancer addresses are in the pod range
// the host already has local.
package servicenet

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	discoverylisters "k8s.io/client-go/listers/discovery/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/klog/v2"
)

// Namespace opens sockets in one network namespace.
type Namespace interface {
	Listen(network, addr string) (net.Listener, error)
	ListenPacket(network, addr string) (net.PacketConn, error)
}

// Host is the network namespace of this process.
type Host struct{}

// Listen opens a stream listener in the host's namespace.
func (Host) Listen(network, addr string) (net.Listener, error) { return net.Listen(network, addr) }

// ListenPacket opens a packet listener in the host's namespace.
func (Host) ListenPacket(network, addr string) (net.PacketConn, error) {
	return net.ListenPacket(network, addr)
}

// Options configure Run.
type Options struct {
	// Podnet is the namespace every pod's traffic goes through, where
	// ServiceCIDR is local (ClusterIP listeners and the DNS server live there).
	Podnet Namespace
	// DNSIP is the ClusterIP of kube-system/kube-dns, inside the Service CIDR.
	DNSIP string
	// Domain is the cluster domain (cluster.local).
	Domain string
	// APIServer is the host:port the kubernetes Service's ClusterIP leads
	// to (the API server publishes no endpoints for it here).
	APIServer string
	// LoadBalancers hands out load-balancer addresses; nil: no
	// LoadBalancer controller.
	LoadBalancers *AddressPool
	// LoadBalancerNamespace is where load-balancer listeners open (the host).
	LoadBalancerNamespace Namespace
}

// DNSServiceName is the Service in kube-system that names the cluster DNS, as kubeadm's.
const DNSServiceName = "kube-dns"

// Run creates the kube-dns Service and starts the DNS server, the
// ClusterIP proxy and the LoadBalancer controller; it returns once they
// serve. Everything stops with ctx.
func Run(ctx context.Context, client kubernetes.Interface, opts Options) error {
	if err := ensureDNSService(ctx, client, opts.DNSIP); err != nil {
		return err
	}
	factory := informers.NewSharedInformerFactory(client, 0)
	svcInf := factory.Core().V1().Services()
	sliceInf := factory.Discovery().V1().EndpointSlices()
	c := &controller{
		client:    client,
		opts:      opts,
		services:  svcInf.Lister(),
		slices:    sliceInf.Lister(),
		clusterIP: newListenerSet(opts.Podnet),
		lb:        newListenerSet(opts.LoadBalancerNamespace),
		assigned:  map[string]string{},
		queue:     workqueue.NewTypedRateLimitingQueue(workqueue.DefaultTypedControllerRateLimiter[string]()),
	}
	c.clusterIP.handle, c.lb.handle = c.forward, c.forward
	enqueue := func(obj interface{}) {
		if key, err := cache.DeletionHandlingMetaNamespaceKeyFunc(obj); err == nil {
			c.queue.Add(key)
		}
	}
	if _, err := svcInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: enqueue, UpdateFunc: func(_, obj interface{}) { enqueue(obj) }, DeleteFunc: enqueue,
	}); err != nil {
		return err
	}
	_ = sliceInf.Informer()
	factory.Start(ctx.Done())
	for typ, ok := range factory.WaitForCacheSync(ctx.Done()) {
		if !ok {
			return fmt.Errorf("service networking: %v cache did not sync", typ)
		}
	}
	if err := serveDNS(ctx, opts.Podnet, opts.DNSIP, &catalog{services: c.services, slices: c.slices}, opts.Domain); err != nil {
		return fmt.Errorf("cluster DNS: %w", err)
	}
	go func() {
		<-ctx.Done()
		c.queue.ShutDown()
		c.clusterIP.closeAll()
		c.lb.closeAll()
	}()
	go c.work(ctx)
	return nil
}

// ensureDNSService creates kube-system/kube-dns with ClusterIP ip (ports
// 53/UDP and 53/TCP): the Service pods' resolv.conf names.
func ensureDNSService(ctx context.Context, client kubernetes.Interface, ip string) error {
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: DNSServiceName, Namespace: metav1.NamespaceSystem,
			Labels: map[string]string{"k8s-app": "kube-dns", "kubernetes.io/name": "CoreDNS"}},
		Spec: corev1.ServiceSpec{ClusterIP: ip, Ports: []corev1.ServicePort{
			{Name: "dns", Port: 53, Protocol: corev1.ProtocolUDP, TargetPort: intstr.FromInt32(53)},
			{Name: "dns-tcp", Port: 53, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromInt32(53)},
		}},
	}
	_, err := client.CoreV1().Services(svc.Namespace).Create(ctx, svc, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("creating Service %s/%s: %w", svc.Namespace, svc.Name, err)
	}
	return nil
}

// controller keeps the listeners of every Service and the load-balancer
// status of LoadBalancer Services in line with the Services.
type controller struct {
	client    kubernetes.Interface
	opts      Options
	services  corelisters.ServiceLister
	slices    discoverylisters.EndpointSliceLister
	clusterIP *listenerSet
	lb        *listenerSet
	queue     workqueue.TypedRateLimitingInterface[string]

	mu       sync.Mutex
	assigned map[string]string // Service key -> its load-balancer address
}

func (c *controller) work(ctx context.Context) {
	for {
		key, quit := c.queue.Get()
		if quit {
			return
		}
		if err := c.sync(ctx, key); err != nil {
			klog.InfoS("service networking: retrying", "service", key, "err", err)
			c.queue.AddRateLimited(key)
		} else {
			c.queue.Forget(key)
		}
		c.queue.Done(key)
	}
}

// sync opens and closes the Service's listeners and, for a LoadBalancer
// Service, assigns (or releases) its address and writes its status.
func (c *controller) sync(ctx context.Context, key string) error {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return nil
	}
	svc, err := c.services.Services(ns).Get(name)
	if apierrors.IsNotFound(err) {
		c.clusterIP.sync(key, nil)
		c.lb.sync(key, nil)
		c.release(key)
		return nil
	}
	if err != nil {
		return err
	}
	var errs []error
	if err := c.clusterIP.sync(key, clusterIPListeners(svc, c.opts.DNSIP)); err != nil {
		errs = append(errs, err)
	}
	if c.opts.LoadBalancers == nil {
		return errors.Join(errs...)
	}
	if !wantsLoadBalancer(svc) {
		c.lb.sync(key, nil)
		had := c.release(key)
		if had != "" && hasIngress(svc, had) {
			if err := c.writeIngress(ctx, svc, ""); err != nil {
				errs = append(errs, err)
			}
		}
		return errors.Join(errs...)
	}
	ip, ok := c.address(key, svc)
	if !ok {
		return fmt.Errorf("no load-balancer address left for Service %s", key)
	}
	if err := c.lb.sync(key, loadBalancerListeners(svc, ip)); err != nil {
		errs = append(errs, err)
	}
	if !hasIngress(svc, ip) || len(svc.Status.LoadBalancer.Ingress) != 1 {
		if err := c.writeIngress(ctx, svc, ip); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// address is the Service's load-balancer address, taken from the pool on
// first use: the lowest free one whose ports this machine does not use yet
// (other clusters on it share the block's addresses now and then).
func (c *controller) address(key string, svc *corev1.Service) (string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if ip := c.assigned[key]; ip != "" {
		return ip, true
	}
	ip, ok := c.opts.LoadBalancers.Take("Service "+key, func(ip string) bool {
		return portsFree(c.opts.LoadBalancerNamespace, loadBalancerListeners(svc, ip))
	})
	if ok {
		c.assigned[key] = ip
	}
	return ip, ok
}

// release gives the Service's address back and returns it ("" if none).
func (c *controller) release(key string) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	ip := c.assigned[key]
	if ip != "" {
		delete(c.assigned, key)
		c.opts.LoadBalancers.Release("Service " + key)
	}
	return ip
}

// writeIngress sets status.loadBalancer.ingress to ip (none for "").
func (c *controller) writeIngress(ctx context.Context, svc *corev1.Service, ip string) error {
	upd := svc.DeepCopy()
	upd.Status.LoadBalancer.Ingress = nil
	if ip != "" {
		vip := corev1.LoadBalancerIPModeVIP
		upd.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: ip, IPMode: &vip}}
	}
	_, err := c.client.CoreV1().Services(svc.Namespace).UpdateStatus(ctx, upd, metav1.UpdateOptions{})
	if err != nil {
		return fmt.Errorf("writing the load-balancer status of Service %s/%s: %w", svc.Namespace, svc.Name, err)
	}
	klog.InfoS("service networking: load-balancer address", "service", klog.KObj(svc), "ip", ip)
	return nil
}

// forward carries one accepted connection to a ready endpoint of the
// Service's port (the API server for the kubernetes Service), dialled from
// the host's namespace, which reaches every pod.
func (c *controller) forward(key string, port int32, conn net.Conn) {
	ns, name, _ := cache.SplitMetaNamespaceKey(key)
	svc, err := c.services.Services(ns).Get(name)
	if err != nil {
		conn.Close()
		return
	}
	targets, err := endpointsFor(svc, port, c.slices, c.opts.APIServer)
	if err != nil {
		klog.V(2).InfoS("service networking: refusing a connection", "service", key, "port", port, "err", err)
		conn.Close()
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	upstream, err := dialAny(ctx, targets)
	cancel()
	if err != nil {
		klog.V(2).InfoS("service networking: no endpoint answered", "service", key, "port", port, "err", err)
		conn.Close()
		return
	}
	splice(conn, upstream)
}
