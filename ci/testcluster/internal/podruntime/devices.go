package podruntime

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"aiconform.dev/testcluster/internal/profile"
)

// Device files a container gets, like the NVIDIA container toolkit injects
// them: one /dev/nvidia<minor> per allocated GPU plus the control devices
// once any GPU is allocated. The GPU minor is its index on the node.

// controlDevices are the driver's shared device nodes.
var controlDevices = []string{"nvidiactl", "nvidia-uvm", "nvidia-uvm-tools", "nvidia-modeset"}

// gpuDeviceFile is the device node of GPU index i.
func gpuDeviceFile(i int) string { return "nvidia" + strconv.Itoa(i) }

// GPUUUID is the UUID of GPU index i of a node (as in its ResourceSlice).
func GPUUUID(node string, i int) string { return "GPU-" + UUIDFrom("gpu", node, strconv.Itoa(i)) }

// podClaimNames maps the pod's claim entries (spec.resourceClaims[].name) to
// ResourceClaim names: named directly, or generated from a template as the
// pod status reports.
func podClaimNames(pod *corev1.Pod) map[string]string {
	out := map[string]string{}
	for _, rc := range pod.Spec.ResourceClaims {
		if rc.ResourceClaimName != nil {
			out[rc.Name] = *rc.ResourceClaimName
		}
	}
	for _, st := range pod.Status.ResourceClaimStatuses {
		if st.ResourceClaimName != nil {
			out[st.Name] = *st.ResourceClaimName
		}
	}
	return out
}

// containerClaimGPUs is what a container's resources.claims give it from
// the pod's allocated claims (by pod claim name, then request name): all
// requests of a claim, or only the one the entry names.
func containerClaimGPUs(c *corev1.Container, claims map[string]map[string][]int) []int {
	var out []int
	for _, ref := range c.Resources.Claims {
		for req, idx := range claims[ref.Name] {
			if ref.Request == "" || ref.Request == req {
				out = append(out, idx...)
			}
		}
	}
	return out
}

// devicePluginGPUs is the nvidia.com/gpu count a container asks the device
// plugin for (its limit; extended resources have requests equal to limits).
func devicePluginGPUs(c *corev1.Container) int {
	for _, rl := range []corev1.ResourceList{c.Resources.Limits, c.Resources.Requests} {
		if q, ok := rl[profile.GPUResourceName]; ok {
			return int(q.Value())
		}
	}
	return 0
}

// uniqueSorted sorts and deduplicates indices.
func uniqueSorted(idx []int) []int {
	sort.Ints(idx)
	out := idx[:0]
	for i, x := range idx {
		if i == 0 || x != idx[i-1] {
			out = append(out, x)
		}
	}
	return out
}

// visibleDevices is NVIDIA_VISIBLE_DEVICES for the given GPUs: their UUIDs,
// as the device plugin and the DRA driver set it (vgpus: the UUIDs of the
// node's vGPU device minors).
func visibleDevices(node string, idx []int, vgpus map[int]string) string {
	var u []string
	for _, i := range idx {
		if v, ok := vgpus[i]; ok {
			u = append(u, v)
			continue
		}
		u = append(u, GPUUUID(node, i))
	}
	return strings.Join(u, ",")
}

// gpuAllocator hands out GPUs of one node to device-plugin requests, lowest
// free indices first. The node advertises the same GPUs through DRA, as
// nvidia.com/gpu and as time-sliced replicas; the scheduler accounts for each
// separately, so each is a separate inventory here too (DRA allocations are
// the scheduler's own and need no tracking): a request is refused only when
// its own inventory is exhausted, as for pods bound without the scheduler.
type gpuAllocator struct {
	count  int
	held   map[int]string   // index -> pod UID holding it (nvidia.com/gpu)
	shared map[int][]string // index -> pod UIDs sharing it (time-slicing)
}

func (a *gpuAllocator) hold(owner string, idx []int) {
	for _, i := range idx {
		a.held[i] = owner
	}
}

// take allocates n free GPUs to owner; false (and nothing held) when fewer
// are free.
func (a *gpuAllocator) take(owner string, n int) ([]int, bool) {
	var got []int
	for i := 0; i < a.count && len(got) < n; i++ {
		if _, used := a.held[i]; !used {
			got = append(got, i)
		}
	}
	if len(got) < n {
		return nil, false
	}
	a.hold(owner, got)
	return got, true
}

func (a *gpuAllocator) release(owner string) {
	for i, o := range a.held {
		if o == owner {
			delete(a.held, i)
		}
	}
	a.releaseShared(owner)
}

// allocator returns the GPU allocator of a node (callers hold rt.mu).
func (rt *Runtime) allocator(n Node) *gpuAllocator {
	a := rt.gpus[n.Name]
	if a == nil {
		count := 0
		if n.Pool.GPU != nil {
			count = n.Pool.GPU.Count
		}
		a = &gpuAllocator{count: count, held: map[int]string{}, shared: map[int][]string{}}
		rt.gpus[n.Name] = a
	}
	return a
}

// vgpuDevices maps the vGPU device minors of a node to their UUIDs (empty
// without vGPUs, or before Attach).
func (rt *Runtime) vgpuDevices(n Node) map[int]string {
	if rt.host == nil {
		return map[int]string{}
	}
	return rt.host.VGPUDevices(n.Name)
}

// podDevices decides which GPUs each container of the pod sees: the GPUs of
// the DRA claims its resources.claims name, plus device-plugin GPUs for its
// nvidia.com/gpu limit and time-sliced ones for nvidia.com/gpu.shared. With the leaky-isolation fault every container sees
// every GPU of its node. The pod holds its GPUs until releaseDevices.
func (rt *Runtime) podDevices(ctx context.Context, pod *corev1.Pod, n Node) (map[string][]int, error) {
	all := append(append([]corev1.Container(nil), pod.Spec.InitContainers...), pod.Spec.Containers...)
	out := map[string][]int{}
	if n.Pool.GPU == nil {
		return out, nil
	}
	if rt.opts.LeakyDeviceIsolation {
		var every []int
		for i := 0; i < n.Pool.GPU.Count; i++ {
			every = append(every, i)
		}
		for _, c := range all {
			out[c.Name] = every
		}
		return out, nil
	}
	claims := map[string]map[string][]int{}
	for podName, claimName := range podClaimNames(pod) {
		claim, err := rt.client.ResourceV1().ResourceClaims(pod.Namespace).Get(ctx, claimName, metav1.GetOptions{})
		if err != nil {
			return nil, fmt.Errorf("resource claim %s (%s): %w", podName, claimName, err)
		}
		claims[podName] = rt.host.ClaimDevices(claim, n.Name)
	}
	var replicas int
	var exclusive bool
	if rt.host != nil {
		replicas, exclusive = rt.host.TimeSlicing(n.Name)
	}
	owner := string(pod.UID)
	rt.mu.Lock()
	defer rt.mu.Unlock()
	a := rt.allocator(n)
	for _, c := range all {
		idx := containerClaimGPUs(&c, claims)
		if k := devicePluginGPUs(&c); k > 0 {
			got, ok := a.take(owner, k)
			if !ok {
				a.release(owner)
				return nil, admissionError{fmt.Sprintf("container %q: %d nvidia.com/gpu requested but only %d of %d GPUs on %s are free", c.Name, k, a.free(), a.count, n.Name)}
			}
			idx = append(idx, got...)
		}
		if k := sharedGPUs(&c); k > 0 && replicas > 1 {
			got, ok := a.takeShared(owner, k, replicas, exclusive)
			if !ok {
				a.release(owner)
				return nil, admissionError{fmt.Sprintf("container %q: %d %s requested but no GPU on %s has a free replica", c.Name, k, SharedGPUResourceName, n.Name)}
			}
			idx = append(idx, got...)
		}
		out[c.Name] = uniqueSorted(idx)
	}
	return out, nil
}

// releaseDevices gives the pod's GPUs back to its node.
func (rt *Runtime) releaseDevices(pod *corev1.Pod, n Node) {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	if a := rt.gpus[n.Name]; a != nil {
		a.release(string(pod.UID))
	}
}

// deviceMounts binds the node's device files of the given GPUs (and the
// control devices, if any GPU) into the container's /dev.
func deviceMounts(nodeRoot string, idx []int) []mountSpec {
	if len(idx) == 0 {
		return nil
	}
	var names []string
	for _, i := range idx {
		names = append(names, gpuDeviceFile(i))
	}
	names = append(names, controlDevices...)
	var ms []mountSpec
	for _, name := range names {
		ms = append(ms, mountSpec{Kind: mountBind, Source: nodeRoot + "/dev/" + name, Target: "/dev/" + name, File: true})
	}
	return ms
}

// nodeDeviceFiles are the device nodes of a GPU node's /dev (relative to
// the node root).
func nodeDeviceFiles(g *profile.GPU) []string {
	if g == nil {
		return nil
	}
	var out []string
	for i := 0; i < g.Count; i++ {
		out = append(out, "dev/"+gpuDeviceFile(i))
	}
	for _, c := range controlDevices {
		out = append(out, "dev/"+c)
	}
	return out
}

// containerVisibleDevices is the container's NVIDIA_VISIBLE_DEVICES: "all"
// under the leaky-isolation fault (the classic leak: the runtime honours the
// image's "all"), the allocated GPUs' UUIDs otherwise, empty without GPUs.
func containerVisibleDevices(setup *podSetup, container string) string {
	idx := setup.devices[container]
	if len(idx) == 0 {
		return ""
	}
	if setup.leaky {
		return "all"
	}
	return visibleDevices(setup.node, idx, setup.vgpus)
}

// free is the number of GPUs no container holds through nvidia.com/gpu.
func (a *gpuAllocator) free() int { return a.count - len(a.held) }

// admissionError is a device allocation the node cannot make: the kubelet
// rejects such a pod at admission (phase Failed, UnexpectedAdmissionError).
type admissionError struct{ msg string }

func (e admissionError) Error() string { return e.msg }
