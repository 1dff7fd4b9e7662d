package podruntime

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"
)

func sharedPod(i int, resourceName corev1.ResourceName) *corev1.Pod {
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: fmt.Sprintf("p%d", i), UID: types.UID(fmt.Sprintf("uid-%d", i))},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c",
			Resources: corev1.ResourceRequirements{Limits: corev1.ResourceList{resourceName: resource.MustParse("1")}}}}}}
}

// sharingRuntime is a runtime on nodes whose GPUs are time-sliced into
// replicas (exclusive: the fault).
func sharingRuntime(t *testing.T, replicas int, exclusive bool) (*fakeSim, *Runtime) {
	s := testSim(t)
	s.client = fake.NewClientset()
	s.host.replicas, s.host.exclusive = replicas, exclusive
	rt, err := NewRuntime(RuntimeOptions{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	s.SetRuntime(rt)
	return s, rt
}

func TestReplicasShareAPhysicalGPU(t *testing.T) {
	s, rt := sharingRuntime(t, 4, false)
	n := s.nodes["gpu-0"]
	ctx := context.Background()
	var got []int
	for i := 0; i < 9; i++ {
		d, err := rt.podDevices(ctx, sharedPod(i, SharedGPUResourceName), n)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, d["c"]...)
	}
	if want := []int{0, 0, 0, 0, 1, 1, 1, 1, 2}; !reflect.DeepEqual(got, want) {
		t.Errorf("replicas on GPUs %v, want %v", got, want)
	}
	// Whole GPUs are a separate inventory, as the scheduler counts them.
	d, err := rt.podDevices(ctx, sharedPod(100, "nvidia.com/gpu"), n)
	if err != nil || !reflect.DeepEqual(d["c"], []int{0}) {
		t.Errorf("whole GPU %v %v", d, err)
	}
	rt.releaseDevices(sharedPod(0, SharedGPUResourceName), n)
	if a := rt.gpus["gpu-0"]; len(a.shared[0]) != 3 {
		t.Errorf("after release GPU 0 has sharers %v", a.shared[0])
	}
}

func TestExclusiveSharingFault(t *testing.T) {
	s, rt := sharingRuntime(t, 4, true)
	n := s.nodes["gpu-0"]
	ctx := context.Background()
	for i := 0; i < 8; i++ {
		d, err := rt.podDevices(ctx, sharedPod(i, SharedGPUResourceName), n)
		if err != nil || !reflect.DeepEqual(d["c"], []int{i}) {
			t.Fatalf("pod %d: %v %v", i, d, err)
		}
	}
	_, err := rt.podDevices(ctx, sharedPod(8, SharedGPUResourceName), n)
	var refused admissionError
	if !errors.As(err, &refused) {
		t.Fatalf("ninth replica: %v", err)
	}
}

// A pod the node cannot give its devices fails at admission, like the
// kubelet's UnexpectedAdmissionError, instead of waiting forever.
func TestRefusedAllocationFailsThePod(t *testing.T) {
	pod := sharedPod(1, SharedGPUResourceName)
	pr := &podRun{ctrs: map[string]*ctrState{"c": {name: "c", waiting: &corev1.ContainerStateWaiting{Reason: "ContainerCreating"}}},
		failed: true, refused: "no GPU has a free replica"}
	st := pr.status(pod, &corev1.PodStatus{}, time.Now())
	if st.Phase != corev1.PodFailed || st.Reason != "UnexpectedAdmissionError" || !strings.Contains(st.Message, "no GPU has a free replica") {
		t.Errorf("status %s %s %q", st.Phase, st.Reason, st.Message)
	}
}

func TestDriverSkewChangesOnlyTheInstalledDriver(t *testing.T) {
	s := testSim(t)
	files := nodeTree(s.nodes["gpu-0"])
	skewDriver(files)
	if files["sys/module/nvidia/version"] != skewedDriverVersion+"\n" || !strings.Contains(files["proc/driver/nvidia/version"], skewedDriverVersion) {
		t.Errorf("driver files %q %q", files["sys/module/nvidia/version"], files["proc/driver/nvidia/version"])
	}
	sys := nodeTree(s.nodes["system-0"])
	skewDriver(sys)
	if sys["sys/module/nvidia/version"] != "" {
		t.Error("no driver on a node without GPUs")
	}
}
