package sim

import (
	"reflect"
	"testing"

	resourcev1 "k8s.io/api/resource/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func allocatedClaim(ns, name string, results ...resourcev1.DeviceRequestAllocationResult) *resourcev1.ResourceClaim {
	return &resourcev1.ResourceClaim{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Status: resourcev1.ResourceClaimStatus{Allocation: &resourcev1.AllocationResult{
			Devices: resourcev1.DeviceAllocationResult{Results: results}}},
	}
}

func result(req, driver, pool, device string) resourcev1.DeviceRequestAllocationResult {
	return resourcev1.DeviceRequestAllocationResult{Request: req, Driver: driver, Pool: pool, Device: device}
}

func TestClaimGPUs(t *testing.T) {
	c := allocatedClaim("ns", "c",
		result("gpu", DriverName, "gpu-0", "gpu-3"),
		result("pair/small", DriverName, "gpu-0", "gpu-5"),
		result("gpu", DriverName, "gpu-1", "gpu-4"),        // another node's pool
		result("nic", "nic.example.com", "gpu-0", "gpu-6"), // another driver
		result("gpu", DriverName, "gpu-0", "mig-1g"),       // not a whole GPU
	)
	got := claimGPUs(c, "gpu-0")
	want := map[string][]int{"gpu": {3}, "pair": {5}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("claimGPUs = %v, want %v", got, want)
	}
	if got := claimGPUs(&resourcev1.ResourceClaim{}, "gpu-0"); len(got) != 0 {
		t.Errorf("unallocated claim: %v", got)
	}
}
