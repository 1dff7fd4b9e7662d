package podruntime

import (
	"context"
	"fmt"
	"reflect"
	"testing"

	corev1 "k8s.io/api/core/v1"
	resourcev1 "k8s.io/api/resource/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/utils/ptr"
)

func vgpuPod(claim string) *corev1.Pod {
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "p-" + claim, UID: types.UID("uid-" + claim)},
		Spec: corev1.PodSpec{
			ResourceClaims: []corev1.PodResourceClaim{{Name: "v", ResourceClaimName: ptr.To(claim)}},
			Containers:     []corev1.Container{{Name: "c", Resources: corev1.ResourceRequirements{Claims: []corev1.ResourceClaim{{Name: "v"}}}}},
		}}
}

// TestContainerSeesOnlyItsVGPU: a container of a vGPU claim sees the
// device minor the simulator's vGPU driver allocated (after the node's 8
// GPUs) and that vGPU's UUID.
func TestContainerSeesOnlyItsVGPU(t *testing.T) {
	s := testSim(t)
	s.client = fake.NewClientset(&resourcev1.ResourceClaim{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "a"}},
		&resourcev1.ResourceClaim{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "b"}})
	s.host.claims = map[string]map[string][]int{"a": {"vgpu": {8}}, "b": {"vgpu": {9}}}
	s.host.vgpus = map[int]string{8: "GPU-vgpu-0", 9: "GPU-vgpu-1"}
	rt, err := NewRuntime(RuntimeOptions{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	s.SetRuntime(rt)
	n := s.nodes["gpu-0"]
	ctx := context.Background()
	for claim, minor := range map[string]int{"a": 8, "b": 9} {
		d, err := rt.podDevices(ctx, vgpuPod(claim), n)
		if err != nil || !reflect.DeepEqual(d["c"], []int{minor}) {
			t.Fatalf("claim %s: %v %v", claim, d, err)
		}
		setup := &podSetup{node: "gpu-0", devices: d, vgpus: rt.vgpuDevices(n)}
		if v := containerVisibleDevices(setup, "c"); v != fmt.Sprintf("GPU-vgpu-%d", minor-8) {
			t.Errorf("claim %s: NVIDIA_VISIBLE_DEVICES=%s", claim, v)
		}
	}
}
