package sim

import (
	"net"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"aiconform.dev/testcluster/internal/profile"
)

func testSim(t *testing.T) *Simulator {
	p, err := profile.Load("h100-sxm")
	if err != nil {
		t.Fatal(err)
	}
	return New(nil, p, "v1.34.4", false)
}

func TestNodesFromProfile(t *testing.T) {
	s := testSim(t)
	names := s.NodeNames()
	if len(names) != 3 || names[0] != "system-0" || names[2] != "gpu-1" || s.GPUNodeCount() != 2 {
		t.Fatalf("nodes %v gpu=%d", names, s.GPUNodeCount())
	}
	n := s.nodes["gpu-0"]
	nd := s.desiredNode(n)
	if nd.Labels["kubernetes.io/hostname"] != "gpu-0" || nd.Labels["nvidia.com/gpu.product"] != "NVIDIA-H100-80GB-HBM3" || nd.Labels[LabelPool] != "gpu" {
		t.Errorf("labels %v", nd.Labels)
	}
	// The profile's driver, whatever the runtime installs (the
	// driver-version-skew fault changes only the node's host tree).
	if nd.Labels["nvidia.com/cuda.driver.major"] != "550" {
		t.Errorf("driver labels %v", nd.Labels)
	}
	st := s.nodeStatus(n, corev1.NodeStatus{})
	if q := st.Allocatable["nvidia.com/gpu"]; q.Value() != 8 {
		t.Errorf("allocatable gpu %v", q)
	}
	if st.NodeInfo.KubeletVersion != "v1.34.4" || st.NodeInfo.OSImage != "Ubuntu 24.04.1 LTS" || st.NodeInfo.Architecture != "amd64" {
		t.Errorf("nodeInfo %+v", st.NodeInfo)
	}
	ready := false
	for _, c := range st.Conditions {
		if c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue {
			ready = true
		}
	}
	if !ready {
		t.Errorf("node not Ready")
	}
	slice := s.resourceSliceFor(n, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "gpu-0", UID: "u"}})
	if slice.Spec.Driver != DriverName || len(slice.Spec.Devices) != 8 || *slice.Spec.NodeName != "gpu-0" {
		t.Fatalf("slice %+v", slice.Spec)
	}
	d := slice.Spec.Devices[3]
	if *d.Attributes["productName"].StringValue != "NVIDIA H100 80GB HBM3" || *d.Attributes["index"].IntValue != 3 || *d.Attributes["driverVersion"].VersionValue != "550.127.5" {
		t.Errorf("device attributes %+v", d.Attributes)
	}
	if q := d.Capacity["memory"].Value; q.Value() != 81559*1024*1024 {
		t.Errorf("memory %v", q)
	}
	if s.resourceSliceFor(s.nodes["system-0"], &corev1.Node{}) != nil {
		t.Errorf("system node must not publish a slice")
	}
}

func TestPodLifecycle(t *testing.T) {
	s := testSim(t)
	n := s.nodes["gpu-0"]
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "default", UID: "uid-1"},
		Spec: corev1.PodSpec{NodeName: "gpu-0",
			InitContainers: []corev1.Container{{Name: "init", Image: "busybox"}},
			Containers:     []corev1.Container{{Name: "a", Image: "img"}, {Name: "b", Image: "img2"}}},
		Status: corev1.PodStatus{Phase: corev1.PodPending},
	}
	now := time.Now()
	st := s.runningStatus(n, pod, now)
	if st.Phase != corev1.PodRunning || st.PodIP == "" || st.HostIP != n.ip || st.StartTime == nil {
		t.Fatalf("status %+v", st)
	}
	if len(st.ContainerStatuses) != 2 || !st.ContainerStatuses[1].Ready || st.ContainerStatuses[0].State.Running == nil {
		t.Errorf("containers %+v", st.ContainerStatuses)
	}
	if len(st.InitContainerStatuses) != 1 || st.InitContainerStatuses[0].State.Terminated == nil {
		t.Errorf("init containers %+v", st.InitContainerStatuses)
	}
	pod.Status = *st
	if !statusEqual(&pod.Status, s.runningStatus(n, pod, now.Add(time.Second))) {
		t.Errorf("running status is not stable")
	}

	unready := pod.DeepCopy()
	unready.Annotations = map[string]string{AnnotationReady: "false"}
	ust := s.runningStatus(n, unready, now)
	for _, c := range ust.Conditions {
		if c.Type == corev1.PodReady && c.Status != corev1.ConditionFalse {
			t.Errorf("pod with ready=false annotation is Ready")
		}
	}
	if ust.Phase != corev1.PodRunning || ust.ContainerStatuses[0].Ready {
		t.Errorf("unready pod status %+v", ust)
	}

	ok := terminatedStatus(pod, 0, now)
	if ok.Phase != corev1.PodSucceeded || ok.ContainerStatuses[0].State.Terminated.ExitCode != 0 {
		t.Errorf("exit 0 -> %+v", ok)
	}
	bad := terminatedStatus(pod, 2, now)
	if bad.Phase != corev1.PodFailed || bad.ContainerStatuses[0].State.Terminated.ExitCode != 2 || bad.ContainerStatuses[0].State.Terminated.Reason != "Error" {
		t.Errorf("exit 2 -> %+v", bad)
	}
}

func TestPodIPsUnique(t *testing.T) {
	s := testSim(t)
	seen := map[string]bool{}
	for _, name := range s.NodeNames() {
		n := s.nodes[name]
		if seen[n.ip] {
			t.Fatalf("duplicate node ip %s", n.ip)
		}
		seen[n.ip] = true
		for i := 0; i < 600; i++ {
			ip := n.allocPodIP()
			if seen[ip] {
				t.Fatalf("duplicate pod ip %s", ip)
			}
			seen[ip] = true
		}
	}
}

func TestPodNetworkAddresses(t *testing.T) {
	p := &podNetwork{base: 198<<24 | 18<<16, salt: 255}
	seen := map[string]bool{}
	for node := 0; node < 3; node++ {
		for n := 1; n <= podBlockSize-2; n++ {
			a := p.addr(node, n)
			ip := net.ParseIP(a).To4()
			if ip == nil || ip[0] != 198 || ip[1] < 18 || ip[1] > 19 || seen[a] {
				t.Fatalf("node %d n %d: %s (dup %v)", node, n, a, seen[a])
			}
			seen[a] = true
		}
	}
	if a := p.addr(0, 1); a != "198.19.254.1" {
		t.Errorf("salted block of node 0: %s", a)
	}
	if a := p.addr(1, 1); a != "198.18.0.1" {
		t.Errorf("block wraps around: %s", a)
	}
}
