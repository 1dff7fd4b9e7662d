// Package sim is a tiny kubelet stand-in: it registers fake nodes from a
// profile, keeps them Ready (status heartbeats and node Leases), moves pods
// bound to those nodes through their lifecycle, and publishes DRA
// ResourceSlices for the GPUs of each node. Containers of mapped images run
// in the process runtime (internal/podruntime, see runtime.go).
package sim

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/retry"
	"k8s.io/klog/v2"
	"k8s.io/utils/ptr"

	"aiconform.dev/testcluster/internal/podruntime"
	"aiconform.dev/testcluster/internal/profile"
)

const (
	// AnnotationExitCode makes a pod terminate (Succeeded for "0", Failed
	// otherwise) shortly after it started.
	AnnotationExitCode = "testcluster.aiconform.dev/exit-code"
	// AnnotationRunDuration overrides how long a pod with an exit code runs
	// before terminating (Go duration, default 1s).
	AnnotationRunDuration = "testcluster.aiconform.dev/run-duration"
	// AnnotationReady "false" keeps a running pod unready.
	AnnotationReady = "testcluster.aiconform.dev/ready"
	// LabelPool is put on every simulated node.
	LabelPool = "testcluster.aiconform.dev/pool"
	// AnnotationSimulated marks simulated nodes.
	AnnotationSimulated = "testcluster.aiconform.dev/simulated"

	defaultRunDuration = time.Second
	// The kubelet's lease renew interval (a quarter of its 40 s lease).
	leaseRenewInterval = 10 * time.Second
	// maxLeaseRenewalsPerSecond bounds the lease renewals of all nodes together (see
	// leaseRenewInterval).
	maxLeaseRenewalsPerSecond = 100
	// registerWorkers nodes register at a time.
	registerWorkers = 16
	// Like the kubelet's nodeStatusReportFrequency: with node leases, an
	// unchanged status is only reported every 5 minutes.
	statusInterval = 5 * time.Minute
)

type node struct {
	name  string
	pool  *profile.Pool
	index int // global node index
	ip    string

	mu     sync.Mutex
	nextIP int
	uid    types.UID             // of the Node object, once registered
	lease  *coordinationv1.Lease // last written, renewed without a GET
}

// Simulator owns the fake nodes.
type Simulator struct {
	client         kubernetes.Interface
	prof           *profile.Profile
	kubeletVersion string
	noDeviceClass  bool
	sharing        Sharing
	vgpu           VGPU

	nodes map[string]*node
	order []*node
	boot  time.Time

	rt       *podruntime.Runtime // nil: no process runtime (containers are only simulated)
	podNet   *podNetwork         // nil: pod addresses on loopback (see EnablePodNetwork)
	nicNodes map[string]int      // NIC nodes by name -> ordinal; nil: no NIC driver stand-in (see EnableNICs)
	runCtx   context.Context     // lifetime of runtime processes
	// kubeletPort is the port nodes report for their kubelet (0: 10250).
	kubeletPort int32
	// informers is the factory of the pod (and ConfigMap, Secret) caches; nil: an own one.
	informers informers.SharedInformerFactory
}

// SetInformers makes the simulator use f, an informer factory shared with
// the cluster's other in-process components, for its caches. Call before RunPods.
func (s *Simulator) SetInformers(f informers.SharedInformerFactory) { s.informers = f }

// SetKubeletPort sets the kubelet port nodes report (default 10250, see
// podruntime.Runtime.ServeContainerLogs); call before RegisterNodes.
func (s *Simulator) SetKubeletPort(port int32) { s.kubeletPort = port }

// New creates a simulator. kubeletVersion is reported in every node's
// nodeInfo unless the pool sets its own.
func New(client kubernetes.Interface, prof *profile.Profile, kubeletVersion string, noDeviceClass bool) *Simulator {
	s := &Simulator{client: client, prof: prof, kubeletVersion: kubeletVersion, noDeviceClass: noDeviceClass,
		nodes: map[string]*node{}, boot: time.Now()}
	idx := 0
	for pi := range prof.Pools {
		pl := &prof.Pools[pi]
		for i := 0; i < pl.Count; i++ {
			n := &node{name: pl.NodeName(i), pool: pl, index: idx, ip: nodeIP(idx)}
			s.nodes[n.name] = n
			s.order = append(s.order, n)
			idx++
		}
	}
	return s
}

// Node IPs are deliberately in 127.0.0.0/8: anything the apiserver might
// dial (logs/exec go to the node address) stays on loopback, where only the
// container-log endpoint answers (ServeContainerLogs). Node i is
// 127.1.<i/250>.<i%250+1>; its pods get addresses from PodCIDR (see
// EnablePodNetwork), else from 127.<16+i>.0.0/16.
func nodeIP(i int) string { return fmt.Sprintf("127.1.%d.%d", i/250, i%250+1) }

func (n *node) allocPodIP() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.nextIP = n.nextIP%65000 + 1
	return fmt.Sprintf("127.%d.%d.%d", 16+n.index%230, n.nextIP/250, n.nextIP%250+1)
}

// NodeNames returns all simulated node names.
func (s *Simulator) NodeNames() []string {
	var out []string
	for _, n := range s.order {
		out = append(out, n.name)
	}
	return out
}

func (s *Simulator) desiredNode(n *node) *corev1.Node {
	labels := map[string]string{}
	for k, v := range n.pool.Labels {
		labels[k] = v
	}
	arch := n.pool.Architecture()
	labels["kubernetes.io/hostname"] = n.name
	labels["kubernetes.io/os"] = "linux"
	labels["kubernetes.io/arch"] = arch
	labels["beta.kubernetes.io/os"] = "linux"
	labels["beta.kubernetes.io/arch"] = arch
	labels[LabelPool] = n.pool.Name
	for k, v := range s.sharingLabels(n) {
		labels[k] = v
	}
	return &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{
			Name:   n.name,
			Labels: labels,
			Annotations: map[string]string{
				AnnotationSimulated:                                      "true",
				"node.alpha.kubernetes.io/ttl":                           "0",
				"volumes.kubernetes.io/controller-managed-attach-detach": "true",
			},
		},
		Spec: corev1.NodeSpec{
			ProviderID: "aiconform-testcluster:///" + n.name,
			Taints:     append([]corev1.Taint(nil), n.pool.Taints...),
		},
	}
}

func (s *Simulator) nodeStatus(n *node, old corev1.NodeStatus) corev1.NodeStatus {
	now := metav1.Now()
	rl := n.pool.ResourceList()
	s.addSharedResources(n, rl)
	kv := n.pool.NodeInfo.KubeletVersion
	if kv == "" {
		kv = s.kubeletVersion
	}
	transition := metav1.NewTime(s.boot)
	cond := func(t corev1.NodeConditionType, st corev1.ConditionStatus, reason, msg string) corev1.NodeCondition {
		return corev1.NodeCondition{Type: t, Status: st, Reason: reason, Message: msg,
			LastHeartbeatTime: now, LastTransitionTime: transition}
	}
	return corev1.NodeStatus{
		Capacity:    rl,
		Allocatable: rl.DeepCopy(),
		Phase:       corev1.NodeRunning,
		Conditions: []corev1.NodeCondition{
			cond(corev1.NodeMemoryPressure, corev1.ConditionFalse, "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
			cond(corev1.NodeDiskPressure, corev1.ConditionFalse, "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
			cond(corev1.NodePIDPressure, corev1.ConditionFalse, "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
			cond(corev1.NodeReady, corev1.ConditionTrue, "KubeletReady", "kubelet is posting ready status (aiconform-testcluster simulator)"),
		},
		Addresses: []corev1.NodeAddress{
			{Type: corev1.NodeInternalIP, Address: n.ip},
			{Type: corev1.NodeHostName, Address: n.name},
		},
		DaemonEndpoints: corev1.NodeDaemonEndpoints{KubeletEndpoint: corev1.DaemonEndpoint{Port: cmp.Or(s.kubeletPort, 10250)}},
		NodeInfo: corev1.NodeSystemInfo{
			MachineID:               podruntime.Hash("machine", n.name)[:32],
			SystemUUID:              podruntime.UUIDFrom("system", n.name),
			BootID:                  podruntime.UUIDFrom("boot", n.name, s.boot.String()),
			KernelVersion:           n.pool.NodeInfo.KernelVersion,
			OSImage:                 n.pool.NodeInfo.OSImage,
			ContainerRuntimeVersion: n.pool.NodeInfo.ContainerRuntimeVersion,
			KubeletVersion:          kv,
			OperatingSystem:         "linux",
			Architecture:            n.pool.Architecture(),
		},
		Images:   old.Images,
		Config:   old.Config,
		Features: old.Features,
	}
}

// RegisterNodes registers all nodes (see registerNode), registerWorkers at
// a time, as kubelets starting together register in parallel.
func (s *Simulator) RegisterNodes(ctx context.Context) error {
	return forEach(ctx, len(s.order), registerWorkers, func(ctx context.Context, i int) error {
		return s.registerNode(ctx, s.order[i])
	})
}

// registerNode registers a node as a kubelet does: the Node is created with
// its Ready status, then the not-ready taint that admission adds on creation
// is removed (there is no node lifecycle controller) with an update of the
// created object, and its Lease is created owned by it. A node that already
// exists is adopted: its status is reported and its taints set.
func (s *Simulator) registerNode(ctx context.Context, n *node) error {
	desired := s.desiredNode(n)
	desired.Status = s.nodeStatus(n, corev1.NodeStatus{})
	nodes := s.client.CoreV1().Nodes()
	cur, err := nodes.Create(ctx, desired, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		if err = s.updateStatus(ctx, n); err == nil {
			cur, err = nodes.Get(ctx, n.name, metav1.GetOptions{})
		}
	}
	if err != nil {
		return fmt.Errorf("creating node %s: %w", n.name, err)
	}
	for attempt := 0; !equality.Semantic.DeepEqual(cur.Spec.Taints, desired.Spec.Taints); attempt++ {
		cur.Spec.Taints = desired.Spec.Taints
		updated, err := nodes.Update(ctx, cur, metav1.UpdateOptions{})
		if err == nil {
			cur = updated
			break
		}
		if !apierrors.IsConflict(err) || attempt == 5 {
			return fmt.Errorf("setting taints of node %s: %w", n.name, err)
		}
		if cur, err = nodes.Get(ctx, n.name, metav1.GetOptions{}); err != nil {
			return fmt.Errorf("setting taints of node %s: %w", n.name, err)
		}
	}
	n.mu.Lock()
	n.uid = cur.UID
	n.lease = nil
	n.mu.Unlock()
	return s.createLease(ctx, n)
}

// ownerNode is the registered Node as owner references of its objects
// (Lease, ResourceSlices) name it: name and UID.
func (n *node) ownerNode() *corev1.Node {
	n.mu.Lock()
	defer n.mu.Unlock()
	return &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: n.name, UID: n.uid}}
}

// createLease creates the node's Lease (renewing it if it exists).
func (s *Simulator) createLease(ctx context.Context, n *node) error {
	now := metav1.NewMicroTime(time.Now())
	owner := n.ownerNode()
	created, err := s.client.CoordinationV1().Leases(corev1.NamespaceNodeLease).Create(ctx, &coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{Name: n.name, Namespace: corev1.NamespaceNodeLease,
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "v1", Kind: "Node", Name: owner.Name, UID: owner.UID}}},
		Spec: coordinationv1.LeaseSpec{HolderIdentity: ptr.To(n.name),
			LeaseDurationSeconds: ptr.To(int32(s.leaseRenewInterval() * 4 / time.Second)), RenewTime: &now},
	}, metav1.CreateOptions{})
	switch {
	case err == nil:
		n.setLease(created)
		return nil
	case apierrors.IsAlreadyExists(err):
		return s.renewLease(ctx, n)
	default:
		return fmt.Errorf("creating the lease of node %s: %w", n.name, err)
	}
}

// updateStatus reports the node's full status (GET + status update).
func (s *Simulator) updateStatus(ctx context.Context, n *node) error {
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		cur, err := s.client.CoreV1().Nodes().Get(ctx, n.name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		cur.Status = s.nodeStatus(n, cur.Status)
		_, err = s.client.CoreV1().Nodes().UpdateStatus(ctx, cur, metav1.UpdateOptions{})
		return err
	})
}

// heartbeatPatch is the strategic merge patch of a node's periodic status
// report: its conditions (merged by type) with fresh heartbeat times.
func (s *Simulator) heartbeatPatch(n *node) ([]byte, error) {
	st := s.nodeStatus(n, corev1.NodeStatus{})
	return json.Marshal(map[string]any{"status": map[string]any{"conditions": st.Conditions}})
}

// reportStatus is the periodic status report: one PATCH of the node's
// conditions, as the kubelet sends, without reading the node first.
func (s *Simulator) reportStatus(ctx context.Context, n *node) error {
	patch, err := s.heartbeatPatch(n)
	if err != nil {
		return err
	}
	_, err = s.client.CoreV1().Nodes().Patch(ctx, n.name, types.StrategicMergePatchType, patch, metav1.PatchOptions{}, "status")
	if apierrors.IsNotFound(err) {
		return nil
	}
	return err
}

// renewLease renews the node's lease like the kubelet's lease controller:
// an update of the last lease it wrote, and a GET only when that fails.
func (s *Simulator) renewLease(ctx context.Context, n *node) error {
	leases := s.client.CoordinationV1().Leases(corev1.NamespaceNodeLease)
	now := metav1.NewMicroTime(time.Now())
	n.mu.Lock()
	last := n.lease
	n.mu.Unlock()
	if last != nil {
		l := last.DeepCopy()
		l.Spec.RenewTime = &now
		if updated, err := leases.Update(ctx, l, metav1.UpdateOptions{}); err == nil {
			n.setLease(updated)
			return nil
		}
		n.setLease(nil)
	}
	l, err := leases.Get(ctx, n.name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		if n.ownerNode().UID == "" {
			return nil // not registered (yet)
		}
		return s.createLease(ctx, n)
	}
	if err != nil {
		return err
	}
	l.Spec.RenewTime = &now
	updated, err := leases.Update(ctx, l, metav1.UpdateOptions{})
	if err == nil {
		n.setLease(updated)
	}
	return err
}

func (n *node) setLease(l *coordinationv1.Lease) {
	n.mu.Lock()
	n.lease = l
	n.mu.Unlock()
}

// leaseRenewInterval is how often every node renews its lease: the
// kubelet's 10 s (a quarter of its 40 s nodeLeaseDurationSeconds), longer
// in large clusters so that all nodes together renew at most
// maxLeaseRenewalsPerSecond times a second, as a provider raises
// nodeLeaseDurationSeconds (leases are created with 4 x this interval).
// Nothing here reads leases (no node lifecycle controller); they stay valid.
func (s *Simulator) leaseRenewInterval() time.Duration {
	return renewInterval(len(s.order))
}

func renewInterval(nodes int) time.Duration {
	d := time.Duration(nodes) * time.Second / maxLeaseRenewalsPerSecond
	return max(d, leaseRenewInterval)
}

// RunHeartbeats renews node leases and reports node status until ctx is
// done: one loop for each, spreading the nodes evenly over its interval
// (see spread), so the API server sees a steady trickle and not a burst of
// thousands of writes per interval.
func (s *Simulator) RunHeartbeats(ctx context.Context) {
	nodes := s.order
	go spread(ctx, s.leaseRenewInterval(), len(nodes), func(i int) {
		if err := s.renewLease(ctx, nodes[i]); err != nil && ctx.Err() == nil {
			klog.ErrorS(err, "renewing node lease", "node", nodes[i].name)
		}
	})
	go spread(ctx, statusInterval, len(nodes), func(i int) {
		if err := s.reportStatus(ctx, nodes[i]); err != nil && ctx.Err() == nil {
			klog.ErrorS(err, "reporting node status", "node", nodes[i].name)
		}
	})
}

// heartbeatTick is the step of spread's schedule.
const heartbeatTick = 100 * time.Millisecond

// spread calls fn(0..n-1) once per interval, forever (until ctx is done):
// at every heartbeatTick the items due by then (see dueBy), one after the
// other. When fn is slower than that, the pass takes longer.
func spread(ctx context.Context, interval time.Duration, n int, fn func(i int)) {
	if n == 0 {
		return
	}
	ticks := max(int(interval/heartbeatTick), 1)
	t := time.NewTicker(heartbeatTick)
	defer t.Stop()
	next := 0
	for tick := 0; ; tick = (tick + 1) % ticks {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		for due := dueBy(tick, ticks, n); next < due && ctx.Err() == nil; next++ {
			fn(next)
		}
		if next >= n {
			next = 0
		}
	}
}

// dueBy is how many of n items a pass of ticks ticks has handled by the end
// of tick (0-based): evenly spread, all of them by the last tick.
func dueBy(tick, ticks, n int) int {
	return (tick + 1) * n / ticks
}

// forEach calls fn for 0..n-1, at most workers at a time, and returns the
// first error (no further calls start after it).
func forEach(ctx context.Context, n, workers int, fn func(ctx context.Context, i int) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		next     atomic.Int64
		wg       sync.WaitGroup
		errOnce  sync.Once
		firstErr error
	)
	for w := 0; w < min(workers, n); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n || ctx.Err() != nil {
					return
				}
				if err := fn(ctx, i); err != nil {
					errOnce.Do(func() { firstErr = err; cancel() })
					return
				}
			}
		}()
	}
	wg.Wait()
	if firstErr == nil {
		return ctx.Err()
	}
	return firstErr
}
