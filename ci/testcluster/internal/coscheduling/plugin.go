// Package coscheduling is a small gang-scheduling plugin for kube-scheduler,
// API-compatible with the coscheduling plugin of kubernetes-sigs/scheduler-plugins:
// pods labelled `scheduling.x-k8s.io/pod-group: <name>` belong to the
// PodGroup `<name>` (scheduling.x-k8s.io/v1alpha1) in their namespace, and
// none of them is bound until spec.minMember of them can be placed at the
// same time.
//
// How it works (same approach as upstream, without its queue-sort and
// PodGroup status controller):
//   - PreFilter rejects a member while its PodGroup does not exist or fewer
//     than minMember member pods exist.
//   - Permit counts the members already assumed/bound in the scheduler's
//     snapshot. While that count plus this pod is below minMember, the pod
//     waits (its resources stay reserved); once it is reached, every waiting
//     member is allowed and all of them get bound.
//   - If a member cannot be placed (PostFilter) or a waiting member times out
//     (Unreserve), every waiting member of its group is rejected, releasing
//     the reservations, so a gang that cannot fully fit stays entirely
//     Pending instead of being partially bound.
package coscheduling

import (
	"context"
	"fmt"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/dynamic/dynamicinformer"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"
	fwk "k8s.io/kube-scheduler/framework"
	"k8s.io/kubernetes/pkg/scheduler/framework"
)

const (
	// Name is the plugin name used in the scheduler configuration.
	Name = "Coscheduling"
	// PodGroupLabel is the pod label naming the pod's PodGroup.
	PodGroupLabel = "scheduling.x-k8s.io/pod-group"
	// DefaultWaitTime is how long members wait at Permit for the rest of
	// the gang when the PodGroup sets no spec.scheduleTimeoutSeconds.
	DefaultWaitTime = 30 * time.Second
)

// PodGroupGVR is the PodGroup resource (same as scheduler-plugins).
var PodGroupGVR = schema.GroupVersionResource{Group: "scheduling.x-k8s.io", Version: "v1alpha1", Resource: "podgroups"}

// Coscheduling implements PreFilter, PostFilter, Permit and Reserve.
type Coscheduling struct {
	handle    framework.Handle
	pgLister  cache.GenericLister
	podLister corelisters.PodLister

	mu     sync.Mutex
	denied map[string]time.Time // "ns/name" -> PodGroup is not tried before this time
}

// DenyWindow is how long a PodGroup that could not be fully placed is not
// retried. Without it the scheduler (which pops pods from the backoff queue
// whenever it is idle) would reserve and release the gang in a tight loop.
const DenyWindow = 3 * time.Second

// prefilterPassed marks in the CycleState that the pod passed this plugin's
// PreFilter, i.e. a later failure is a placement failure of the gang.
const prefilterPassed fwk.StateKey = Name + "/prefilter-passed"

type passed struct{}

func (passed) Clone() fwk.StateData { return passed{} }

var (
	_ framework.PreFilterPlugin   = &Coscheduling{}
	_ framework.PostFilterPlugin  = &Coscheduling{}
	_ framework.PermitPlugin      = &Coscheduling{}
	_ framework.ReservePlugin     = &Coscheduling{}
	_ framework.EnqueueExtensions = &Coscheduling{}
)

// New is the plugin factory (for app.WithPlugin).
func New(ctx context.Context, _ runtime.Object, h framework.Handle) (framework.Plugin, error) {
	dyn, err := dynamic.NewForConfig(h.KubeConfig())
	if err != nil {
		return nil, err
	}
	f := dynamicinformer.NewDynamicSharedInformerFactory(dyn, 0)
	pgInformer := f.ForResource(PodGroupGVR)
	podInformer := h.SharedInformerFactory().Core().V1().Pods()
	// The scheduler's pod informer has no namespace index; add one so that
	// the per-namespace listing below is indexed (and does not log a warning
	// for every lookup). Fails harmlessly if the informer already runs.
	if err := podInformer.Informer().AddIndexers(cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc}); err != nil {
		klog.V(2).InfoS("coscheduling: could not add namespace index to pod informer", "err", err)
	}
	podLister := podInformer.Lister()
	f.Start(ctx.Done())
	syncCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if !cache.WaitForCacheSync(syncCtx.Done(), pgInformer.Informer().HasSynced) {
		return nil, fmt.Errorf("coscheduling: PodGroup informer did not sync (is the %s CRD installed?)", PodGroupGVR.GroupResource())
	}
	return &Coscheduling{handle: h, pgLister: pgInformer.Lister(), podLister: podLister, denied: map[string]time.Time{}}, nil
}

func (c *Coscheduling) Name() string { return Name }

// podGroupEventResource makes the scheduler watch PodGroups (via its dynamic
// informer factory), so members rejected because their PodGroup did not
// exist yet are retried as soon as it is created.
const podGroupEventResource = fwk.EventResource("podgroups.v1alpha1.scheduling.x-k8s.io")

// EventsToRegister lists the cluster events that may make a rejected member
// schedulable: a pod added (e.g. a sibling) or removed (resources freed) or
// relabelled, node changes, and PodGroup creation/changes. Plain pod status
// updates (e.g. the scheduler's own PodScheduled=False conditions) are not
// included, which keeps an unschedulable gang from being retried in a tight loop.
func (c *Coscheduling) EventsToRegister(context.Context) ([]fwk.ClusterEventWithHint, error) {
	return []fwk.ClusterEventWithHint{
		{Event: fwk.ClusterEvent{Resource: fwk.Pod, ActionType: fwk.Add | fwk.Delete | fwk.UpdatePodLabel}},
		{Event: fwk.ClusterEvent{Resource: fwk.Node, ActionType: fwk.Add | fwk.UpdateNodeAllocatable | fwk.UpdateNodeTaint | fwk.UpdateNodeLabel}},
		{Event: fwk.ClusterEvent{Resource: podGroupEventResource, ActionType: fwk.Add | fwk.Update}},
	}, nil
}

type podGroup struct {
	namespace, name string
	minMember       int
	timeout         time.Duration
}

func groupName(pod *corev1.Pod) string { return pod.Labels[PodGroupLabel] }

func (c *Coscheduling) getPodGroup(pod *corev1.Pod) (*podGroup, error) {
	name := groupName(pod)
	obj, err := c.pgLister.ByNamespace(pod.Namespace).Get(name)
	if err != nil {
		return nil, err
	}
	u, ok := obj.(*unstructured.Unstructured)
	if !ok {
		return nil, fmt.Errorf("unexpected PodGroup object %T", obj)
	}
	pg := &podGroup{namespace: pod.Namespace, name: name, minMember: 1, timeout: DefaultWaitTime}
	if v, found, _ := unstructured.NestedInt64(u.Object, "spec", "minMember"); found && v > 0 {
		pg.minMember = int(v)
	}
	if v, found, _ := unstructured.NestedInt64(u.Object, "spec", "scheduleTimeoutSeconds"); found && v > 0 {
		pg.timeout = time.Duration(v) * time.Second
	}
	return pg, nil
}

func sameGroup(a *corev1.Pod, namespace, name string) bool {
	return a.Namespace == namespace && groupName(a) == name
}

// PreFilter rejects members of missing or (still) too small groups.
func (c *Coscheduling) PreFilter(ctx context.Context, state fwk.CycleState, pod *corev1.Pod, _ []fwk.NodeInfo) (*framework.PreFilterResult, *fwk.Status) {
	if groupName(pod) == "" {
		return nil, fwk.NewStatus(fwk.Skip)
	}
	c.mu.Lock()
	until, isDenied := c.denied[pod.Namespace+"/"+groupName(pod)]
	c.mu.Unlock()
	if isDenied && time.Now().Before(until) {
		return nil, fwk.NewStatus(fwk.UnschedulableAndUnresolvable,
			fmt.Sprintf("PodGroup %s/%s could not be fully placed; retrying in %s", pod.Namespace, groupName(pod), time.Until(until).Round(100*time.Millisecond)))
	}
	pg, err := c.getPodGroup(pod)
	if apierrors.IsNotFound(err) {
		return nil, fwk.NewStatus(fwk.UnschedulableAndUnresolvable,
			fmt.Sprintf("PodGroup %s/%s not found", pod.Namespace, groupName(pod)))
	}
	if err != nil {
		return nil, fwk.AsStatus(err)
	}
	pods, err := c.podLister.Pods(pod.Namespace).List(labels.SelectorFromSet(labels.Set{PodGroupLabel: pg.name}))
	if err != nil {
		return nil, fwk.AsStatus(err)
	}
	total := 0
	for _, p := range pods {
		if p.DeletionTimestamp == nil && p.Status.Phase != corev1.PodSucceeded && p.Status.Phase != corev1.PodFailed {
			total++
		}
	}
	if total < pg.minMember {
		return nil, fwk.NewStatus(fwk.UnschedulableAndUnresolvable,
			fmt.Sprintf("PodGroup %s/%s has %d of minMember %d pods", pg.namespace, pg.name, total, pg.minMember))
	}
	state.Write(prefilterPassed, passed{})
	return nil, nil
}

func (c *Coscheduling) PreFilterExtensions() framework.PreFilterExtensions { return nil }

// assigned counts group members that are assumed (waiting at Permit or
// binding) or bound, according to the scheduling cycle's snapshot.
func (c *Coscheduling) assigned(pg *podGroup, exclude *corev1.Pod) int {
	infos, err := c.handle.SnapshotSharedLister().NodeInfos().List()
	if err != nil {
		return 0
	}
	n := 0
	for _, ni := range infos {
		for _, pi := range ni.GetPods() {
			p := pi.GetPod()
			if p.UID == exclude.UID || !sameGroup(p, pg.namespace, pg.name) || p.DeletionTimestamp != nil {
				continue
			}
			if p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
				continue
			}
			n++
		}
	}
	return n
}

func (c *Coscheduling) rejectWaiting(namespace, name, msg string) {
	c.handle.IterateOverWaitingPods(func(wp framework.WaitingPod) {
		if sameGroup(wp.GetPod(), namespace, name) {
			klog.V(3).InfoS("coscheduling: rejecting waiting pod", "pod", klog.KObj(wp.GetPod()), "reason", msg)
			wp.Reject(Name, msg)
		}
	})
}

// deny stops PreFilter from admitting the group for DenyWindow and then
// moves its pending members back to the active queue, so the gang is retried
// about every DenyWindow while it cannot fit (and at once on relevant
// cluster events after that).
func (c *Coscheduling) deny(namespace, name string) {
	key := namespace + "/" + name
	c.mu.Lock()
	if until, ok := c.denied[key]; ok && time.Now().Before(until) {
		c.mu.Unlock()
		return
	}
	c.denied[key] = time.Now().Add(DenyWindow)
	c.mu.Unlock()
	time.AfterFunc(DenyWindow+50*time.Millisecond, func() {
		c.mu.Lock()
		delete(c.denied, key)
		c.mu.Unlock()
		pods, err := c.podLister.Pods(namespace).List(labels.SelectorFromSet(labels.Set{PodGroupLabel: name}))
		if err != nil {
			return
		}
		pending := map[string]*corev1.Pod{}
		for _, p := range pods {
			if p.Spec.NodeName == "" && p.DeletionTimestamp == nil {
				pending[p.Namespace+"/"+p.Name] = p
			}
		}
		if len(pending) > 0 {
			c.handle.Activate(klog.Background(), pending)
		}
	})
}

// PostFilter: a member could not be placed. Unless the gang is already
// complete, release every reservation of the group.
func (c *Coscheduling) PostFilter(ctx context.Context, state fwk.CycleState, pod *corev1.Pod, _ framework.NodeToStatusReader) (*framework.PostFilterResult, *fwk.Status) {
	if groupName(pod) == "" {
		return nil, fwk.NewStatus(fwk.Unschedulable)
	}
	if _, err := state.Read(prefilterPassed); err != nil {
		// Rejected before placement was tried (e.g. by our own PreFilter).
		return nil, fwk.NewStatus(fwk.Unschedulable)
	}
	pg, err := c.getPodGroup(pod)
	if err != nil {
		return nil, fwk.NewStatus(fwk.Unschedulable, err.Error())
	}
	if c.assigned(pg, pod) >= pg.minMember {
		return nil, fwk.NewStatus(fwk.Unschedulable)
	}
	msg := fmt.Sprintf("PodGroup %s/%s cannot be fully placed (member %s does not fit); rejecting its waiting pods", pg.namespace, pg.name, pod.Name)
	c.deny(pg.namespace, pg.name)
	c.rejectWaiting(pg.namespace, pg.name, msg)
	return nil, fwk.NewStatus(fwk.Unschedulable, msg)
}

// Reserve is a no-op; Unreserve releases the rest of the gang.
func (c *Coscheduling) Reserve(context.Context, fwk.CycleState, *corev1.Pod, string) *fwk.Status {
	return nil
}

func (c *Coscheduling) Unreserve(_ context.Context, _ fwk.CycleState, pod *corev1.Pod, _ string) {
	if groupName(pod) == "" {
		return
	}
	pg, err := c.getPodGroup(pod)
	if err != nil {
		return
	}
	c.deny(pg.namespace, pg.name)
	c.rejectWaiting(pg.namespace, pg.name, fmt.Sprintf("member %s of PodGroup %s/%s was unreserved", pod.Name, pg.namespace, pg.name))
}

// Permit holds members until minMember of them are placed.
func (c *Coscheduling) Permit(ctx context.Context, _ fwk.CycleState, pod *corev1.Pod, nodeName string) (*fwk.Status, time.Duration) {
	if groupName(pod) == "" {
		return nil, 0
	}
	pg, err := c.getPodGroup(pod)
	if err != nil {
		return fwk.NewStatus(fwk.Unschedulable, err.Error()), 0
	}
	have := c.assigned(pg, pod) + 1
	if have < pg.minMember {
		klog.V(3).InfoS("coscheduling: waiting for gang", "pod", klog.KObj(pod), "podGroup", pg.name, "have", have, "minMember", pg.minMember)
		return fwk.NewStatus(fwk.Wait, fmt.Sprintf("waiting for %d/%d members of PodGroup %s", have, pg.minMember, pg.name)), pg.timeout
	}
	c.handle.IterateOverWaitingPods(func(wp framework.WaitingPod) {
		if sameGroup(wp.GetPod(), pg.namespace, pg.name) {
			wp.Allow(Name)
		}
	})
	return nil, 0
}
