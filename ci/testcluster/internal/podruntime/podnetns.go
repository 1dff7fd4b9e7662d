package podruntime

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/url"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/klog/v2"
)

// Pod network namespaces (--pod-netns), in the manner of a kubelet with a
// routed CNI plugin: every process-runtime pod runs in a network namespace
// of its own with lo and eth0 (its pod IP /32, default route via
// podGateway). The eth0 peers sit in one "podnet" namespace of the cluster,
// which forwards (ip_forward=1 there only) between pods and, over one veth
// "uplink", to the host. On the host, every pod IP gets a /32 route over the
// uplink in table local, where it wins over the `local PodCIDR` route, and a
// permanent neighbour entry (no ARP on the uplink). All of it hangs off
// namespaces held by file descriptors: the routes go with the uplink when
// the podnet namespace goes (on exit or SIGKILL), and a pod's veth with its
// namespace. The host's sysctls are not touched.

const (
	// podGateway is the default gateway of pods: an address on the podnet
	// namespace's lo, answered on every pod's veth peer.
	podGateway = "169.254.1.1"
	// uplinkNeighbour is the host as next hop seen from the podnet
	// namespace: a permanent neighbour entry, never an address.
	uplinkNeighbour = "169.254.1.2"
)

// uplinkSeq numbers the uplinks of this process (several clusters in tests).
var uplinkSeq atomic.Int32

// podUplink is the podnet namespace of a cluster and its link to the host.
type podUplink struct {
	ns        *netns
	hostIf    string // host end of the uplink
	uplinkMAC string // podnet end: next hop of the host's pod routes
	src       string // host source address towards pods (a local PodCIDR address no pod gets)

	mu     sync.Mutex
	seq    int
	owners map[string]int // pod IP -> seq of the pod whose host route it is
}

// PodCIDR is the pod network of simulated nodes when it can be made local:
// the RFC 2544 benchmarking range, which no real network routes. Loopback
// pod addresses are refused by Endpoints validation and by the API server's
// proxy, so Services of simulated pods only get endpoints, and the service
// proxy only reaches processes listening on pod addresses, from this range.
const PodCIDR = "198.18.0.0/15"

// EnablePodNetns gives every pod its own network namespace when
// RuntimeOptions.PodNetns asks for it (nil otherwise). It needs root, `ip`
// and the pod network: src is the host's source address towards pods (a
// PodCIDR address no pod gets), empty without a pod network. It returns why
// not, and pods then keep sharing the host's namespace. Call before pods
// arrive.
func (rt *Runtime) EnablePodNetns(ctx context.Context, src string) error {
	if !rt.opts.PodNetns {
		return nil
	}
	if os.Geteuid() != 0 {
		return fmt.Errorf("network namespaces need root")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		return fmt.Errorf("no ip command: %w", err)
	}
	if src == "" {
		return fmt.Errorf("pod addresses are on loopback (no pod network), the host could not route them to pods")
	}
	u, err := newPodUplink(ctx, src)
	if err != nil {
		return fmt.Errorf("pod network namespace: %w", err)
	}
	rt.uplink = u
	return nil
}

// newPodUplink creates the podnet namespace, its uplink to the host and its
// default route; src is the host's source address towards pods.
func newPodUplink(ctx context.Context, src string) (*podUplink, error) {
	ns, err := newNetns()
	if err != nil {
		return nil, err
	}
	u := &podUplink{ns: ns, src: src, owners: map[string]int{},
		hostIf:    fmt.Sprintf("tcp%du%d", os.Getpid(), uplinkSeq.Add(1)),
		uplinkMAC: randomMAC()}
	hostMAC := randomMAC()
	if err := hostIPBatch(ctx, []string{
		fmt.Sprintf("link add %s address %s type veth peer name uplink address %s netns %s", u.hostIf, hostMAC, u.uplinkMAC, ns.path()),
		fmt.Sprintf("link set %s up", u.hostIf),
	}); err != nil {
		ns.Close()
		return nil, err
	}
	if err := ns.ipBatch(ctx, []string{
		"link set lo up",
		"addr add " + podGateway + "/32 dev lo",
		"link set uplink up",
		fmt.Sprintf("neigh add %s lladdr %s dev uplink nud permanent", uplinkNeighbour, hostMAC),
		fmt.Sprintf("route add default via %s dev uplink onlink", uplinkNeighbour),
	}); err != nil {
		ns.Close()
		return nil, err
	}
	if err := ns.writeSysctl("net/ipv4/ip_forward", "1"); err != nil {
		ns.Close()
		return nil, err
	}
	return u, nil
}

// Close releases the podnet namespace: the uplink and the host's pod routes go with it.
func (u *podUplink) Close() {
	if u != nil {
		u.ns.Close()
	}
}

// randomMAC is a locally administered unicast address.
func randomMAC() string {
	b := rand.Uint64()
	return fmt.Sprintf("02:%02x:%02x:%02x:%02x:%02x", byte(b), byte(b>>8), byte(b>>16), byte(b>>24), byte(b>>32))
}

// eth0Commands put eth0 (peer peer in the podnet namespace) with the pod IP
// and a default route via podGateway into a pod namespace.
func eth0Commands(podnetPath, peer, podIP string) []string {
	return []string{
		"link set lo up",
		fmt.Sprintf("link add eth0 type veth peer name %s netns %s", peer, podnetPath),
		fmt.Sprintf("addr add %s/32 dev eth0", podIP),
		"link set eth0 up",
		fmt.Sprintf("route add default via %s dev eth0 onlink", podGateway),
	}
}

// attach connects the pod namespace ns to the pod network: eth0 with podIP,
// the route to it in the podnet namespace (gone with the pod's veth) and on
// the host (removed when ns is closed).
func (u *podUplink) attach(ctx context.Context, ns *netns, podIP string) error {
	u.mu.Lock()
	u.seq++
	seq := u.seq
	u.mu.Unlock()
	peer := "e" + strconv.Itoa(seq)
	if err := ns.ipBatch(ctx, eth0Commands(u.ns.path(), peer, podIP)); err != nil {
		return err
	}
	// replace: an earlier pod with the same address may not be gone yet.
	if err := u.ns.ipBatch(ctx, []string{
		fmt.Sprintf("link set %s up", peer),
		fmt.Sprintf("route replace %s/32 dev %s", podIP, peer),
	}); err != nil {
		return err
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	// add, unless an earlier pod of ours had the address: a route of another
	// cluster on this host (same address) is an error, not taken over.
	verb := "add"
	if _, ours := u.owners[podIP]; ours {
		verb = "replace"
	}
	if err := hostIPBatch(ctx, []string{
		fmt.Sprintf("route %s %s/32 dev %s table local src %s", verb, podIP, u.hostIf, u.src),
		fmt.Sprintf("neigh replace %s lladdr %s dev %s nud permanent", podIP, u.uplinkMAC, u.hostIf),
	}); err != nil {
		return fmt.Errorf("routing pod IP %s on the host: %w", podIP, err)
	}
	u.owners[podIP] = seq
	ns.onClose(func() { u.detach(podIP, seq) })
	return nil
}

// detach removes the host's route to podIP unless a newer pod owns it now.
func (u *podUplink) detach(podIP string, seq int) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.owners[podIP] != seq {
		return
	}
	delete(u.owners, podIP)
	err := hostIPBatch(context.Background(), []string{
		fmt.Sprintf("route del %s/32 dev %s table local", podIP, u.hostIf),
		fmt.Sprintf("neigh del %s dev %s", podIP, u.hostIf),
	})
	if err != nil {
		klog.InfoS("sim runtime: removing a pod route", "podIP", podIP, "err", err)
	}
}

// hostIPBatch runs `ip -batch -` in the host's network namespace.
func hostIPBatch(ctx context.Context, cmds []string) error {
	cmd := exec.CommandContext(ctx, "ip", "-batch", "-")
	cmd.Stdin = strings.NewReader(strings.Join(cmds, "\n") + "\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("ip -batch (%s): %v: %s", strings.Join(cmds, "; "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// podInOwnNetns reports whether a pod with this address gets a namespace of
// its own: host-network pods (node address) and loopback addresses stay.
func (rt *Runtime) podInOwnNetns(podIP string) bool {
	ip := net.ParseIP(podIP)
	_, cidr, _ := net.ParseCIDR(PodCIDR)
	return rt.uplink != nil && ip != nil && cidr.Contains(ip)
}

// preparePodNetwork gives the pod its network namespace: the NIC driver's
// for pods with NICs, a new one with --pod-netns or when own (a sandboxed
// pod: only lo without --pod-netns); eth0 on the pod network with
// --pod-netns; and in any own namespace, the API server on 127.0.0.1.
// nil: the pod shares the host's namespace.
func (rt *Runtime) preparePodNetwork(ctx context.Context, pod *corev1.Pod, n Node, podIP string, own bool) (*netns, error) {
	routed := rt.podInOwnNetns(podIP)
	ns, err := rt.prepareNICs(ctx, pod, n, podIP, !routed)
	if err != nil {
		return nil, err
	}
	if ns == nil && (routed || own) {
		if ns, err = newNetns(); err != nil {
			return nil, fmt.Errorf("pod network namespace: %w", err)
		}
		if !routed {
			if err := ns.ipBatch(ctx, []string{"link set lo up"}); err != nil {
				ns.Close()
				return nil, fmt.Errorf("pod network namespace: %w", err)
			}
		}
	}
	if ns == nil {
		return nil, nil
	}
	if routed {
		if err := rt.uplink.attach(ctx, ns, podIP); err != nil {
			ns.Close()
			return nil, fmt.Errorf("pod network: %w", err)
		}
	}
	if err := rt.forwardAPIServer(ns); err != nil {
		ns.Close()
		return nil, err
	}
	return ns, nil
}

// apiHostPort is the host and port of the API server URL.
func apiHostPort(server string) (host, port string, ok bool) {
	u, err := url.Parse(server)
	if err != nil || u.Hostname() == "" {
		return "", "", false
	}
	port = u.Port()
	if port == "" {
		port = "443"
	}
	return u.Hostname(), port, true
}

// forwardAPIServer makes a loopback API server (rt.opts.Server) reachable
// inside ns at the same address, so kubeconfigs and in-cluster clients work
// unchanged: a listener in ns whose connections are forwarded from the host.
func (rt *Runtime) forwardAPIServer(ns *netns) error {
	host, port, ok := apiHostPort(rt.opts.Server)
	if !ok {
		return nil
	}
	if ip := net.ParseIP(host); (ip == nil && host != "localhost") || (ip != nil && !ip.IsLoopback()) {
		return nil // reachable over the pod network
	}
	if host == "localhost" {
		host = "127.0.0.1"
	}
	addr := net.JoinHostPort(host, port)
	l, err := listenInNetns(ns, addr)
	if err != nil {
		return fmt.Errorf("API server forwarder in the pod: %w", err)
	}
	f := &tcpForwarder{l: l, target: addr, conns: map[net.Conn]struct{}{}}
	go f.serve()
	ns.onClose(f.close)
	return nil
}

// listenInNetns opens a TCP listener in ns (sockets stay in the namespace
// of the thread that created them).
func listenInNetns(ns *netns, addr string) (net.Listener, error) {
	var l net.Listener
	err := ns.run(func() (err error) {
		l, err = net.Listen("tcp", addr)
		return err
	})
	return l, err
}

// run calls fn on a thread in the namespace; sockets fn creates stay in
// it and work from any goroutine afterwards.
func (n *netns) run(fn func() error) error {
	errc := make(chan error, 1)
	onThrowawayThread(func() {
		if err := unix.Setns(n.fd(), unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("setns: %w", err)
			return
		}
		errc <- fn()
	})
	return <-errc
}

// Podnet is the cluster's podnet namespace, through which every pod with a
// namespace of its own reaches anything: what listens there (on an address
// local there) is reachable from every such pod, as a node's kube-proxy and
// cluster DNS are.
type Podnet struct{ ns *netns }

// Podnet returns the podnet namespace; false without --pod-netns (or on a
// nil runtime).
func (rt *Runtime) Podnet() (Podnet, bool) {
	if rt == nil || rt.uplink == nil {
		return Podnet{}, false
	}
	return Podnet{ns: rt.uplink.ns}, true
}

// Listen opens a stream listener in the podnet namespace.
func (p Podnet) Listen(network, addr string) (net.Listener, error) {
	var l net.Listener
	err := p.ns.run(func() (err error) {
		l, err = net.Listen(network, addr)
		return err
	})
	return l, err
}

// ListenPacket opens a packet listener in the podnet namespace.
func (p Podnet) ListenPacket(network, addr string) (net.PacketConn, error) {
	var c net.PacketConn
	err := p.ns.run(func() (err error) {
		c, err = net.ListenPacket(network, addr)
		return err
	})
	return c, err
}

// AddLocalRoute makes every address of cidr local in the podnet namespace
// (`ip route add local CIDR dev lo` there), so listeners can bind any of
// them and pods' packets to them are delivered there.
func (p Podnet) AddLocalRoute(ctx context.Context, cidr string) error {
	return p.ns.ipBatch(ctx, []string{"route add local " + cidr + " dev lo"})
}

// tcpForwarder copies connections accepted on l to target (dialled from the
// host's namespace). Open sockets keep the pod's namespace alive: close
// closes them all.
type tcpForwarder struct {
	l      net.Listener
	target string

	mu     sync.Mutex
	closed bool
	conns  map[net.Conn]struct{}
}

// serve accepts until the listener is closed.
func (f *tcpForwarder) serve() {
	for {
		c, err := f.l.Accept()
		if err != nil {
			return
		}
		go f.forward(c)
	}
}

// forward copies one connection both ways until either side closes.
func (f *tcpForwarder) forward(in net.Conn) {
	out, err := net.Dial("tcp", f.target)
	if err != nil {
		in.Close()
		return
	}
	if !f.track(in, out) {
		return
	}
	defer f.untrack(in, out)
	done := make(chan struct{}, 2)
	pipe := func(dst, src net.Conn) {
		_, _ = io.Copy(dst, src)
		if tc, ok := dst.(*net.TCPConn); ok {
			_ = tc.CloseWrite()
		}
		done <- struct{}{}
	}
	go pipe(out, in)
	go pipe(in, out)
	<-done
	<-done
}

// track registers open connections; false (and both closed) after close.
func (f *tcpForwarder) track(cs ...net.Conn) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		for _, c := range cs {
			c.Close()
		}
		return false
	}
	for _, c := range cs {
		f.conns[c] = struct{}{}
	}
	return true
}

func (f *tcpForwarder) untrack(cs ...net.Conn) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, c := range cs {
		c.Close()
		delete(f.conns, c)
	}
}

// close stops accepting and closes every open connection.
func (f *tcpForwarder) close() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closed = true
	f.l.Close()
	for c := range f.conns {
		c.Close()
	}
}

// writeSysctl sets /proc/sys/<key> of the namespace (from a thread in it:
// /proc/sys/net shows the opener's namespace).
func (n *netns) writeSysctl(key, value string) error {
	if err := n.run(func() error { return os.WriteFile("/proc/sys/"+key, []byte(value), 0o644) }); err != nil {
		return fmt.Errorf("sysctl %s=%s: %w", key, value, err)
	}
	return nil
}

// addServiceEnv sets the kubernetes Service variables the kubelet gives
// every pod, pointing at the API server as pods reach it (127.0.0.1 is
// forwarded into pods with a namespace of their own), so that in-cluster
// clients (rest.InClusterConfig) find it.
func addServiceEnv(env map[string]string, server string) {
	host, port, ok := apiHostPort(server)
	if !ok {
		return
	}
	env["KUBERNETES_SERVICE_HOST"] = host
	env["KUBERNETES_SERVICE_PORT"] = port
	env["KUBERNETES_SERVICE_PORT_HTTPS"] = port
}
