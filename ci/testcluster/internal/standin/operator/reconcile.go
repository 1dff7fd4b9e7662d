package operator

import (
	"context"
	"fmt"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/dynamic/dynamicinformer"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/klog/v2"
	"k8s.io/utils/ptr"
)

var gvr = schema.GroupVersionResource{Group: Group, Version: Version, Resource: Plural}

type reconciler struct {
	client kubernetes.Interface
	dyn    dynamic.Interface
	queue  workqueue.TypedRateLimitingInterface[string]
	lister cache.GenericLister
}

func startReconciler(ctx context.Context, client kubernetes.Interface, dyn dynamic.Interface) error {
	r := &reconciler{
		client: client,
		dyn:    dyn,
		queue:  workqueue.NewTypedRateLimitingQueue(workqueue.DefaultTypedControllerRateLimiter[string]()),
	}
	df := dynamicinformer.NewDynamicSharedInformerFactory(dyn, 0)
	inf := df.ForResource(gvr)
	r.lister = inf.Lister()
	enqueue := func(obj interface{}) {
		if key, err := cache.DeletionHandlingMetaNamespaceKeyFunc(obj); err == nil {
			r.queue.Add(key)
		}
	}
	if _, err := inf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: enqueue, UpdateFunc: func(_, o interface{}) { enqueue(o) }, DeleteFunc: enqueue,
	}); err != nil {
		return err
	}
	kf := informers.NewSharedInformerFactoryWithOptions(client, 0, informers.WithTweakListOptions(func(o *metav1.ListOptions) {
		o.LabelSelector = OwnerLabel
	}))
	byOwner := func(obj interface{}) {
		if d, ok := obj.(*appsv1.Deployment); ok {
			r.queue.Add(d.Namespace + "/" + d.Labels[OwnerLabel])
		}
	}
	if _, err := kf.Apps().V1().Deployments().Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: byOwner, UpdateFunc: func(_, o interface{}) { byOwner(o) },
	}); err != nil {
		return err
	}
	df.Start(ctx.Done())
	kf.Start(ctx.Done())
	for _, ok := range df.WaitForCacheSync(ctx.Done()) {
		if !ok {
			return fmt.Errorf("ModelServer informer did not sync")
		}
	}
	kf.WaitForCacheSync(ctx.Done())
	go func() {
		<-ctx.Done()
		r.queue.ShutDown()
	}()
	for i := 0; i < 2; i++ {
		go r.work(ctx)
	}
	return nil
}

func (r *reconciler) work(ctx context.Context) {
	for {
		key, quit := r.queue.Get()
		if quit {
			return
		}
		if err := r.reconcile(ctx, key); err != nil && ctx.Err() == nil {
			klog.V(2).InfoS("modelserver reconcile", "key", key, "err", err)
			r.queue.AddRateLimited(key)
		} else {
			r.queue.Forget(key)
		}
		r.queue.Done(key)
	}
}

// reconcile makes the ModelServer's child Deployment match its spec and
// reports Ready once the Deployment has as many available replicas.
func (r *reconciler) reconcile(ctx context.Context, key string) error {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return nil
	}
	obj, err := r.lister.ByNamespace(ns).Get(name)
	if apierrors.IsNotFound(err) {
		return nil // children go with their owner (garbage collector)
	}
	if err != nil {
		return err
	}
	ms := obj.(*unstructured.Unstructured)
	replicas, _, _ := unstructured.NestedInt64(ms.Object, "spec", "replicas")
	model, _, _ := unstructured.NestedString(ms.Object, "spec", "model")
	deployments := r.client.AppsV1().Deployments(ns)
	child, err := deployments.Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		child, err = deployments.Create(ctx, childDeployment(ms, int32(replicas), model), metav1.CreateOptions{})
	}
	if err != nil {
		return err
	}
	if child.Spec.Replicas == nil || *child.Spec.Replicas != int32(replicas) {
		child.Spec.Replicas = ptr.To(int32(replicas))
		if child, err = deployments.Update(ctx, child, metav1.UpdateOptions{}); err != nil {
			return err
		}
	}
	ready := child.Status.ObservedGeneration >= child.Generation && child.Status.AvailableReplicas >= int32(replicas)
	status := "False"
	reason, msg := "Progressing", fmt.Sprintf("%d/%d replicas available", child.Status.AvailableReplicas, replicas)
	if ready {
		status, reason = "True", "Available"
	}
	cond := map[string]interface{}{
		"type": "Ready", "status": status, "reason": reason, "message": msg,
		"lastTransitionTime": time.Now().UTC().Format(time.RFC3339),
	}
	old, _, _ := unstructured.NestedSlice(ms.Object, "status", "conditions")
	if len(old) == 1 {
		if o, ok := old[0].(map[string]interface{}); ok && o["status"] == status && o["message"] == msg {
			return nil
		}
	}
	upd := ms.DeepCopy()
	_ = unstructured.SetNestedSlice(upd.Object, []interface{}{cond}, "status", "conditions")
	_ = unstructured.SetNestedField(upd.Object, int64(child.Status.AvailableReplicas), "status", "availableReplicas")
	_, err = r.dyn.Resource(gvr).Namespace(ns).UpdateStatus(ctx, upd, metav1.UpdateOptions{})
	return err
}

func childDeployment(ms *unstructured.Unstructured, replicas int32, model string) *appsv1.Deployment {
	labels := map[string]string{OwnerLabel: ms.GetName(), "app.kubernetes.io/name": "modelserver"}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{
			Name: ms.GetName(), Namespace: ms.GetNamespace(), Labels: labels,
			OwnerReferences: []metav1.OwnerReference{{
				APIVersion: Group + "/" + Version, Kind: Kind, Name: ms.GetName(), UID: ms.GetUID(),
				Controller: ptr.To(true), BlockOwnerDeletion: ptr.To(true),
			}},
		},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To(replicas),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{
					Name: "server", Image: "ghcr.io/aiconform/modelserver:stand-in",
					Env: []corev1.EnvVar{{Name: "MODEL", Value: model}},
				}}},
			},
		},
	}
}
