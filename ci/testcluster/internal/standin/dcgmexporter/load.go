package dcgmexporter

import (
	"sort"

	corev1 "k8s.io/api/core/v1"
	resourcev1 "k8s.io/api/resource/v1"
)

// Device is one GPU of a node, as its DRA driver publishes it.
type Device struct {
	Name      string // ResourceSlice device name (gpu-<index>)
	Index     int
	UUID      string
	Model     string
	MemoryMiB int64
}

// Holder is the container a device is allocated to.
type Holder struct {
	Namespace, Pod, Container string
}

// DevicesFromSlices lists the devices of driver on node, by index.
func DevicesFromSlices(slices []*resourcev1.ResourceSlice, driver, node string) []Device {
	var out []Device
	for _, s := range slices {
		if s.Spec.Driver != driver || s.Spec.NodeName == nil || *s.Spec.NodeName != node {
			continue
		}
		for _, d := range s.Spec.Devices {
			dev := Device{Name: d.Name, Index: len(out)}
			if a, ok := d.Attributes["index"]; ok && a.IntValue != nil {
				dev.Index = int(*a.IntValue)
			}
			if a, ok := d.Attributes["uuid"]; ok && a.StringValue != nil {
				dev.UUID = *a.StringValue
			}
			if a, ok := d.Attributes["productName"]; ok && a.StringValue != nil {
				dev.Model = *a.StringValue
			}
			if c, ok := d.Capacity["memory"]; ok {
				dev.MemoryMiB = c.Value.Value() / (1024 * 1024)
			}
			out = append(out, dev)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Index < out[j].Index })
	return out
}

// active reports whether a pod holds its devices: bound, started and not
// finished or being deleted.
func active(p *corev1.Pod) bool {
	return p.DeletionTimestamp == nil && p.Status.Phase == corev1.PodRunning
}

// Assign maps device indices of node to the containers holding them:
// devices of the pods' allocated ResourceClaims (driver, pool = node), then,
// for containers that request the extended resource (nvidia.com/gpu), the
// devices they were given before (prev, by pod and container) and for new
// ones the lowest free indices in pod creation order, as a device plugin
// hands them out and keeps them. claims are keyed namespace/name. It returns
// the holders and the extended-resource assignment to pass as prev next time.
func Assign(devices []Device, pods []*corev1.Pod, claims map[string]*resourcev1.ResourceClaim, driver, extended, node string, prev map[string][]int) (map[int]Holder, map[string][]int) {
	byName := map[string]int{}
	for _, d := range devices {
		byName[d.Name] = d.Index
	}
	held := map[int]Holder{}
	var running []*corev1.Pod
	for _, p := range pods {
		if p.Spec.NodeName == node && active(p) {
			running = append(running, p)
		}
	}
	sort.Slice(running, func(i, j int) bool {
		a, b := running[i], running[j]
		if !a.CreationTimestamp.Equal(&b.CreationTimestamp) {
			return a.CreationTimestamp.Before(&b.CreationTimestamp)
		}
		return a.Namespace+"/"+a.Name < b.Namespace+"/"+b.Name
	})
	for _, p := range running {
		for _, rc := range p.Spec.ResourceClaims {
			name := claimName(p, rc)
			c := claims[p.Namespace+"/"+name]
			if name == "" || c == nil || c.Status.Allocation == nil {
				continue
			}
			for _, r := range c.Status.Allocation.Devices.Results {
				if idx, ok := byName[r.Device]; ok && r.Driver == driver && r.Pool == node {
					held[idx] = Holder{Namespace: p.Namespace, Pod: p.Name, Container: claimContainer(p, rc.Name)}
				}
			}
		}
	}
	type want struct {
		key string
		h   Holder
		n   int
	}
	var wants []want
	for _, p := range running {
		for _, c := range p.Spec.Containers {
			q, ok := c.Resources.Limits[corev1.ResourceName(extended)]
			if !ok {
				q, ok = c.Resources.Requests[corev1.ResourceName(extended)]
			}
			if ok && q.Value() > 0 {
				wants = append(wants, want{p.Namespace + "/" + p.Name + "/" + string(p.UID) + "/" + c.Name, Holder{Namespace: p.Namespace, Pod: p.Name, Container: c.Name}, int(q.Value())})
			}
		}
	}
	next := map[string][]int{}
	known := map[int]bool{}
	for _, d := range devices {
		known[d.Index] = true
	}
	for _, w := range wants {
		idx := prev[w.key]
		keep := len(idx) == w.n
		for _, i := range idx {
			if _, taken := held[i]; taken || !known[i] {
				keep = false
			}
		}
		if keep {
			for _, i := range idx {
				held[i] = w.h
			}
			next[w.key] = idx
		}
	}
	for _, w := range wants {
		if _, done := next[w.key]; done {
			continue
		}
		var idx []int
		for _, d := range devices {
			if len(idx) == w.n {
				break
			}
			if _, taken := held[d.Index]; !taken {
				held[d.Index] = w.h
				idx = append(idx, d.Index)
			}
		}
		next[w.key] = idx
	}
	return held, next
}

// claimName resolves a pod's claim entry to the ResourceClaim's name
// (generated claims are named in the pod's status).
func claimName(p *corev1.Pod, rc corev1.PodResourceClaim) string {
	if rc.ResourceClaimName != nil {
		return *rc.ResourceClaimName
	}
	for _, s := range p.Status.ResourceClaimStatuses {
		if s.Name == rc.Name && s.ResourceClaimName != nil {
			return *s.ResourceClaimName
		}
	}
	return ""
}

// claimContainer is the first container that uses the pod claim entry.
func claimContainer(p *corev1.Pod, entry string) string {
	for _, c := range p.Spec.Containers {
		for _, cl := range c.Resources.Claims {
			if cl.Name == entry {
				return c.Name
			}
		}
	}
	if len(p.Spec.Containers) > 0 {
		return p.Spec.Containers[0].Name
	}
	return ""
}
