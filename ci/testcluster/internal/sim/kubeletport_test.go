package sim

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
)

func TestNodesReportTheLogEndpointPort(t *testing.T) {
	s := testSim(t)
	n := s.nodes["gpu-0"]
	if p := s.nodeStatus(n, corev1.NodeStatus{}).DaemonEndpoints.KubeletEndpoint.Port; p != 10250 {
		t.Fatalf("default kubelet port %d", p)
	}
	s.SetKubeletPort(41234)
	if p := s.nodeStatus(n, corev1.NodeStatus{}).DaemonEndpoints.KubeletEndpoint.Port; p != 41234 {
		t.Fatalf("kubelet port %d", p)
	}
}
