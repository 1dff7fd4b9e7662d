package podruntime

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"sync"

	corev1 "k8s.io/api/core/v1"
	resourcev1 "k8s.io/api/resource/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
)

// The node side of the DRA NIC driver stand-in (driver dra.net, which the
// simulator publishes): when a pod with an allocated NIC starts, the driver
// "moves the NIC into the pod": the pod runs in a network namespace of its
// own with a primary interface eth0 (its pod IP) and, per NIC, an interface
// of the NIC's name and address, and the driver writes
// status.devices[].networkData (interface name, IPs, hardware address) into
// the claim. Each NIC is one end of a veth pair whose other end sits on a
// bridge in a "fabric" namespace of the cluster, so pods holding NICs really
// exchange traffic over them (and eth0 ends are on a separate bridge there).
// Everything lives in unnamed namespaces held by this process: nothing is
// left behind on exit or after SIGKILL, and the host's interfaces, routes and
// firewall are not touched.

const (
	// NICDriverName is the DRA driver of the simulated NICs (DRANET's name).
	NICDriverName = "dra.net"
	// nicsPerNode NICs on each NIC node: two per NUMA node.
	nicsPerNode = 4
	// nicPrefixLen is the prefix of NIC addresses (100.64.0.0/16, only
	// routed inside pod namespaces and the fabric).
	nicPrefixLen = 16
)

// NICOptions configure the NIC driver stand-in.
type NICOptions struct {
	// NoSecondaryInterface: slices are published, claims allocated and their
	// networkData written, but pods get no interface for their NICs (fault).
	NoSecondaryInterface bool
}

// NICDevice is one simulated NIC.
type NICDevice struct {
	Name       string // DRA device name (= interface name)
	IfName     string
	PCIAddress string
	NUMA       int
	MAC        string
	IP         string // without prefix
}

// NICDevices are the NICs of the NIC node with the given ordinal.
func NICDevices(ordinal int) []NICDevice {
	var out []NICDevice
	for i := 0; i < nicsPerNode; i++ {
		name := fmt.Sprintf("ens%df0np0", i+1)
		out = append(out, NICDevice{
			Name:       name,
			IfName:     name,
			PCIAddress: fmt.Sprintf("0000:%02x:00.0", 0x1a+0x20*i),
			NUMA:       i * 2 / nicsPerNode,
			MAC:        fmt.Sprintf("02:64:00:%02x:%02x:01", ordinal, i),
			IP:         fmt.Sprintf("100.64.%d.%d", ordinal, i+1),
		})
	}
	return out
}

// nicDriver is the running stand-in.
type nicDriver struct {
	opts   NICOptions
	fabric *netns
	nodes  map[string]int

	mu  sync.Mutex
	seq int
}

// EnableNICs starts the NIC driver stand-in for nodes (node name -> NIC
// node ordinal, see NICDevices): it needs root (network namespaces) and
// `ip`. It returns why not otherwise. Call before pods arrive; CloseNICs
// releases the fabric.
func (rt *Runtime) EnableNICs(ctx context.Context, o NICOptions, nodes map[string]int) error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("network namespaces need root")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		return fmt.Errorf("no ip command: %w", err)
	}
	fabric, err := newNetns()
	if err != nil {
		return err
	}
	if err := fabric.ipBatch(ctx, []string{
		"link set lo up",
		"link add fabric type bridge", "link set fabric up",
		"link add pods type bridge", "link set pods up",
	}); err != nil {
		fabric.Close()
		return err
	}
	rt.nics = &nicDriver{opts: o, fabric: fabric, nodes: nodes}
	return nil
}

// CloseNICs releases the fabric namespace (pods' NIC interfaces go with it).
func (rt *Runtime) CloseNICs() {
	if rt.nics != nil {
		rt.nics.fabric.Close()
	}
}

// claimNICs returns the NICs of this node allocated in the claim.
func claimNICs(claim *resourcev1.ResourceClaim, nodeName string, ordinal int) []NICDevice {
	if claim == nil || claim.Status.Allocation == nil {
		return nil
	}
	byName := map[string]NICDevice{}
	for _, d := range NICDevices(ordinal) {
		byName[d.Name] = d
	}
	var out []NICDevice
	for _, r := range claim.Status.Allocation.Devices.Results {
		if d, ok := byName[r.Device]; ok && r.Driver == NICDriverName && r.Pool == nodeName {
			out = append(out, d)
		}
	}
	return out
}

// podNetnsCommands configure a pod namespace: loopback, eth0 with the pod
// IP (its peer pN on the fabric's pods bridge), and one interface per NIC
// (peer fN). fabricCmds attach the peers to their bridges.
func podNetnsCommands(fabricPath string, seq int, podIP string, nics []NICDevice) (podCmds, fabricCmds []string) {
	peer := "p" + strconv.Itoa(seq)
	podCmds = []string{
		"link set lo up",
		fmt.Sprintf("link add eth0 type veth peer name %s netns %s", peer, fabricPath),
	}
	if ip := net.ParseIP(podIP); ip != nil {
		_, cidr, _ := net.ParseCIDR(PodCIDR)
		prefix := 32
		if cidr.Contains(ip) {
			prefix, _ = cidr.Mask.Size()
		}
		podCmds = append(podCmds, fmt.Sprintf("addr add %s/%d dev eth0", podIP, prefix))
	}
	podCmds = append(podCmds, "link set eth0 up")
	fabricCmds = []string{fmt.Sprintf("link set dev %s master pods up", peer)}
	nicPod, nicFabric := nicCommands(fabricPath, seq, nics)
	return append(podCmds, nicPod...), append(fabricCmds, nicFabric...)
}

// nicCommands add one interface per NIC to a pod namespace (peer fN on the
// fabric bridge); eth0 is someone else's business.
func nicCommands(fabricPath string, seq int, nics []NICDevice) (podCmds, fabricCmds []string) {
	for i, d := range nics {
		fpeer := fmt.Sprintf("f%d-%d", seq, i)
		podCmds = append(podCmds,
			fmt.Sprintf("link add name %s address %s type veth peer name %s netns %s", d.IfName, d.MAC, fpeer, fabricPath),
			fmt.Sprintf("addr add %s/%d dev %s", d.IP, nicPrefixLen, d.IfName),
			fmt.Sprintf("link set %s up", d.IfName))
		fabricCmds = append(fabricCmds, fmt.Sprintf("link set dev %s master fabric up", fpeer))
	}
	return podCmds, fabricCmds
}

// prepareNICs is the driver's prepare step for a pod with NICs allocated on
// node n: the pod's network namespace with its interfaces (with eth0 on the
// fabric's pods bridge if withEth0; else the pod network attaches it), and
// networkData in its claims. nil (and nothing done) for pods without NICs.
func (rt *Runtime) prepareNICs(ctx context.Context, pod *corev1.Pod, n Node, podIP string, withEth0 bool) (*netns, error) {
	d := rt.nics
	if d == nil {
		return nil, nil
	}
	ordinal, ok := d.nodes[n.Name]
	if !ok {
		return nil, nil
	}
	var nics []NICDevice
	claims := map[string][]NICDevice{} // claim name -> its NICs
	for _, claimName := range podClaimNames(pod) {
		claim, err := rt.client.ResourceV1().ResourceClaims(pod.Namespace).Get(ctx, claimName, metav1.GetOptions{})
		if err != nil {
			return nil, fmt.Errorf("resource claim %s: %w", claimName, err)
		}
		if got := claimNICs(claim, n.Name, ordinal); len(got) > 0 {
			claims[claimName] = got
			nics = append(nics, got...)
		}
	}
	if len(nics) == 0 {
		return nil, nil
	}
	ns, err := newNetns()
	if err != nil {
		return nil, fmt.Errorf("pod network namespace: %w", err)
	}
	d.mu.Lock()
	d.seq++
	seq := d.seq
	d.mu.Unlock()
	attached := nics
	if d.opts.NoSecondaryInterface {
		attached = nil
	}
	var podCmds, fabricCmds []string
	if withEth0 {
		podCmds, fabricCmds = podNetnsCommands(d.fabric.path(), seq, podIP, attached)
	} else {
		podCmds, fabricCmds = nicCommands(d.fabric.path(), seq, attached)
		podCmds = append([]string{"link set lo up"}, podCmds...)
	}
	if err := ns.ipBatch(ctx, podCmds); err != nil {
		ns.Close()
		return nil, err
	}
	// Nothing for the fabric: no NIC interfaces (the fault) and eth0 attached elsewhere.
	if len(fabricCmds) > 0 {
		if err := d.fabric.ipBatch(ctx, fabricCmds); err != nil {
			ns.Close()
			return nil, err
		}
	}
	for claimName, got := range claims {
		if err := rt.writeNetworkData(ctx, pod.Namespace, claimName, n.Name, got); err != nil {
			ns.Close()
			return nil, err
		}
	}
	return ns, nil
}

// writeNetworkData records the NICs' interface, address and MAC in the
// claim's status.devices, as DRANET does once it configured them.
func (rt *Runtime) writeNetworkData(ctx context.Context, namespace, claimName, nodeName string, nics []NICDevice) error {
	claims := rt.client.ResourceV1().ResourceClaims(namespace)
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		claim, err := claims.Get(ctx, claimName, metav1.GetOptions{})
		if err != nil {
			return err
		}
		var devs []resourcev1.AllocatedDeviceStatus
		for _, s := range claim.Status.Devices {
			if s.Driver != NICDriverName || s.Pool != nodeName {
				devs = append(devs, s)
			}
		}
		for _, d := range nics {
			devs = append(devs, resourcev1.AllocatedDeviceStatus{
				Driver: NICDriverName, Pool: nodeName, Device: d.Name,
				NetworkData: &resourcev1.NetworkDeviceData{
					InterfaceName:   d.IfName,
					IPs:             []string{fmt.Sprintf("%s/%d", d.IP, nicPrefixLen)},
					HardwareAddress: d.MAC,
				},
			})
		}
		claim.Status.Devices = devs
		_, err = claims.UpdateStatus(ctx, claim, metav1.UpdateOptions{})
		return err
	})
}
