// Package profile parses node-pool profiles for aiconform-testcluster.
//
// A profile describes one or more node pools. Each pool yields `count` fake
// nodes named "<pool>-<index>" carrying the pool's labels, taints, capacity
// and nodeInfo. Pools with a `gpu` section additionally get the
// nvidia.com/gpu extended resource and a DRA ResourceSlice with one device per
// GPU.
package profile

import (
	"embed"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"sigs.k8s.io/yaml"
)

//go:embed builtin/*.yaml
var builtin embed.FS

// DefaultName is the builtin profile used when --profile is not given.
const DefaultName = "h100-sxm"

// GPUResourceName is the extended resource the NVIDIA device plugin advertises.
const GPUResourceName = corev1.ResourceName("nvidia.com/gpu")

type Profile struct {
	Name  string `json:"name"`
	Pools []Pool `json:"pools"`
}

type Pool struct {
	Name     string                       `json:"name"`
	Count    int                          `json:"count"`
	Arch     string                       `json:"arch,omitempty"`
	Labels   map[string]string            `json:"labels,omitempty"`
	Taints   []corev1.Taint               `json:"taints,omitempty"`
	Capacity map[string]resource.Quantity `json:"capacity,omitempty"`
	NodeInfo NodeInfo                     `json:"nodeInfo,omitempty"`
	GPU      *GPU                         `json:"gpu,omitempty"`
}

type NodeInfo struct {
	OSImage                 string `json:"osImage,omitempty"`
	KernelVersion           string `json:"kernelVersion,omitempty"`
	ContainerRuntimeVersion string `json:"containerRuntimeVersion,omitempty"`
	// KubeletVersion defaults to the embedded apiserver's version.
	KubeletVersion string `json:"kubeletVersion,omitempty"`
}

type GPU struct {
	Count             int    `json:"count"`
	Product           string `json:"product"`
	ProductName       string `json:"productName,omitempty"`
	Family            string `json:"family,omitempty"`
	Architecture      string `json:"architecture,omitempty"`
	MemoryMiB         int64  `json:"memoryMiB,omitempty"`
	DriverVersion     string `json:"driverVersion,omitempty"`
	CUDADriverVersion string `json:"cudaDriverVersion,omitempty"`
	ComputeCapability string `json:"computeCapability,omitempty"`
}

// BuiltinNames lists the profiles compiled into the binary.
func BuiltinNames() []string {
	entries, _ := builtin.ReadDir("builtin")
	var names []string
	for _, e := range entries {
		names = append(names, strings.TrimSuffix(e.Name(), ".yaml"))
	}
	sort.Strings(names)
	return names
}

// BuiltinBytes returns the raw YAML of a builtin profile.
func BuiltinBytes(name string) ([]byte, error) {
	return builtin.ReadFile("builtin/" + name + ".yaml")
}

// Load reads a profile from a file path, or from the builtin set when ref is
// a builtin name (e.g. "h100-sxm", "gb200") or empty (the default).
func Load(ref string) (*Profile, error) {
	if ref == "" {
		ref = DefaultName
	}
	data, err := os.ReadFile(ref)
	if err != nil {
		b, berr := BuiltinBytes(strings.TrimSuffix(ref, ".yaml"))
		if berr != nil || strings.ContainsRune(ref, filepath.Separator) {
			return nil, fmt.Errorf("reading profile %q (builtin profiles: %s): %w", ref, strings.Join(BuiltinNames(), ", "), err)
		}
		data = b
	}
	p, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("profile %q: %w", ref, err)
	}
	return p, nil
}

// Parse decodes and validates a profile.
func Parse(data []byte) (*Profile, error) {
	var p Profile
	if err := yaml.UnmarshalStrict(data, &p); err != nil {
		return nil, err
	}
	if err := p.Validate(); err != nil {
		return nil, err
	}
	return &p, nil
}

func (p *Profile) Validate() error {
	if len(p.Pools) == 0 {
		return fmt.Errorf("no pools")
	}
	seen := map[string]bool{}
	for i := range p.Pools {
		pl := &p.Pools[i]
		if pl.Name == "" {
			return fmt.Errorf("pool %d has no name", i)
		}
		if seen[pl.Name] {
			return fmt.Errorf("duplicate pool %q", pl.Name)
		}
		seen[pl.Name] = true
		if pl.Count < 0 {
			return fmt.Errorf("pool %q: negative count", pl.Name)
		}
		if pl.GPU != nil && pl.GPU.Count <= 0 {
			return fmt.Errorf("pool %q: gpu.count must be > 0", pl.Name)
		}
		if pl.GPU != nil && pl.GPU.Product == "" {
			return fmt.Errorf("pool %q: gpu.product is required", pl.Name)
		}
		for k := range pl.Capacity {
			if k == "" {
				return fmt.Errorf("pool %q: empty capacity name", pl.Name)
			}
		}
	}
	return nil
}

// GPUPool returns the index of the first pool with GPUs, or -1.
func (p *Profile) GPUPool() int {
	for i, pl := range p.Pools {
		if pl.GPU != nil {
			return i
		}
	}
	return -1
}

// SetGPUNodes overrides the node count of the first GPU pool (--nodes).
func (p *Profile) SetGPUNodes(n int) error {
	i := p.GPUPool()
	if i < 0 {
		return fmt.Errorf("profile %q has no GPU pool to resize", p.Name)
	}
	p.Pools[i].Count = n
	return nil
}

// NodeName is the name of the idx-th node of a pool.
func (pl *Pool) NodeName(idx int) string {
	return fmt.Sprintf("%s-%d", pl.Name, idx)
}

// Arch returns the pool architecture (amd64 by default).
func (pl *Pool) Architecture() string {
	if pl.Arch == "" {
		return "amd64"
	}
	return pl.Arch
}

// ResourceList is the node capacity (= allocatable) of the pool, including
// nvidia.com/gpu for GPU pools and defaults for cpu/memory/pods.
func (pl *Pool) ResourceList() corev1.ResourceList {
	rl := corev1.ResourceList{
		corev1.ResourceCPU:              resource.MustParse("8"),
		corev1.ResourceMemory:           resource.MustParse("32Gi"),
		corev1.ResourcePods:             resource.MustParse("110"),
		corev1.ResourceEphemeralStorage: resource.MustParse("100Gi"),
	}
	for k, v := range pl.Capacity {
		rl[corev1.ResourceName(k)] = v.DeepCopy()
	}
	if pl.GPU != nil {
		if _, ok := rl[GPUResourceName]; !ok {
			rl[GPUResourceName] = *resource.NewQuantity(int64(pl.GPU.Count), resource.DecimalSI)
		}
	}
	return rl
}

// TotalNodes is the number of nodes across all pools.
func (p *Profile) TotalNodes() int {
	n := 0
	for _, pl := range p.Pools {
		n += pl.Count
	}
	return n
}
