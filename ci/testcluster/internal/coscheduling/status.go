package coscheduling

import (
	"context"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/dynamic/dynamicinformer"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"
)

// PodGroup phases (as in scheduler-plugins v1alpha1).
const (
	PhasePending    = "Pending"
	PhaseScheduling = "Scheduling"
	PhaseScheduled  = "Scheduled"
	PhaseRunning    = "Running"
	PhaseFinished   = "Finished"
	PhaseFailed     = "Failed"
)

// GroupStatus is the derived status of a PodGroup.
type GroupStatus struct {
	Phase                                 string
	Scheduled, Running, Succeeded, Failed int64
}

// ComputeStatus derives PodGroup status from its member pods, following the
// scheduler-plugins PodGroup controller.
func ComputeStatus(minMember int64, pods []*corev1.Pod) GroupStatus {
	var st GroupStatus
	for _, p := range pods {
		if p.Spec.NodeName != "" {
			st.Scheduled++
		}
		switch p.Status.Phase {
		case corev1.PodRunning:
			st.Running++
		case corev1.PodSucceeded:
			st.Succeeded++
		case corev1.PodFailed:
			st.Failed++
		}
	}
	switch {
	case st.Failed > 0:
		st.Phase = PhaseFailed
	case minMember > 0 && st.Succeeded >= minMember:
		st.Phase = PhaseFinished
	case minMember > 0 && st.Running+st.Succeeded >= minMember:
		st.Phase = PhaseRunning
	case minMember > 0 && st.Scheduled >= minMember:
		st.Phase = PhaseScheduled
	case st.Scheduled > 0:
		st.Phase = PhaseScheduling
	default:
		st.Phase = PhasePending
	}
	return st
}

// RunStatusController keeps PodGroup .status (phase, scheduled, running,
// succeeded, failed) up to date until ctx is done.
func RunStatusController(ctx context.Context, client kubernetes.Interface, dyn dynamic.Interface) error {
	podFactory := informers.NewSharedInformerFactoryWithOptions(client, 0,
		informers.WithTweakListOptions(func(o *metav1.ListOptions) { o.LabelSelector = PodGroupLabel }))
	podLister := podFactory.Core().V1().Pods().Lister()
	podInformer := podFactory.Core().V1().Pods().Informer()
	pgFactory := dynamicinformer.NewDynamicSharedInformerFactory(dyn, 0)
	pgInformer := pgFactory.ForResource(PodGroupGVR)
	podFactory.Start(ctx.Done())
	pgFactory.Start(ctx.Done())
	if !cache.WaitForCacheSync(ctx.Done(), podInformer.HasSynced, pgInformer.Informer().HasSynced) {
		return ctx.Err()
	}
	go wait.UntilWithContext(ctx, func(ctx context.Context) {
		objs, err := pgInformer.Lister().List(labels.Everything())
		if err != nil {
			return
		}
		for _, o := range objs {
			u, ok := o.(*unstructured.Unstructured)
			if !ok {
				continue
			}
			minMember, _, _ := unstructured.NestedInt64(u.Object, "spec", "minMember")
			pods, err := podLister.Pods(u.GetNamespace()).List(labels.SelectorFromSet(labels.Set{PodGroupLabel: u.GetName()}))
			if err != nil {
				continue
			}
			st := ComputeStatus(minMember, pods)
			cur, _, _ := unstructured.NestedMap(u.Object, "status")
			want := map[string]interface{}{
				"phase": st.Phase, "scheduled": st.Scheduled, "running": st.Running,
				"succeeded": st.Succeeded, "failed": st.Failed,
			}
			if v, ok := cur["scheduleStartTime"]; ok {
				want["scheduleStartTime"] = v
			} else if st.Phase != PhasePending {
				want["scheduleStartTime"] = time.Now().UTC().Format(time.RFC3339)
			}
			if v, ok := cur["occupiedBy"]; ok {
				want["occupiedBy"] = v
			}
			if statusEqual(cur, want) {
				continue
			}
			upd := u.DeepCopy()
			if err := unstructured.SetNestedMap(upd.Object, want, "status"); err != nil {
				continue
			}
			if _, err := dyn.Resource(PodGroupGVR).Namespace(u.GetNamespace()).UpdateStatus(ctx, upd, metav1.UpdateOptions{}); err != nil && ctx.Err() == nil {
				klog.V(2).InfoS("updating PodGroup status", "podGroup", klog.KObj(u), "err", err)
			}
		}
	}, time.Second)
	return nil
}

func statusEqual(cur, want map[string]interface{}) bool {
	if len(cur) != len(want) {
		return false
	}
	for k, v := range want {
		c, ok := cur[k]
		if !ok {
			return false
		}
		switch x := v.(type) {
		case int64:
			ci, ok := c.(int64)
			if !ok || ci != x {
				return false
			}
		default:
			if c != v {
				return false
			}
		}
	}
	return true
}
