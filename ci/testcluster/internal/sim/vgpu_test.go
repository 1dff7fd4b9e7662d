package sim

import (
	"context"
	"reflect"
	"testing"

	corev1 "k8s.io/api/core/v1"
	resourcev1 "k8s.io/api/resource/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/utils/ptr"
)

func vgpuRuntime(t *testing.T, v VGPU, claims ...*resourcev1.ResourceClaim) (*Simulator, *Runtime) {
	s := testSim(t)
	cs := fake.NewClientset()
	for _, c := range claims {
		if _, err := cs.ResourceV1().ResourceClaims(c.Namespace).Create(context.Background(), c, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	s.client = cs
	s.SetVGPU(v)
	rt, err := NewRuntime(RuntimeOptions{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	s.SetRuntime(rt)
	return s, rt
}

func vgpuClaim(name, node, device string) *resourcev1.ResourceClaim {
	return &resourcev1.ResourceClaim{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name},
		Status: resourcev1.ResourceClaimStatus{Allocation: &resourcev1.AllocationResult{Devices: resourcev1.DeviceAllocationResult{
			Results: []resourcev1.DeviceRequestAllocationResult{{Request: "vgpu", Driver: VGPUDriverName, Pool: node, Device: device}}}}}}
}

func vgpuPod(claim string) *corev1.Pod {
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "p-" + claim, UID: types.UID("uid-" + claim)},
		Spec: corev1.PodSpec{
			ResourceClaims: []corev1.PodResourceClaim{{Name: "v", ResourceClaimName: ptr.To(claim)}},
			Containers:     []corev1.Container{{Name: "c", Resources: corev1.ResourceRequirements{Claims: []corev1.ResourceClaim{{Name: "v"}}}}},
		}}
}

func TestVGPUsPublishedOnTheFirstGPUPool(t *testing.T) {
	s, _ := vgpuRuntime(t, VGPU{PerGPU: 2})
	n := s.nodes["gpu-0"]
	slice := s.vgpuSliceFor(n, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "gpu-0"}})
	if slice == nil || slice.Spec.Driver != VGPUDriverName || len(slice.Spec.Devices) != 2 {
		t.Fatalf("slice %+v", slice)
	}
	d := slice.Spec.Devices[1]
	a := d.Attributes
	if d.Name != "vgpu-7-1" || *a["type"].StringValue != "vgpu" || *a["parentUUID"].StringValue != gpuUUID("gpu-0", 7) ||
		*a["uuid"].StringValue != vgpuUUID("gpu-0", 7, 1) || *a["profile"].StringValue != "H100-40C" || *a["minor"].IntValue != 9 {
		t.Errorf("device %s %v", d.Name, a)
	}
	if s.vgpuSliceFor(s.nodes["system-0"], &corev1.Node{}) != nil {
		t.Error("a node without GPUs has no vGPUs")
	}
	off, _ := vgpuRuntime(t, VGPU{})
	if off.vgpuSliceFor(off.nodes["gpu-0"], &corev1.Node{}) != nil || len(off.vgpuDeviceFiles(off.nodes["gpu-0"])) != 0 {
		t.Error("--vgpu-per-gpu 0 publishes nothing")
	}
}

func TestContainerSeesOnlyItsVGPU(t *testing.T) {
	s, rt := vgpuRuntime(t, VGPU{PerGPU: 2}, vgpuClaim("a", "gpu-0", "vgpu-7-0"), vgpuClaim("b", "gpu-0", "vgpu-7-1"))
	n := s.nodes["gpu-0"]
	ctx := context.Background()
	for claim, minor := range map[string]int{"a": 8, "b": 9} {
		d, err := rt.podDevices(ctx, vgpuPod(claim), n)
		if err != nil || !reflect.DeepEqual(d["c"], []int{minor}) {
			t.Fatalf("claim %s: %v %v", claim, d, err)
		}
		setup := &podSetup{node: "gpu-0", devices: d, vgpus: s.vgpuDevices(n)}
		if v := containerVisibleDevices(setup, "c"); v != vgpuUUID("gpu-0", 7, minor-8) {
			t.Errorf("claim %s: NVIDIA_VISIBLE_DEVICES=%s", claim, v)
		}
	}
}

func TestLeakyVGPUsShowTheWholeParent(t *testing.T) {
	s, rt := vgpuRuntime(t, VGPU{PerGPU: 2, Leaky: true}, vgpuClaim("a", "gpu-0", "vgpu-7-0"))
	n := s.nodes["gpu-0"]
	d, err := rt.podDevices(context.Background(), vgpuPod("a"), n)
	if err != nil || !reflect.DeepEqual(d["c"], []int{8, 9}) {
		t.Fatalf("%v %v", d, err)
	}
	// Still advertised as two separate vGPUs: the fault is in the behaviour only.
	if got := len(s.vgpuSliceFor(n, &corev1.Node{}).Spec.Devices); got != 2 {
		t.Errorf("%d devices", got)
	}
}
