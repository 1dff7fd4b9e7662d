// Package autoscaler is a node-pool autoscaler stand-in for simulated GPU
// nodes, after cluster-autoscaler: it adds a node to its pool while a pending
// pod that requests nvidia.com/gpu is unschedulable and would fit a new pool
// node, and removes pool nodes (above the minimum) that have been idle for a
// cooldown. Fault: NoScaleDown never removes nodes.
package autoscaler

import (
	"context"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/klog/v2"
)

// GPU is the extended resource the autoscaler scales for.
const GPU = corev1.ResourceName("nvidia.com/gpu")

// Nodes brings reserved pool nodes up and down (the simulator's slots).
type Nodes interface {
	StartNode(ctx context.Context, name string) error
	StopNode(ctx context.Context, name string) error
}

// Options configure the pool.
type Options struct {
	// Slots are the pool's node names in scale-up order; len(Slots) is the maximum.
	Slots []string
	Min   int
	// Template is what a new pool node looks like (labels, taints, allocatable).
	Template *corev1.Node
	// ScaleDownAfter is how long a node stays idle before it is removed.
	ScaleDownAfter time.Duration
	// NoScaleDown never removes nodes (fault).
	NoScaleDown bool
	// Interval between scans.
	Interval time.Duration
	// Informers, when set, is the informer factory the cluster's in-process
	// components share (nil: an own one).
	Informers informers.SharedInformerFactory
}

// Run starts the pool's minimum nodes and then scales until ctx is done.
func Run(ctx context.Context, client kubernetes.Interface, nodes Nodes, o Options) error {
	for _, name := range o.Slots[:o.Min] {
		if err := nodes.StartNode(ctx, name); err != nil {
			return err
		}
	}
	f := o.Informers
	if f == nil {
		f = informers.NewSharedInformerFactory(client, 0)
	}
	pods := f.Core().V1().Pods().Lister()
	nodeLister := f.Core().V1().Nodes().Lister()
	f.Start(ctx.Done())
	f.WaitForCacheSync(ctx.Done())
	if o.Interval == 0 {
		o.Interval = time.Second
	}
	a := &scaler{o: o, idleSince: map[string]time.Time{}}
	go wait.UntilWithContext(ctx, func(ctx context.Context) {
		allPods, err := pods.List(labels.Everything())
		if err != nil {
			return
		}
		allNodes, err := nodeLister.List(labels.Everything())
		if err != nil {
			return
		}
		up, down := a.step(time.Now(), allPods, allNodes)
		if up != "" {
			klog.InfoS("gpu pool autoscaler: scaling up", "node", up)
			if err := nodes.StartNode(ctx, up); err != nil {
				klog.ErrorS(err, "gpu pool autoscaler: starting node", "node", up)
			}
		}
		for _, n := range down {
			klog.InfoS("gpu pool autoscaler: scaling down idle node", "node", n)
			if err := nodes.StopNode(ctx, n); err != nil {
				klog.ErrorS(err, "gpu pool autoscaler: stopping node", "node", n)
			}
		}
	}, o.Interval)
	return nil
}

type scaler struct {
	o         Options
	idleSince map[string]time.Time
	// lastUp is when the last node was added; a new scale-up waits until the
	// scheduler had a chance to use it.
	lastUp time.Time
}

// step decides one scan: a slot to start (or "") and nodes to stop.
func (a *scaler) step(now time.Time, pods []*corev1.Pod, nodes []*corev1.Node) (string, []string) {
	slots := map[string]int{}
	for i, s := range a.o.Slots {
		slots[s] = i
	}
	active := map[string]bool{}
	for _, n := range nodes {
		if _, ok := slots[n.Name]; ok {
			active[n.Name] = true
		}
	}
	busy := map[string]bool{}
	pending := false
	for _, p := range pods {
		if p.Spec.NodeName != "" {
			if p.Status.Phase != corev1.PodSucceeded && p.Status.Phase != corev1.PodFailed && !daemonPod(p) {
				busy[p.Spec.NodeName] = true
			}
			continue
		}
		if Unschedulable(p) && Fits(p, a.o.Template) {
			pending = true
		}
	}
	up := ""
	if pending && now.Sub(a.lastUp) > 5*time.Second {
		for _, s := range a.o.Slots {
			if !active[s] {
				up = s
				a.lastUp = now
				break
			}
		}
	}
	var down []string
	count := len(active)
	for i := len(a.o.Slots) - 1; i >= 0; i-- {
		s := a.o.Slots[i]
		if !active[s] || busy[s] {
			delete(a.idleSince, s)
			continue
		}
		since, ok := a.idleSince[s]
		if !ok {
			a.idleSince[s] = now
			continue
		}
		if !a.o.NoScaleDown && count > a.o.Min && now.Sub(since) >= a.o.ScaleDownAfter && up == "" {
			down = append(down, s)
			delete(a.idleSince, s)
			count--
		}
	}
	return up, down
}

func daemonPod(p *corev1.Pod) bool {
	for _, r := range p.OwnerReferences {
		if r.Kind == "DaemonSet" {
			return true
		}
	}
	return false
}

// Unschedulable reports a pod the scheduler could not place.
func Unschedulable(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse && c.Reason == corev1.PodReasonUnschedulable {
			return true
		}
	}
	return false
}

// Fits reports whether a pod that requests GPUs could run on an empty node
// like template: its requests fit the allocatable resources, it tolerates
// the NoSchedule/NoExecute taints, and its nodeSelector matches the labels.
func Fits(p *corev1.Pod, template *corev1.Node) bool {
	req := corev1.ResourceList{}
	for _, c := range p.Spec.Containers {
		for k, v := range c.Resources.Requests {
			q := req[k]
			q.Add(v)
			req[k] = q
		}
		for k, v := range c.Resources.Limits {
			if _, ok := c.Resources.Requests[k]; !ok {
				q := req[k]
				q.Add(v)
				req[k] = q
			}
		}
	}
	if g, ok := req[GPU]; !ok || g.IsZero() {
		return false
	}
	for k, v := range req {
		a, ok := template.Status.Allocatable[k]
		if !ok || v.Cmp(a) > 0 {
			return false
		}
	}
	for k, v := range p.Spec.NodeSelector {
		if template.Labels[k] != v {
			return false
		}
	}
	for _, t := range template.Spec.Taints {
		if t.Effect == corev1.TaintEffectPreferNoSchedule {
			continue
		}
		tolerated := false
		for _, tol := range p.Spec.Tolerations {
			if tol.ToleratesTaint(&t) {
				tolerated = true
				break
			}
		}
		if !tolerated {
			return false
		}
	}
	return true
}
