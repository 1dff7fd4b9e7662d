package sim

import (
	"reflect"
	"testing"

	corev1 "k8s.io/api/core/v1"
	resourcev1 "k8s.io/api/resource/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"aiconform.dev/testcluster/internal/podruntime"
)

func vgpuSim(t *testing.T, v VGPU) *Simulator {
	s := testSim(t)
	s.SetVGPU(v)
	return s
}

func vgpuClaim(name, node, device string) *resourcev1.ResourceClaim {
	return &resourcev1.ResourceClaim{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name},
		Status: resourcev1.ResourceClaimStatus{Allocation: &resourcev1.AllocationResult{Devices: resourcev1.DeviceAllocationResult{
			Results: []resourcev1.DeviceRequestAllocationResult{{Request: "vgpu", Driver: VGPUDriverName, Pool: node, Device: device}}}}}}
}

func TestVGPUsPublishedOnTheFirstGPUPool(t *testing.T) {
	s := vgpuSim(t, VGPU{PerGPU: 2})
	n := s.nodes["gpu-0"]
	slice := s.vgpuSliceFor(n, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "gpu-0"}})
	if slice == nil || slice.Spec.Driver != VGPUDriverName || len(slice.Spec.Devices) != 2 {
		t.Fatalf("slice %+v", slice)
	}
	d := slice.Spec.Devices[1]
	a := d.Attributes
	if d.Name != "vgpu-7-1" || *a["type"].StringValue != "vgpu" || *a["parentUUID"].StringValue != podruntime.GPUUUID("gpu-0", 7) ||
		*a["uuid"].StringValue != vgpuUUID("gpu-0", 7, 1) || *a["profile"].StringValue != "H100-40C" || *a["minor"].IntValue != 9 {
		t.Errorf("device %s %v", d.Name, a)
	}
	if s.vgpuSliceFor(s.nodes["system-0"], &corev1.Node{}) != nil {
		t.Error("a node without GPUs has no vGPUs")
	}
	if got, want := (runtimeHost{s}).VGPUDevices("gpu-0"), map[int]string{8: vgpuUUID("gpu-0", 7, 0), 9: vgpuUUID("gpu-0", 7, 1)}; !reflect.DeepEqual(got, want) {
		t.Errorf("the runtime's vGPU devices %v, want %v", got, want)
	}
	off := vgpuSim(t, VGPU{})
	if off.vgpuSliceFor(off.nodes["gpu-0"], &corev1.Node{}) != nil || len(off.vgpuDevices(off.nodes["gpu-0"])) != 0 {
		t.Error("--vgpu-per-gpu 0 publishes nothing")
	}
}

// TestVGPUClaimDevices: a container of a vGPU claim gets only its vGPU's
// device minor (after the node's 8 GPUs).
func TestVGPUClaimDevices(t *testing.T) {
	s := vgpuSim(t, VGPU{PerGPU: 2})
	for device, minor := range map[string]int{"vgpu-7-0": 8, "vgpu-7-1": 9} {
		if got := (runtimeHost{s}).ClaimDevices(vgpuClaim("a", "gpu-0", device), "gpu-0"); !reflect.DeepEqual(got["vgpu"], []int{minor}) {
			t.Errorf("%s: %v", device, got)
		}
	}
}

func TestLeakyVGPUsShowTheWholeParent(t *testing.T) {
	s := vgpuSim(t, VGPU{PerGPU: 2, Leaky: true})
	n := s.nodes["gpu-0"]
	if got := s.claimDevices(vgpuClaim("a", "gpu-0", "vgpu-7-0"), n); !reflect.DeepEqual(got["vgpu"], []int{8, 9}) {
		t.Fatalf("%v", got)
	}
	// Still advertised as two separate vGPUs: the fault is in the behaviour only.
	if got := len(s.vgpuSliceFor(n, &corev1.Node{}).Spec.Devices); got != 2 {
		t.Errorf("%d devices", got)
	}
}
