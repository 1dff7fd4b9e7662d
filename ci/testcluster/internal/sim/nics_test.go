package sim

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"aiconform.dev/testcluster/internal/podruntime"
)

func TestNICNodesAndSlices(t *testing.T) {
	s := testSim(t)
	nodes := nicNodes(s.order)
	if len(nodes) != 1 || nodes["gpu-0"] != 0 {
		t.Fatalf("NIC nodes %v (want gpu-0 only of gpu-0, gpu-1)", nodes)
	}
	slice := nicSlice("gpu-0", 0, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "gpu-0", UID: "u"}})
	if slice.Spec.Driver != podruntime.NICDriverName || len(slice.Spec.Devices) != 4 || slice.Name != "gpu-0-dra-net" {
		t.Fatalf("slice %s %+v", slice.Name, slice.Spec)
	}
	d := slice.Spec.Devices[2]
	a := d.Attributes
	if d.Name != "ens3f0np0" || *a["dra.net/ifName"].StringValue != "ens3f0np0" || *a["dra.net/pciAddress"].StringValue != "0000:5a:00.0" ||
		*a["dra.net/numaNode"].IntValue != 1 || !*a["dra.net/rdma"].BoolValue || *a["dra.net/ipv4"].StringValue != "100.64.0.3" {
		t.Errorf("device %s attributes %+v", d.Name, a)
	}
}
