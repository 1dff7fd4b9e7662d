package sim

import (
	"context"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	resourcev1 "k8s.io/api/resource/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"aiconform.dev/testcluster/internal/podruntime"
)

// A DRA NIC driver in the manner of DRANET (driver dra.net): some GPU nodes
// publish RDMA-capable NICs in a ResourceSlice with their PCI address, NUMA
// node, interface name, MAC and IPv4 address as attributes. When a pod with
// an allocated NIC starts, the driver "moves the NIC into the pod": the pod
// runs in a network namespace of its own with a primary interface eth0 (its
// pod IP) and, per NIC, an interface of the NIC's name and address, and the
// driver writes status.devices[].networkData (interface name, IPs, hardware
// address) into the claim. Each NIC is one end of a veth pair whose other end
// sits on a bridge in a "fabric" namespace of the cluster, so pods holding
// NICs really exchange traffic over them (and eth0 ends are on a separate
// bridge there). Everything lives in unnamed namespaces held by this
// process: nothing is left behind on exit or after SIGKILL, and the host's
// interfaces, routes and firewall are not touched. The simulator publishes
// the NICs; the process runtime prepares them (internal/podruntime).

const (
	// NICDeviceClassName selects every device of podruntime.NICDriverName.
	NICDeviceClassName = "dranet"
	// maxNICNodes bounds the NIC nodes (even-indexed nodes of the first GPU pool).
	maxNICNodes = 16
)

// nicNodes picks the NIC nodes: the even-indexed nodes (gpu-0, gpu-2, ...)
// of the first pool with GPUs, at most maxNICNodes; value = ordinal.
func nicNodes(order []*node) map[string]int {
	out := map[string]int{}
	var pool string
	i := 0
	for _, n := range order {
		if n.pool.GPU == nil || (pool != "" && n.pool.Name != pool) {
			continue
		}
		pool = n.pool.Name
		if i%2 == 0 && len(out) < maxNICNodes {
			out[n.name] = len(out)
		}
		i++
	}
	return out
}

// EnableNICs starts the NIC driver stand-in: it needs a process runtime,
// root (network namespaces) and `ip`. It returns why not otherwise; then no
// NIC is published. Call before RunPods; CloseNICs releases the fabric.
func (s *Simulator) EnableNICs(ctx context.Context, o podruntime.NICOptions) error {
	if s.rt == nil {
		return fmt.Errorf("no process runtime (--run-image)")
	}
	nodes := nicNodes(s.order)
	if err := s.rt.EnableNICs(ctx, o, nodes); err != nil {
		return err
	}
	s.nicNodes = nodes
	return nil
}

// CloseNICs releases the fabric namespace (pods' NIC interfaces go with it).
func (s *Simulator) CloseNICs() {
	if s.rt != nil {
		s.rt.CloseNICs()
	}
}

// NICNodeCount is the number of nodes publishing NICs (0 when off).
func (s *Simulator) NICNodeCount() int {
	return len(s.nicNodes)
}

// nicSlice is the ResourceSlice of a NIC node.
func nicSlice(nodeName string, ordinal int, owner *corev1.Node) *resourcev1.ResourceSlice {
	var devices []resourcev1.Device
	for _, d := range podruntime.NICDevices(ordinal) {
		devices = append(devices, resourcev1.Device{
			Name: d.Name,
			Attributes: map[resourcev1.QualifiedName]resourcev1.DeviceAttribute{
				podruntime.NICDriverName + "/ifName":     strAttr(d.IfName),
				podruntime.NICDriverName + "/pciAddress": strAttr(d.PCIAddress),
				podruntime.NICDriverName + "/pciVendor":  strAttr("Mellanox Technologies"),
				podruntime.NICDriverName + "/pciDevice":  strAttr("MT2910 Family [ConnectX-7]"),
				podruntime.NICDriverName + "/numaNode":   {IntValue: ptr.To(int64(d.NUMA))},
				podruntime.NICDriverName + "/rdma":       {BoolValue: ptr.To(true)},
				podruntime.NICDriverName + "/sriov":      {BoolValue: ptr.To(false)},
				podruntime.NICDriverName + "/virtual":    {BoolValue: ptr.To(false)},
				podruntime.NICDriverName + "/mac":        strAttr(d.MAC),
				podruntime.NICDriverName + "/ipv4":       strAttr(d.IP),
				podruntime.NICDriverName + "/mtu":        {IntValue: ptr.To(int64(1500))},
				podruntime.NICDriverName + "/type":       strAttr("device"),
			},
		})
	}
	return &resourcev1.ResourceSlice{
		ObjectMeta: metav1.ObjectMeta{
			Name: nodeName + "-" + strings.ReplaceAll(podruntime.NICDriverName, ".", "-"),
			OwnerReferences: []metav1.OwnerReference{{
				APIVersion: "v1", Kind: "Node", Name: owner.Name, UID: owner.UID, Controller: ptr.To(true),
			}},
		},
		Spec: resourcev1.ResourceSliceSpec{
			Driver:   podruntime.NICDriverName,
			NodeName: ptr.To(nodeName),
			Pool:     resourcev1.ResourcePool{Name: nodeName, Generation: 1, ResourceSliceCount: 1},
			Devices:  devices,
		},
	}
}

// PublishNICs creates the dranet DeviceClass and the NIC nodes'
// ResourceSlices (nothing when the stand-in is off).
func (s *Simulator) PublishNICs(ctx context.Context) error {
	if s.nicNodes == nil {
		return nil
	}
	dc := &resourcev1.DeviceClass{
		ObjectMeta: metav1.ObjectMeta{Name: NICDeviceClassName},
		Spec: resourcev1.DeviceClassSpec{Selectors: []resourcev1.DeviceSelector{{
			CEL: &resourcev1.CELDeviceSelector{Expression: fmt.Sprintf("device.driver == %q", podruntime.NICDriverName)},
		}}},
	}
	if _, err := s.client.ResourceV1().DeviceClasses().Create(ctx, dc, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	for _, n := range s.order {
		ordinal, ok := s.nicNodes[n.name]
		if !ok {
			continue
		}
		_, err := s.client.ResourceV1().ResourceSlices().Create(ctx, nicSlice(n.name, ordinal, n.ownerNode()), metav1.CreateOptions{})
		if err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("creating the NIC ResourceSlice of %s: %w", n.name, err)
		}
	}
	return nil
}
