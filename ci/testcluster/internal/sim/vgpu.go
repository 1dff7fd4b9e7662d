package sim

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	resourcev1 "k8s.io/api/resource/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"aiconform.dev/testcluster/internal/podruntime"
)

// Virtual GPUs: the last GPU of every node of the profile's first GPU pool
// runs in vGPU mode and is split into PerGPU vGPUs of equal memory. A DRA
// driver of its own publishes them (one ResourceSlice per node, devices
// "vgpu-<parent>-<k>" with type "vgpu", their own UUID, the parent's UUID
// and the vGPU profile), the scheduler allocates each to one claim, and a
// container of that claim gets the vGPU's own device node (minors after the
// physical GPUs') and UUID in NVIDIA_VISIBLE_DEVICES. The physical GPUs stay
// advertised as they are (the scheduler accounts for each driver's
// inventory separately, like the time-sliced replicas).

const (
	// VGPUDriverName is the DRA driver publishing the vGPUs.
	VGPUDriverName = "vgpu.nvidia.com"
	// VGPUDeviceClassName selects every device of VGPUDriverName.
	VGPUDeviceClassName = "vgpu.nvidia.com"
)

// VGPU configures the simulated vGPUs.
type VGPU struct {
	// PerGPU vGPUs per parent GPU; 0: no vGPUs.
	PerGPU int
	// Leaky gives the containers of a vGPU claim every vGPU of its parent
	// (fault: the host exposes all mediated devices to every guest).
	Leaky bool
}

// SetVGPU enables vGPUs (call before PublishResourceSlices).
func (s *Simulator) SetVGPU(v VGPU) { s.vgpu = v }

// vgpuParent is the GPU index of a node in vGPU mode, or -1.
func (s *Simulator) vgpuParent(n *node) int {
	if s == nil || s.vgpu.PerGPU <= 0 || n.pool.GPU == nil {
		return -1
	}
	i := s.prof.GPUPool()
	if i < 0 || s.prof.Pools[i].Name != n.pool.Name {
		return -1
	}
	return n.pool.GPU.Count - 1
}

// vgpuMinor is the device minor of vGPU k of a node (after its GPUs').
func vgpuMinor(n *node, k int) int { return n.pool.GPU.Count + k }

func vgpuDeviceName(parent, k int) string { return fmt.Sprintf("vgpu-%d-%d", parent, k) }

// vgpuIndex parses "vgpu-<parent>-<k>" into k.
func vgpuIndex(device string) (int, bool) {
	rest, ok := strings.CutPrefix(device, "vgpu-")
	if !ok {
		return 0, false
	}
	_, k, ok := strings.Cut(rest, "-")
	if !ok {
		return 0, false
	}
	n, err := strconv.Atoi(k)
	if err != nil || n < 0 {
		return 0, false
	}
	return n, true
}

func vgpuUUID(node string, parent, k int) string {
	return "GPU-" + podruntime.UUIDFrom("vgpu", node, strconv.Itoa(parent), strconv.Itoa(k))
}

// vgpuProfile names a vGPU type the way NVIDIA's vGPU manager does:
// <board>-<framebuffer GB>C (C: compute).
func vgpuProfile(product string, memoryMiB int64, per int) string {
	board := product
	if parts := strings.Split(product, "-"); len(parts) > 1 && parts[0] == "NVIDIA" {
		board = parts[1]
	}
	return fmt.Sprintf("%s-%dC", board, (memoryMiB/int64(per)+512)/1024)
}

// vgpuDevices maps a node's vGPU device minors to their UUIDs (empty
// without vGPUs).
func (s *Simulator) vgpuDevices(n *node) map[int]string {
	out := map[int]string{}
	p := s.vgpuParent(n)
	for k := 0; p >= 0 && k < s.vgpu.PerGPU; k++ {
		out[vgpuMinor(n, k)] = vgpuUUID(n.name, p, k)
	}
	return out
}

// vgpuSliceFor builds the vGPU ResourceSlice of a node (nil without vGPUs).
func (s *Simulator) vgpuSliceFor(n *node, owner *corev1.Node) *resourcev1.ResourceSlice {
	p := s.vgpuParent(n)
	if p < 0 {
		return nil
	}
	g := n.pool.GPU
	var devices []resourcev1.Device
	for k := 0; k < s.vgpu.PerGPU; k++ {
		capacity := map[resourcev1.QualifiedName]resourcev1.DeviceCapacity{}
		if g.MemoryMiB > 0 {
			capacity["memory"] = resourcev1.DeviceCapacity{Value: *resource.NewQuantity(g.MemoryMiB/int64(s.vgpu.PerGPU)*1024*1024, resource.BinarySI)}
		}
		devices = append(devices, resourcev1.Device{
			Name: vgpuDeviceName(p, k),
			Attributes: map[resourcev1.QualifiedName]resourcev1.DeviceAttribute{
				"type":        strAttr("vgpu"),
				"uuid":        strAttr(vgpuUUID(n.name, p, k)),
				"parentUUID":  strAttr(podruntime.GPUUUID(n.name, p)),
				"parentIndex": {IntValue: ptr.To(int64(p))},
				"profile":     strAttr(vgpuProfile(g.Product, g.MemoryMiB, s.vgpu.PerGPU)),
				"minor":       {IntValue: ptr.To(int64(vgpuMinor(n, k)))},
				"productName": strAttr(firstNonEmpty(g.ProductName, g.Product)),
			},
			Capacity: capacity,
		})
	}
	return &resourcev1.ResourceSlice{
		ObjectMeta: metav1.ObjectMeta{
			Name: n.name + "-" + strings.ReplaceAll(VGPUDriverName, ".", "-"),
			OwnerReferences: []metav1.OwnerReference{{
				APIVersion: "v1", Kind: "Node", Name: owner.Name, UID: owner.UID, Controller: ptr.To(true),
			}},
		},
		Spec: resourcev1.ResourceSliceSpec{
			Driver:   VGPUDriverName,
			NodeName: ptr.To(n.name),
			Pool:     resourcev1.ResourcePool{Name: n.name, Generation: 1, ResourceSliceCount: 1},
			Devices:  devices,
		},
	}
}

// ensureVGPUDeviceClass creates the vgpu.nvidia.com DeviceClass when vGPUs
// are enabled.
func (s *Simulator) ensureVGPUDeviceClass(ctx context.Context) error {
	if s.vgpu.PerGPU <= 0 {
		return nil
	}
	dc := &resourcev1.DeviceClass{
		ObjectMeta: metav1.ObjectMeta{Name: VGPUDeviceClassName},
		Spec: resourcev1.DeviceClassSpec{
			Selectors: []resourcev1.DeviceSelector{{
				CEL: &resourcev1.CELDeviceSelector{Expression: fmt.Sprintf("device.driver == %q", VGPUDriverName)},
			}},
		},
	}
	_, err := s.client.ResourceV1().DeviceClasses().Create(ctx, dc, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		return nil
	}
	return err
}

// publishVGPUSlice creates a node's vGPU ResourceSlice, if it has vGPUs.
func (s *Simulator) publishVGPUSlice(ctx context.Context, n *node, owner *corev1.Node) error {
	slice := s.vgpuSliceFor(n, owner)
	if slice == nil {
		return nil
	}
	_, err := s.client.ResourceV1().ResourceSlices().Create(ctx, slice, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("creating vGPU ResourceSlice for %s: %w", n.name, err)
	}
	return nil
}

// claimVGPUs returns the device minors of the vGPUs allocated to a claim on
// node n: under the Leaky fault every vGPU of the parent for each one.
func (s *Simulator) claimVGPUs(claim *resourcev1.ResourceClaim, n *node) map[string][]int {
	out := map[string][]int{}
	if claim == nil || claim.Status.Allocation == nil || s.vgpuParent(n) < 0 {
		return out
	}
	for _, r := range claim.Status.Allocation.Devices.Results {
		if r.Driver != VGPUDriverName || r.Pool != n.name {
			continue
		}
		k, ok := vgpuIndex(r.Device)
		if !ok || k >= s.vgpu.PerGPU {
			continue
		}
		req, _, _ := strings.Cut(r.Request, "/")
		if s.vgpu.Leaky {
			for j := 0; j < s.vgpu.PerGPU; j++ {
				out[req] = append(out[req], vgpuMinor(n, j))
			}
			continue
		}
		out[req] = append(out[req], vgpuMinor(n, k))
	}
	return out
}
