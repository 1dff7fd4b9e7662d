package cluster

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/retry"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/klog/v2"
)

// conditionTaints are the NoSchedule taints kube-controller-manager's node
// lifecycle controller keeps in step with node conditions (TaintNodesByCondition):
// condition type → status → taint key.
var conditionTaints = map[corev1.NodeConditionType]map[corev1.ConditionStatus]string{
	corev1.NodeReady: {
		corev1.ConditionFalse:   corev1.TaintNodeNotReady,
		corev1.ConditionUnknown: corev1.TaintNodeUnreachable,
	},
	corev1.NodeMemoryPressure:     {corev1.ConditionTrue: corev1.TaintNodeMemoryPressure},
	corev1.NodeDiskPressure:       {corev1.ConditionTrue: corev1.TaintNodeDiskPressure},
	corev1.NodeNetworkUnavailable: {corev1.ConditionTrue: corev1.TaintNodeNetworkUnavailable},
	corev1.NodePIDPressure:        {corev1.ConditionTrue: corev1.TaintNodePIDPressure},
}

// isConditionTaint reports whether t is one of conditionTaints' NoSchedule taints.
func isConditionTaint(t corev1.Taint) bool {
	if t.Effect != corev1.TaintEffectNoSchedule {
		return false
	}
	for _, byStatus := range conditionTaints {
		for _, key := range byStatus {
			if t.Key == key {
				return true
			}
		}
	}
	return false
}

// syncedTaints returns the node's taints with the condition taints made to
// match its conditions (other taints kept in order), and whether that
// changes anything. A node that reports no conditions yet keeps its taints
// (admission gave it not-ready), as the lifecycle controller leaves it.
func syncedTaints(n *corev1.Node) ([]corev1.Taint, bool) {
	if len(n.Status.Conditions) == 0 {
		return n.Spec.Taints, false
	}
	want := map[string]bool{}
	for _, c := range n.Status.Conditions {
		if key, ok := conditionTaints[c.Type][c.Status]; ok {
			want[key] = true
		}
	}
	var out []corev1.Taint
	have := map[string]bool{}
	changed := false
	for _, t := range n.Spec.Taints {
		if isConditionTaint(t) {
			if !want[t.Key] {
				changed = true
				continue
			}
			have[t.Key] = true
		}
		out = append(out, t)
	}
	for _, byStatus := range []corev1.NodeConditionType{corev1.NodeReady, corev1.NodeMemoryPressure,
		corev1.NodeDiskPressure, corev1.NodeNetworkUnavailable, corev1.NodePIDPressure} {
		for _, key := range conditionTaints[byStatus] {
			if want[key] && !have[key] {
				now := metav1.Now()
				out = append(out, corev1.Taint{Key: key, Effect: corev1.TaintEffectNoSchedule, TimeAdded: &now})
				have[key] = true
				changed = true
			}
		}
	}
	return out, changed
}

// runNodeConditionTaints keeps every node's condition taints (not-ready,
// unreachable, pressure, network-unavailable; NoSchedule) in step with its
// conditions, as the node lifecycle controller does, which this cluster does
// not run (its other duties, NoExecute eviction and CIDR allocation, do not
// apply here). Nodes of other controllers (KWOK's, made Ready after creation)
// thus lose the not-ready taint admission gave them, as on a real cluster.
func runNodeConditionTaints(ctx context.Context, client kubernetes.Interface, factory informers.SharedInformerFactory) error {
	nodes := factory.Core().V1().Nodes()
	queue := workqueue.NewTypedRateLimitingQueueWithConfig(
		workqueue.DefaultTypedControllerRateLimiter[string](),
		workqueue.TypedRateLimitingQueueConfig[string]{Name: "node-condition-taints"})
	enqueue := func(obj interface{}) {
		if n, ok := obj.(*corev1.Node); ok {
			if _, changed := syncedTaints(n); changed {
				queue.Add(n.Name)
			}
		}
	}
	if _, err := nodes.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    enqueue,
		UpdateFunc: func(_, obj interface{}) { enqueue(obj) },
	}); err != nil {
		return err
	}
	factory.Start(ctx.Done())
	for typ, ok := range factory.WaitForCacheSync(ctx.Done()) {
		if !ok {
			return fmt.Errorf("node informer %v did not sync", typ)
		}
	}
	go func() {
		<-ctx.Done()
		queue.ShutDown()
	}()
	go wait.UntilWithContext(ctx, func(ctx context.Context) {
		for {
			name, quit := queue.Get()
			if quit {
				return
			}
			err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
				cur, err := client.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
				if err != nil {
					return err
				}
				taints, changed := syncedTaints(cur)
				if !changed {
					return nil
				}
				cur.Spec.Taints = taints
				_, err = client.CoreV1().Nodes().Update(ctx, cur, metav1.UpdateOptions{})
				return err
			})
			switch {
			case err == nil || apierrors.IsNotFound(err):
				queue.Forget(name)
			case ctx.Err() == nil:
				klog.V(2).InfoS("node condition taints: update failed, retrying", "node", name, "err", err)
				queue.AddRateLimited(name)
			}
			queue.Done(name)
		}
	}, time.Second)
	return nil
}
