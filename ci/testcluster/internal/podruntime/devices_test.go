package podruntime

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	resourcev1 "k8s.io/api/resource/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/utils/ptr"
)

// podWithClaim has an authorized container (the claim), a sibling without
// it, and a container asking the device plugin for two GPUs.
func podWithClaim() *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "p", UID: "uid-p"},
		Spec: corev1.PodSpec{
			NodeName:       "gpu-0",
			ResourceClaims: []corev1.PodResourceClaim{{Name: "gpu", ResourceClaimTemplateName: ptr.To("t")}},
			Containers: []corev1.Container{
				{Name: "authorized", Resources: corev1.ResourceRequirements{Claims: []corev1.ResourceClaim{{Name: "gpu"}}}},
				{Name: "sibling"},
				{Name: "plugin", Resources: corev1.ResourceRequirements{Limits: corev1.ResourceList{"nvidia.com/gpu": resource.MustParse("2")}}},
			},
		},
		Status: corev1.PodStatus{ResourceClaimStatuses: []corev1.PodResourceClaimStatus{{Name: "gpu", ResourceClaimName: ptr.To("p-gpu-x")}}},
	}
}

func TestPodDevicesFollowAllocations(t *testing.T) {
	s := testSim(t)
	// The claim's GPU 0 on gpu-0, as the simulator's DRA driver reads its allocation.
	s.client = fake.NewClientset(&resourcev1.ResourceClaim{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "p-gpu-x"}})
	s.host.claims = map[string]map[string][]int{"p-gpu-x": {"gpu": {0}}}
	rt, err := NewRuntime(RuntimeOptions{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	s.SetRuntime(rt)
	ctx := context.Background()
	n := s.nodes["gpu-0"]
	pod := podWithClaim()
	got, err := rt.podDevices(ctx, pod, n)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]int{"authorized": {0}, "sibling": nil, "plugin": {0, 1}}
	for c, w := range want {
		if len(got[c]) != len(w) || (len(w) > 0 && !reflect.DeepEqual(got[c], w)) {
			t.Errorf("%s sees %v, want %v", c, got[c], w)
		}
	}
	setup := &podSetup{node: "gpu-0", devices: got}
	if v := containerVisibleDevices(setup, "authorized"); v != GPUUUID("gpu-0", 0) {
		t.Errorf("NVIDIA_VISIBLE_DEVICES %q", v)
	}
	if v := containerVisibleDevices(setup, "sibling"); v != "" {
		t.Errorf("sibling NVIDIA_VISIBLE_DEVICES %q", v)
	}

	// Six GPUs are left for the device plugin: a pod asking for seven is
	// refused; once the first pod is gone it is not.
	big := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "big", UID: "uid-big"},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c",
			Resources: corev1.ResourceRequirements{Limits: corev1.ResourceList{"nvidia.com/gpu": resource.MustParse("7")}}}}}}
	if _, err := rt.podDevices(ctx, big, n); err == nil || !strings.Contains(err.Error(), "only 6 of 8 GPUs on gpu-0 are free") {
		t.Errorf("oversubscription: %v", err)
	}
	rt.releaseDevices(pod, n)
	if got, err := rt.podDevices(ctx, big, n); err != nil || !reflect.DeepEqual(got["c"], []int{0, 1, 2, 3, 4, 5, 6}) {
		t.Errorf("after release: %v %v", got, err)
	}

	// A node without GPUs gives none, whatever is asked.
	if got, err := rt.podDevices(ctx, pod, s.nodes["system-0"]); err != nil || len(got["plugin"]) != 0 {
		t.Errorf("system node: %v %v", got, err)
	}
}

func TestLeakyIsolationShowsEveryGPU(t *testing.T) {
	s := testSim(t)
	s.client = fake.NewClientset()
	rt, err := NewRuntime(RuntimeOptions{Dir: t.TempDir(), LeakyDeviceIsolation: true})
	if err != nil {
		t.Fatal(err)
	}
	s.SetRuntime(rt)
	got, err := rt.podDevices(context.Background(), podWithClaim(), s.nodes["gpu-0"])
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []string{"authorized", "sibling", "plugin"} {
		if len(got[c]) != 8 {
			t.Errorf("%s sees %v", c, got[c])
		}
	}
	if v := containerVisibleDevices(&podSetup{node: "gpu-0", devices: got, leaky: true}, "sibling"); v != "all" {
		t.Errorf("NVIDIA_VISIBLE_DEVICES %q", v)
	}
}

func TestDeviceMounts(t *testing.T) {
	if ms := deviceMounts("/n", nil); len(ms) != 0 {
		t.Errorf("no GPU, no device files: %v", ms)
	}
	var targets []string
	for _, m := range deviceMounts("/n", []int{2, 5}) {
		targets = append(targets, m.Target)
		if m.Source != "/n"+m.Target || !m.File {
			t.Errorf("mount %+v", m)
		}
	}
	want := []string{"/dev/nvidia2", "/dev/nvidia5", "/dev/nvidiactl", "/dev/nvidia-uvm", "/dev/nvidia-uvm-tools", "/dev/nvidia-modeset"}
	if !reflect.DeepEqual(targets, want) {
		t.Errorf("targets %v", targets)
	}
}

// TestContainerSeesOnlyItsGPUs runs real containers: the one given a GPU by
// the device plugin sees exactly that device file and its UUID, its sibling
// sees no GPU device. Needs root (mount namespaces).
func TestContainerSeesOnlyItsGPUs(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root for mount and PID namespaces")
	}
	sh, err := filepath.EvalSymlinks("/bin/sh")
	if err != nil {
		t.Skip("no /bin/sh")
	}
	for _, leaky := range []bool{false, true} {
		s := testSim(t)
		rt, err := NewRuntime(RuntimeOptions{Images: map[string]string{"example.com/sh": sh}, Dir: t.TempDir(), LeakyDeviceIsolation: leaky})
		if err != nil {
			t.Fatal(err)
		}
		s.SetRuntime(rt)
		rt.notify = func(string) {}
		script := `for f in /dev/nvidia*; do echo $f; done > /dev/termination-log; echo "visible=$NVIDIA_VISIBLE_DEVICES" >> /dev/termination-log`
		ctr := func(name string, gpus string) corev1.Container {
			c := corev1.Container{Name: name, Image: "example.com/sh", Command: []string{filepath.Base(sh), "-c", script}}
			if gpus != "" {
				c.Resources.Limits = corev1.ResourceList{"nvidia.com/gpu": resource.MustParse(gpus)}
			}
			return c
		}
		pod := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "ns", UID: "uid-1"},
			Spec: corev1.PodSpec{NodeName: "gpu-1", RestartPolicy: corev1.RestartPolicyNever,
				Containers: []corev1.Container{ctr("gpu", "1"), ctr("sibling", "")}},
		}
		ctx, cancel := context.WithCancel(context.Background())
		pr := rt.ensure(ctx, pod, s.nodes["gpu-1"], "127.17.0.2")
		select {
		case <-pr.done:
		case <-time.After(30 * time.Second):
			t.Fatal("containers did not finish")
		}
		st := pr.status(pod, &corev1.PodStatus{}, time.Now())
		msgs := map[string]string{}
		for _, cs := range st.ContainerStatuses {
			if cs.State.Terminated == nil || cs.State.Terminated.ExitCode != 0 {
				t.Fatalf("leaky=%v %s: %+v", leaky, cs.Name, cs.State)
			}
			msgs[cs.Name] = cs.State.Terminated.Message
		}
		all := ""
		for i := 0; i < 8; i++ {
			all += "/dev/nvidia" + string(rune('0'+i)) + "\n"
		}
		ctl := "/dev/nvidia-modeset\n/dev/nvidia-uvm\n/dev/nvidia-uvm-tools\n"
		want := map[string]string{
			"gpu":     "/dev/nvidia-modeset\n/dev/nvidia-uvm\n/dev/nvidia-uvm-tools\n/dev/nvidia0\n/dev/nvidiactl\nvisible=" + GPUUUID("gpu-1", 0) + "\n",
			"sibling": "/dev/nvidia*\nvisible=\n",
		}
		if leaky {
			want["gpu"] = ctl + all + "/dev/nvidiactl\nvisible=all\n"
			want["sibling"] = want["gpu"]
		}
		if !reflect.DeepEqual(msgs, want) {
			t.Errorf("leaky=%v: container views %q, want %q", leaky, msgs, want)
		}
		cancel()
		rt.Shutdown()
	}
}
