package sim

import (
	"testing"

	corev1 "k8s.io/api/core/v1"

	"aiconform.dev/testcluster/internal/podruntime"
)

func sharingSim(t *testing.T, sh Sharing) *Simulator {
	s := testSim(t)
	s.SetGPUSharing(sh)
	return s
}

func TestTimeSlicingAdvertisedOnGPUNodes(t *testing.T) {
	s := sharingSim(t, Sharing{Replicas: 4})
	n := s.nodes["gpu-0"]
	if l := s.desiredNode(n).Labels; l["nvidia.com/gpu.sharing-strategy"] != "time-slicing" || l["nvidia.com/gpu.replicas"] != "4" || l["nvidia.com/gpu.count"] != "8" {
		t.Errorf("labels %v", l)
	}
	st := s.nodeStatus(n, corev1.NodeStatus{})
	if q := st.Allocatable[podruntime.SharedGPUResourceName]; q.Value() != 32 {
		t.Errorf("allocatable %s = %v", podruntime.SharedGPUResourceName, q)
	}
	if q := st.Allocatable["nvidia.com/gpu"]; q.Value() != 8 {
		t.Errorf("allocatable nvidia.com/gpu = %v", q)
	}
	if r, ex := (runtimeHost{s}).TimeSlicing("gpu-0"); r != 4 || ex {
		t.Errorf("runtime told %d replicas, exclusive %v", r, ex)
	}
	sys := s.nodeStatus(s.nodes["system-0"], corev1.NodeStatus{})
	if _, ok := sys.Allocatable[podruntime.SharedGPUResourceName]; ok || s.desiredNode(s.nodes["system-0"]).Labels["nvidia.com/gpu.replicas"] != "" {
		t.Error("a node without GPUs advertises no replicas")
	}
	if r, _ := (runtimeHost{s}).TimeSlicing("system-0"); r != 0 {
		t.Errorf("a node without GPUs shares %d replicas", r)
	}
	off := sharingSim(t, Sharing{Replicas: 1})
	if _, ok := off.nodeStatus(off.nodes["gpu-0"], corev1.NodeStatus{}).Allocatable[podruntime.SharedGPUResourceName]; ok {
		t.Error("one replica is no sharing")
	}
	// The exclusive fault still advertises every replica: it is in the
	// runtime's behaviour only.
	ex := sharingSim(t, Sharing{Replicas: 4, Exclusive: true})
	if q := ex.nodeStatus(ex.nodes["gpu-0"], corev1.NodeStatus{}).Allocatable[podruntime.SharedGPUResourceName]; q.Value() != 32 {
		t.Errorf("allocatable %v", q)
	}
	if r, exclusive := (runtimeHost{ex}).TimeSlicing("gpu-0"); r != 4 || !exclusive {
		t.Errorf("runtime told %d replicas, exclusive %v", r, exclusive)
	}
}
