// Package dcgmexporter is a stand-in for NVIDIA's DCGM exporter on the
// simulated GPU nodes: a DaemonSet nvidia-dcgm-exporter in gpu-operator (one
// pod per GPU node) behind a Service, each pod answering /metrics with the
// DCGM metric families of its node's GPUs (the devices of the node's DRA
// ResourceSlice). The numbers follow the load: a device allocated to a
// running container (through a ResourceClaim or the nvidia.com/gpu extended
// resource) is busy and carries that container's pod labels. The pods'
// addresses are served by one listener of this process, so the API server's
// service proxy reaches them as it reaches a real exporter. Fault: frozen
// numbers (every device idle forever).
package dcgmexporter

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	resourcev1 "k8s.io/api/resource/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	resourcelisters "k8s.io/client-go/listers/resource/v1"
	"k8s.io/klog/v2"
)

const (
	// Namespace and Name of the exporter's DaemonSet and Service, as the GPU
	// Operator deploys them.
	Namespace = "gpu-operator"
	Name      = "nvidia-dcgm-exporter"
	// ServicePort is the exporter's Service port (named PortName).
	ServicePort = 9400
	PortName    = "gpu-metrics"
	// Driver and Extended name the GPUs the exporter reports on and how pods
	// request them.
	Driver   = "gpu.nvidia.com"
	Extended = "nvidia.com/gpu"
	image    = "nvcr.io/nvidia/k8s/dcgm-exporter:4.2.3-4.1.3-ubuntu22.04"
)

// Options select faults.
type Options struct {
	// Frozen makes every number constant: devices stay idle whatever runs (fault).
	Frozen bool
	// Informers, when set, is the informer factory the cluster's in-process
	// components share (nil: an own one).
	Informers informers.SharedInformerFactory
}

type exporter struct {
	opts   Options
	mu     sync.Mutex
	given  map[string]map[string][]int // node -> extended-resource assignment (see Assign)
	pods   corelisters.PodLister
	claims resourcelisters.ResourceClaimLister
	slices resourcelisters.ResourceSliceLister
}

// Run starts the exporter's listener and informers and installs its
// DaemonSet and Service; it returns once they exist. Everything stops with ctx.
func Run(ctx context.Context, client kubernetes.Interface, opts Options) error {
	f := opts.Informers
	if f == nil {
		f = informers.NewSharedInformerFactory(client, 0)
	}
	e := &exporter{
		opts:   opts,
		pods:   f.Core().V1().Pods().Lister(),
		claims: f.Resource().V1().ResourceClaims().Lister(),
	}
	sf := sliceInformers(client)
	e.slices = sf.Resource().V1().ResourceSlices().Lister()
	for _, factory := range []informers.SharedInformerFactory{f, sf} {
		factory.Start(ctx.Done())
		for typ, ok := range factory.WaitForCacheSync(ctx.Done()) {
			if !ok {
				return fmt.Errorf("dcgm exporter: informer %v did not sync", typ)
			}
		}
	}
	l, err := net.Listen("tcp", ":0")
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: e, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := srv.Serve(l); err != nil && err != http.ErrServerClosed {
			klog.ErrorS(err, "dcgm exporter server")
		}
	}()
	go func() {
		<-ctx.Done()
		_ = srv.Close()
	}()
	port := int32(l.Addr().(*net.TCPAddr).Port)
	if _, err := client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: Namespace}}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	if _, err := client.AppsV1().DaemonSets(Namespace).Create(ctx, daemonSet(port), metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	if _, err := client.CoreV1().Services(Namespace).Create(ctx, service(), metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	return nil
}

// sliceInformers caches the ResourceSlices of the GPU driver only, and of
// them what DevicesFromSlices reads (see trimSlice): with thousands of
// nodes, full slices of every driver would be a large copy of what the API
// server and the scheduler already cache.
func sliceInformers(client kubernetes.Interface) informers.SharedInformerFactory {
	return informers.NewSharedInformerFactoryWithOptions(client, 0,
		informers.WithTweakListOptions(func(o *metav1.ListOptions) {
			o.FieldSelector = fields.OneTermEqualSelector("spec.driver", Driver).String()
		}),
		informers.WithTransform(trimSlice))
}

// trimSlice keeps of a ResourceSlice its name, driver, node and its devices'
// names, index/uuid/productName attributes and memory capacity.
func trimSlice(obj interface{}) (interface{}, error) {
	s, ok := obj.(*resourcev1.ResourceSlice)
	if !ok {
		return obj, nil
	}
	out := &resourcev1.ResourceSlice{
		ObjectMeta: metav1.ObjectMeta{Name: s.Name, UID: s.UID, ResourceVersion: s.ResourceVersion},
		Spec:       resourcev1.ResourceSliceSpec{Driver: s.Spec.Driver, NodeName: s.Spec.NodeName, Pool: s.Spec.Pool},
	}
	for _, d := range s.Spec.Devices {
		td := resourcev1.Device{Name: d.Name, Attributes: map[resourcev1.QualifiedName]resourcev1.DeviceAttribute{}}
		for _, a := range []resourcev1.QualifiedName{"index", "uuid", "productName"} {
			if v, ok := d.Attributes[a]; ok {
				td.Attributes[a] = v
			}
		}
		if c, ok := d.Capacity["memory"]; ok {
			td.Capacity = map[resourcev1.QualifiedName]resourcev1.DeviceCapacity{"memory": c}
		}
		out.Spec.Devices = append(out.Spec.Devices, td)
	}
	return out, nil
}

var podLabels = map[string]string{"app": Name}

// daemonSet runs one exporter pod per GPU node; its container port is the
// listener's port, which every pod address reaches.
func daemonSet(port int32) *appsv1.DaemonSet {
	return &appsv1.DaemonSet{
		ObjectMeta: metav1.ObjectMeta{Name: Name, Namespace: Namespace, Labels: map[string]string{"app": Name, "app.kubernetes.io/name": Name}},
		Spec: appsv1.DaemonSetSpec{
			Selector: &metav1.LabelSelector{MatchLabels: podLabels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: podLabels},
				Spec: corev1.PodSpec{
					NodeSelector: map[string]string{"nvidia.com/gpu.present": "true"},
					Tolerations:  []corev1.Toleration{{Operator: corev1.TolerationOpExists}},
					Containers: []corev1.Container{{
						Name:  "nvidia-dcgm-exporter",
						Image: image,
						Ports: []corev1.ContainerPort{{Name: "metrics", ContainerPort: port, Protocol: corev1.ProtocolTCP}},
						Env: []corev1.EnvVar{{Name: "NODE_NAME", ValueFrom: &corev1.EnvVarSource{
							FieldRef: &corev1.ObjectFieldSelector{FieldPath: "spec.nodeName"}}}},
					}},
				},
			},
		},
	}
}

func service() *corev1.Service {
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: Name, Namespace: Namespace, Labels: map[string]string{"app": Name}},
		Spec: corev1.ServiceSpec{
			Selector: podLabels,
			Ports: []corev1.ServicePort{{Name: PortName, Port: ServicePort, Protocol: corev1.ProtocolTCP,
				TargetPort: intstr.FromString("metrics")}},
		},
	}
}

// ServeHTTP answers /metrics for the node of the exporter pod whose address
// the request was sent to.
func (e *exporter) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/metrics" {
		http.NotFound(w, r)
		return
	}
	local, _ := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
	tcp, _ := local.(*net.TCPAddr)
	if tcp == nil {
		http.Error(w, "no local address", http.StatusInternalServerError)
		return
	}
	node, ok := e.nodeOf(tcp.IP.String())
	if !ok {
		http.Error(w, fmt.Sprintf("no exporter pod has address %s", tcp.IP), http.StatusNotFound)
		return
	}
	text, err := e.metrics(node)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	_, _ = w.Write([]byte(text))
}

// nodeOf finds the running exporter pod with address ip.
func (e *exporter) nodeOf(ip string) (string, bool) {
	pods, err := e.pods.Pods(Namespace).List(labels.SelectorFromSet(podLabels))
	if err != nil {
		return "", false
	}
	for _, p := range pods {
		if p.Status.PodIP == ip && p.Spec.NodeName != "" && active(p) {
			return p.Spec.NodeName, true
		}
	}
	return "", false
}

// metrics renders node's devices under the current load (none when frozen).
func (e *exporter) metrics(node string) (string, error) {
	slices, err := e.slices.List(labels.Everything())
	if err != nil {
		return "", err
	}
	devices := DevicesFromSlices(slices, Driver, node)
	holders := map[int]Holder{}
	if !e.opts.Frozen {
		pods, err := e.pods.List(labels.Everything())
		if err != nil {
			return "", err
		}
		claimList, err := e.claims.List(labels.Everything())
		if err != nil {
			return "", err
		}
		claims := map[string]*resourcev1.ResourceClaim{}
		for _, c := range claimList {
			claims[c.Namespace+"/"+c.Name] = c
		}
		e.mu.Lock()
		var given map[string][]int
		holders, given = Assign(devices, pods, claims, Driver, Extended, node, e.given[node])
		if e.given == nil {
			e.given = map[string]map[string][]int{}
		}
		e.given[node] = given
		e.mu.Unlock()
	}
	readings := map[int]Reading{}
	for _, d := range devices {
		_, busy := holders[d.Index]
		readings[d.Index] = readingFor(d, busy)
	}
	return Render(node, devices, readings, holders), nil
}
