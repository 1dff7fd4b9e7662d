package sim

import (
	"context"
	"fmt"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/informers"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/klog/v2"
	"k8s.io/utils/ptr"

	"aiconform.dev/testcluster/internal/podruntime"
)

// RunPods starts the pod lifecycle loop. It returns once the informer has
// synced; work continues until ctx is done.
func (s *Simulator) RunPods(ctx context.Context, workers int) error {
	s.runCtx = ctx
	factory := s.informers
	if factory == nil {
		factory = informers.NewSharedInformerFactory(s.client, 0)
	}
	podInf := factory.Core().V1().Pods()
	queue := workqueue.NewTypedRateLimitingQueueWithConfig(
		workqueue.DefaultTypedControllerRateLimiter[string](),
		workqueue.TypedRateLimitingQueueConfig[string]{Name: "sim-pods"})
	enqueue := func(obj interface{}) {
		pod, ok := obj.(*corev1.Pod)
		if !ok {
			if tomb, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				pod, _ = tomb.Obj.(*corev1.Pod)
			}
		}
		if pod == nil || s.nodes[pod.Spec.NodeName] == nil {
			return
		}
		key, err := cache.MetaNamespaceKeyFunc(pod)
		if err == nil {
			queue.Add(key)
		}
	}
	_, err := podInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    enqueue,
		UpdateFunc: func(_, obj interface{}) { enqueue(obj) },
		DeleteFunc: enqueue,
	})
	if err != nil {
		return err
	}
	lister := podInf.Lister()
	if s.rt != nil {
		s.rt.Watch(factory, func(key string) { queue.Add(key) })
	}
	factory.Start(ctx.Done())
	for typ, ok := range factory.WaitForCacheSync(ctx.Done()) {
		if !ok {
			return fmt.Errorf("pod informer %v did not sync", typ)
		}
	}
	go func() {
		<-ctx.Done()
		queue.ShutDown()
	}()
	for i := 0; i < workers; i++ {
		go wait.UntilWithContext(ctx, func(ctx context.Context) {
			for {
				key, quit := queue.Get()
				if quit {
					return
				}
				requeue, err := s.syncPod(ctx, lister, key)
				switch {
				case err != nil:
					if ctx.Err() == nil && !apierrors.IsNotFound(err) {
						klog.V(2).InfoS("sim: pod sync failed, retrying", "pod", key, "err", err)
						queue.AddRateLimited(key)
					}
				case requeue > 0:
					queue.Forget(key)
					queue.AddAfter(key, requeue)
				default:
					queue.Forget(key)
				}
				queue.Done(key)
			}
		}, time.Second)
	}
	return nil
}

func (s *Simulator) syncPod(ctx context.Context, lister corelisters.PodLister, key string) (time.Duration, error) {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return 0, nil
	}
	pod, err := lister.Pods(ns).Get(name)
	if apierrors.IsNotFound(err) {
		if s.rt != nil {
			s.rt.Stop(key, 0)
		}
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	n := s.nodes[pod.Spec.NodeName]
	if n == nil {
		return 0, nil
	}
	pods := s.client.CoreV1().Pods(ns)

	// Deletions: processes of the runtime get SIGTERM now and SIGKILL after
	// the grace period; as a kubelet does, the pod object is removed once
	// they are gone (at once for simulated containers).
	if pod.DeletionTimestamp != nil {
		grace := ptr.Deref(pod.DeletionGracePeriodSeconds, 30)
		var stopped <-chan struct{}
		first := false
		if s.rt != nil {
			stopped, first = s.rt.Stop(key, time.Duration(grace)*time.Second)
		}
		if grace == 0 {
			// The API server removes an object marked with grace 0 itself
			// (terminal pods, forced deletions) once no finalizer holds it.
			return 0, nil
		}
		remove := func() error {
			err := pods.Delete(ctx, name, metav1.DeleteOptions{
				GracePeriodSeconds: ptr.To[int64](0),
				Preconditions:      &metav1.Preconditions{UID: &pod.UID},
			})
			if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
				return nil
			}
			return err
		}
		if stopped != nil {
			if first {
				go func() {
					select {
					case <-stopped:
					case <-ctx.Done():
						return
					}
					if err := remove(); err != nil {
						klog.InfoS("sim: removing a stopped pod", "pod", key, "err", err)
					}
				}()
			}
			return 0, nil
		}
		return 0, remove()
	}
	if pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
		return 0, nil
	}

	now := time.Now()
	if s.rt.Manages(pod) {
		return s.syncRuntimePod(ctx, pod, n, now)
	}
	// Terminate pods that carry an exit code once they ran long enough.
	if codeStr, ok := pod.Annotations[AnnotationExitCode]; ok && pod.Status.Phase == corev1.PodRunning && pod.Status.StartTime != nil {
		runFor := defaultRunDuration
		if d, err := time.ParseDuration(pod.Annotations[AnnotationRunDuration]); err == nil && d >= 0 {
			runFor = d
		}
		left := pod.Status.StartTime.Add(runFor).Sub(now)
		if left > 0 {
			return left + 50*time.Millisecond, nil
		}
		code, err := strconv.Atoi(codeStr)
		if err != nil {
			code = 1
		}
		st := terminatedStatus(pod, int32(code), now)
		_, err = pods.UpdateStatus(ctx, withStatus(pod, st), metav1.UpdateOptions{})
		return 0, err
	}

	desired := s.runningStatus(n, pod, now)
	if statusEqual(&pod.Status, desired) {
		if _, ok := pod.Annotations[AnnotationExitCode]; ok {
			return time.Second, nil
		}
		return 0, nil
	}
	_, err = pods.UpdateStatus(ctx, withStatus(pod, desired), metav1.UpdateOptions{})
	if err != nil {
		return 0, err
	}
	if _, ok := pod.Annotations[AnnotationExitCode]; ok {
		return 50 * time.Millisecond, nil
	}
	return 0, nil
}

func withStatus(pod *corev1.Pod, st *corev1.PodStatus) *corev1.Pod {
	p := pod.DeepCopy()
	p.Status = *st
	return p
}

func fakeID(kind, podUID types.UID, name string) string {
	return podruntime.Hash(string(kind), string(podUID), name)
}

// runningStatus computes the status of a started pod (Ready unless the
// ready annotation says "false").
func (s *Simulator) runningStatus(n *node, pod *corev1.Pod, now time.Time) *corev1.PodStatus {
	st := pod.Status.DeepCopy()
	mnow := metav1.NewTime(now)
	ready := pod.Annotations[AnnotationReady] != "false"
	st.Phase = corev1.PodRunning
	st.HostIP = n.ip
	st.HostIPs = []corev1.HostIP{{IP: n.ip}}
	if st.PodIP == "" {
		ip := s.allocPodIP(n)
		if pod.Spec.HostNetwork {
			ip = n.ip
		}
		st.PodIP = ip
		st.PodIPs = []corev1.PodIP{{IP: ip}}
	}
	if st.StartTime == nil {
		st.StartTime = &mnow
	}
	started := st.StartTime
	cs := corev1.ConditionTrue
	rs := corev1.ConditionTrue
	if !ready {
		rs = corev1.ConditionFalse
	}
	podruntime.SetCondition(st, corev1.PodReadyToStartContainers, cs, "", mnow)
	podruntime.SetCondition(st, corev1.PodInitialized, cs, "", mnow)
	podruntime.SetCondition(st, corev1.ContainersReady, rs, map[bool]string{true: "", false: "ContainersNotReady"}[ready], mnow)
	podruntime.SetCondition(st, corev1.PodReady, rs, map[bool]string{true: "", false: "ContainersNotReady"}[ready], mnow)
	podruntime.SetCondition(st, corev1.PodScheduled, cs, "", mnow)

	var init []corev1.ContainerStatus
	for _, c := range pod.Spec.InitContainers {
		cst := corev1.ContainerStatus{
			Name: c.Name, Image: c.Image, ImageID: podruntime.ImageID(c.Image),
			ContainerID: "containerd://" + fakeID("init", pod.UID, c.Name)[:64],
		}
		if c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways {
			cst.Ready, cst.Started = ready, ptr.To(true)
			cst.State.Running = &corev1.ContainerStateRunning{StartedAt: *started}
		} else {
			cst.Ready, cst.Started = true, ptr.To(false)
			cst.State.Terminated = &corev1.ContainerStateTerminated{ExitCode: 0, Reason: "Completed",
				StartedAt: *started, FinishedAt: *started, ContainerID: cst.ContainerID}
		}
		init = append(init, keepOld(pod.Status.InitContainerStatuses, cst))
	}
	st.InitContainerStatuses = init
	var ctrs []corev1.ContainerStatus
	for _, c := range pod.Spec.Containers {
		cst := corev1.ContainerStatus{
			Name: c.Name, Image: c.Image, ImageID: podruntime.ImageID(c.Image),
			ContainerID: "containerd://" + fakeID("ctr", pod.UID, c.Name)[:64],
			Ready:       ready, Started: ptr.To(true),
			State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: *started}},
		}
		ctrs = append(ctrs, keepOld(pod.Status.ContainerStatuses, cst))
	}
	st.ContainerStatuses = ctrs
	return st
}

// keepOld preserves the previous status of a container where it already
// matches, to avoid needless status churn.
func keepOld(old []corev1.ContainerStatus, cst corev1.ContainerStatus) corev1.ContainerStatus {
	for _, o := range old {
		if o.Name == cst.Name && o.State.Running != nil && cst.State.Running != nil {
			cst.State.Running.StartedAt = o.State.Running.StartedAt
		}
	}
	return cst
}

func terminatedStatus(pod *corev1.Pod, code int32, now time.Time) *corev1.PodStatus {
	st := pod.Status.DeepCopy()
	mnow := metav1.NewTime(now)
	reason := "Completed"
	st.Phase = corev1.PodSucceeded
	if code != 0 {
		reason = "Error"
		st.Phase = corev1.PodFailed
	}
	podruntime.SetCondition(st, corev1.PodReady, corev1.ConditionFalse, "PodCompleted", mnow)
	podruntime.SetCondition(st, corev1.ContainersReady, corev1.ConditionFalse, "PodCompleted", mnow)
	podruntime.SetCondition(st, corev1.PodReadyToStartContainers, corev1.ConditionFalse, "", mnow)
	started := mnow
	if st.StartTime != nil {
		started = *st.StartTime
	}
	for i := range st.ContainerStatuses {
		c := &st.ContainerStatuses[i]
		c.Ready = false
		c.Started = ptr.To(false)
		c.State = corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
			ExitCode: code, Reason: reason, StartedAt: started, FinishedAt: mnow, ContainerID: c.ContainerID}}
	}
	for i := range st.InitContainerStatuses {
		c := &st.InitContainerStatuses[i]
		if c.State.Running != nil {
			c.Ready = false
			c.Started = ptr.To(false)
			c.State = corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
				ExitCode: 0, Reason: "Completed", StartedAt: started, FinishedAt: mnow, ContainerID: c.ContainerID}}
		}
	}
	return st
}

func statusEqual(a, b *corev1.PodStatus) bool {
	if a.Phase != b.Phase || a.PodIP != b.PodIP || a.HostIP != b.HostIP || a.StartTime == nil {
		return false
	}
	if len(a.ContainerStatuses) != len(b.ContainerStatuses) || len(a.InitContainerStatuses) != len(b.InitContainerStatuses) {
		return false
	}
	for i := range a.ContainerStatuses {
		if a.ContainerStatuses[i].Ready != b.ContainerStatuses[i].Ready || a.ContainerStatuses[i].State.Running == nil {
			return false
		}
	}
	cond := func(st *corev1.PodStatus, t corev1.PodConditionType) corev1.ConditionStatus {
		for _, c := range st.Conditions {
			if c.Type == t {
				return c.Status
			}
		}
		return ""
	}
	for _, t := range []corev1.PodConditionType{corev1.PodReady, corev1.ContainersReady, corev1.PodInitialized, corev1.PodReadyToStartContainers} {
		if cond(a, t) != cond(b, t) {
			return false
		}
	}
	return true
}

// syncRuntimePod starts a pod with mapped images in the runtime (once) and
// publishes the status of its processes (see podruntime.Runtime.SyncPod).
// It returns when to look again.
func (s *Simulator) syncRuntimePod(ctx context.Context, pod *corev1.Pod, n *node, now time.Time) (time.Duration, error) {
	base := s.runningStatus(n, pod, now)
	return s.rt.SyncPod(s.runCtx, pod, n.runtimeNode(), base, now, func(st *corev1.PodStatus) error {
		_, err := s.client.CoreV1().Pods(pod.Namespace).UpdateStatus(ctx, withStatus(pod, st), metav1.UpdateOptions{})
		return err
	})
}
