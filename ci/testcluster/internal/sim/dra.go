package sim

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	resourcev1 "k8s.io/api/resource/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"aiconform.dev/testcluster/internal/podruntime"
)

const (
	// DriverName is the DRA driver the simulated GPUs belong to (the name
	// used by NVIDIA's k8s-dra-driver-gpu).
	DriverName = "gpu.nvidia.com"
	// DeviceClassName is the DeviceClass created at startup.
	DeviceClassName = "gpu.nvidia.com"
)

// EnsureDeviceClass creates the gpu.nvidia.com DeviceClass (and the vGPU
// one when vGPUs are enabled).
func (s *Simulator) EnsureDeviceClass(ctx context.Context) error {
	if err := s.ensureVGPUDeviceClass(ctx); err != nil {
		return err
	}
	if s.noDeviceClass {
		return nil
	}
	dc := &resourcev1.DeviceClass{
		ObjectMeta: metav1.ObjectMeta{Name: DeviceClassName},
		Spec: resourcev1.DeviceClassSpec{
			Selectors: []resourcev1.DeviceSelector{{
				CEL: &resourcev1.CELDeviceSelector{Expression: fmt.Sprintf("device.driver == %q", DriverName)},
			}},
		},
	}
	_, err := s.client.ResourceV1().DeviceClasses().Create(ctx, dc, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		return nil
	}
	return err
}

func strAttr(v string) resourcev1.DeviceAttribute {
	return resourcev1.DeviceAttribute{StringValue: ptr.To(v)}
}

// semverish turns a driver version like 550.127.05 into a valid semver
// (550.127.5) for the "version" attribute type.
func semverish(v string) string {
	parts := strings.Split(v, ".")
	for len(parts) < 3 {
		parts = append(parts, "0")
	}
	for i, p := range parts[:3] {
		n, err := strconv.Atoi(p)
		if err != nil {
			return "0.0.0"
		}
		parts[i] = strconv.Itoa(n)
	}
	return strings.Join(parts[:3], ".")
}

// ResourceSliceFor builds the ResourceSlice of a GPU node (nil for nodes
// without GPUs).
func (s *Simulator) resourceSliceFor(n *node, owner *corev1.Node) *resourcev1.ResourceSlice {
	g := n.pool.GPU
	if g == nil {
		return nil
	}
	var devices []resourcev1.Device
	for i := 0; i < g.Count; i++ {
		attrs := map[resourcev1.QualifiedName]resourcev1.DeviceAttribute{
			"type":        strAttr("gpu"),
			"uuid":        strAttr(podruntime.GPUUUID(n.name, i)),
			"index":       {IntValue: ptr.To(int64(i))},
			"minor":       {IntValue: ptr.To(int64(i))},
			"productName": strAttr(firstNonEmpty(g.ProductName, g.Product)),
			"brand":       strAttr("Nvidia"),
		}
		if g.Architecture != "" {
			attrs["architecture"] = strAttr(g.Architecture)
		}
		if g.DriverVersion != "" {
			attrs["driverVersion"] = resourcev1.DeviceAttribute{VersionValue: ptr.To(semverish(g.DriverVersion))}
		}
		if g.CUDADriverVersion != "" {
			attrs["cudaDriverVersion"] = resourcev1.DeviceAttribute{VersionValue: ptr.To(semverish(g.CUDADriverVersion))}
		}
		if g.ComputeCapability != "" {
			attrs["cudaComputeCapability"] = resourcev1.DeviceAttribute{VersionValue: ptr.To(semverish(g.ComputeCapability))}
		}
		attrs["addressingMode"] = strAttr("None")
		capacity := map[resourcev1.QualifiedName]resourcev1.DeviceCapacity{}
		if g.MemoryMiB > 0 {
			capacity["memory"] = resourcev1.DeviceCapacity{Value: *resource.NewQuantity(g.MemoryMiB*1024*1024, resource.BinarySI)}
		}
		devices = append(devices, resourcev1.Device{
			Name:       gpuDeviceName(i),
			Attributes: attrs,
			Capacity:   capacity,
		})
	}
	return &resourcev1.ResourceSlice{
		ObjectMeta: metav1.ObjectMeta{
			Name: n.name + "-" + strings.ReplaceAll(DriverName, ".", "-"),
			OwnerReferences: []metav1.OwnerReference{{
				APIVersion: "v1", Kind: "Node", Name: owner.Name, UID: owner.UID, Controller: ptr.To(true),
			}},
		},
		Spec: resourcev1.ResourceSliceSpec{
			Driver:   DriverName,
			NodeName: ptr.To(n.name),
			Pool:     resourcev1.ResourcePool{Name: n.name, Generation: 1, ResourceSliceCount: 1},
			Devices:  devices,
		},
	}
}

func firstNonEmpty(s ...string) string {
	for _, x := range s {
		if x != "" {
			return x
		}
	}
	return ""
}

// PublishResourceSlices creates one ResourceSlice per GPU node (plus one for
// the vGPUs of nodes that have them), registerWorkers nodes at a time, as
// the DRA drivers of many nodes publish at once. Call after RegisterNodes.
func (s *Simulator) PublishResourceSlices(ctx context.Context) error {
	return forEach(ctx, len(s.order), registerWorkers, func(ctx context.Context, i int) error {
		return s.publishResourceSlices(ctx, s.order[i])
	})
}

// publishResourceSlices creates the ResourceSlices of a registered node.
func (s *Simulator) publishResourceSlices(ctx context.Context, n *node) error {
	if n.pool.GPU == nil {
		return nil
	}
	owner := n.ownerNode()
	if err := s.publishVGPUSlice(ctx, n, owner); err != nil {
		return err
	}
	_, err := s.client.ResourceV1().ResourceSlices().Create(ctx, s.resourceSliceFor(n, owner), metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("creating ResourceSlice for %s: %w", n.name, err)
	}
	return nil
}

// GPUNodeCount is the number of nodes that publish a ResourceSlice.
func (s *Simulator) GPUNodeCount() int {
	c := 0
	for _, n := range s.order {
		if n.pool.GPU != nil {
			c++
		}
	}
	return c
}
