package dcgmexporter

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	resourcev1 "k8s.io/api/resource/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/utils/ptr"
)

func slice(node string, n int) *resourcev1.ResourceSlice {
	s := &resourcev1.ResourceSlice{
		ObjectMeta: metav1.ObjectMeta{Name: node + "-gpu"},
		Spec:       resourcev1.ResourceSliceSpec{Driver: Driver, NodeName: ptr.To(node), Pool: resourcev1.ResourcePool{Name: node}},
	}
	for i := n - 1; i >= 0; i-- {
		s.Spec.Devices = append(s.Spec.Devices, resourcev1.Device{
			Name: "gpu-" + string(rune('0'+i)),
			Attributes: map[resourcev1.QualifiedName]resourcev1.DeviceAttribute{
				"index":       {IntValue: ptr.To(int64(i))},
				"uuid":        {StringValue: ptr.To("GPU-" + node + "-" + string(rune('0'+i)))},
				"productName": {StringValue: ptr.To("NVIDIA H100 80GB HBM3")},
			},
			Capacity: map[resourcev1.QualifiedName]resourcev1.DeviceCapacity{
				"memory": {Value: resource.MustParse("80Gi")},
			},
		})
	}
	return s
}

func pod(ns, name, node string, created int, phase corev1.PodPhase) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, CreationTimestamp: metav1.NewTime(time.Unix(int64(created), 0))},
		Spec:       corev1.PodSpec{NodeName: node, Containers: []corev1.Container{{Name: "main"}}},
		Status:     corev1.PodStatus{Phase: phase},
	}
}

func withGPUs(p *corev1.Pod, n int64) *corev1.Pod {
	p.Spec.Containers[0].Resources.Limits = corev1.ResourceList{Extended: *resource.NewQuantity(n, resource.DecimalSI)}
	return p
}

func TestDevicesFromSlices(t *testing.T) {
	ds := DevicesFromSlices([]*resourcev1.ResourceSlice{slice("gpu-0", 3), slice("gpu-1", 2)}, Driver, "gpu-0")
	if len(ds) != 3 || ds[0].Index != 0 || ds[2].Name != "gpu-2" || ds[1].UUID != "GPU-gpu-0-1" || ds[0].MemoryMiB != 81920 {
		t.Fatalf("%+v", ds)
	}
	if got := DevicesFromSlices([]*resourcev1.ResourceSlice{slice("gpu-0", 3)}, "other.driver", "gpu-0"); len(got) != 0 {
		t.Fatalf("other driver: %+v", got)
	}
}

func TestAssignFollowsClaimsAndExtendedResources(t *testing.T) {
	devs := DevicesFromSlices([]*resourcev1.ResourceSlice{slice("gpu-0", 4)}, Driver, "gpu-0")
	dra := pod("a", "dra", "gpu-0", 3, corev1.PodRunning)
	dra.Spec.ResourceClaims = []corev1.PodResourceClaim{{Name: "gpu", ResourceClaimTemplateName: ptr.To("t")}}
	dra.Status.ResourceClaimStatuses = []corev1.PodResourceClaimStatus{{Name: "gpu", ResourceClaimName: ptr.To("dra-gpu-x")}}
	claims := map[string]*resourcev1.ResourceClaim{"a/dra-gpu-x": {
		ObjectMeta: metav1.ObjectMeta{Namespace: "a", Name: "dra-gpu-x"},
		Status: resourcev1.ResourceClaimStatus{Allocation: &resourcev1.AllocationResult{Devices: resourcev1.DeviceAllocationResult{
			Results: []resourcev1.DeviceRequestAllocationResult{{Request: "gpu", Driver: Driver, Pool: "gpu-0", Device: "gpu-0"}}}}},
	}}
	pods := []*corev1.Pod{
		withGPUs(pod("b", "late", "gpu-0", 5, corev1.PodRunning), 1),
		withGPUs(pod("b", "early", "gpu-0", 1, corev1.PodRunning), 2),
		withGPUs(pod("b", "done", "gpu-0", 0, corev1.PodSucceeded), 1),
		withGPUs(pod("b", "pending", "gpu-0", 0, corev1.PodPending), 1),
		withGPUs(pod("b", "elsewhere", "gpu-1", 0, corev1.PodRunning), 1),
		dra,
	}
	held, given := Assign(devs, pods, claims, Driver, Extended, "gpu-0", nil)
	want := map[int]string{0: "a/dra", 1: "b/early", 2: "b/early", 3: "b/late"}
	if len(held) != len(want) {
		t.Fatalf("held %+v", held)
	}
	for i, w := range want {
		if h := held[i]; h.Namespace+"/"+h.Pod != w || h.Container != "main" {
			t.Errorf("device %d: %+v, want %s", i, h, w)
		}
	}
	// Once the earlier pod ends, the later one keeps its device, as a device plugin's
	// assignment does; a new pod gets the lowest free one.
	pods[1].Status.Phase = corev1.PodSucceeded
	newer := withGPUs(pod("b", "new", "gpu-0", 9, corev1.PodRunning), 1)
	held, _ = Assign(devs, append(pods, newer), claims, Driver, Extended, "gpu-0", given)
	want = map[int]string{0: "a/dra", 1: "b/new", 3: "b/late"}
	if len(held) != len(want) {
		t.Fatalf("after the early pod ended: %+v", held)
	}
	for i, w := range want {
		if h := held[i]; h.Namespace+"/"+h.Pod != w {
			t.Errorf("after the early pod ended, device %d: %+v, want %s", i, h, w)
		}
	}
}

func TestRenderLabelsAndLoad(t *testing.T) {
	devs := DevicesFromSlices([]*resourcev1.ResourceSlice{slice("gpu-0", 2)}, Driver, "gpu-0")
	holders := map[int]Holder{1: {Namespace: "a", Pod: "p", Container: "c"}}
	text := Render("gpu-0", devs, map[int]Reading{0: readingFor(devs[0], false), 1: readingFor(devs[1], true)}, holders)
	for _, want := range []string{
		"# TYPE DCGM_FI_DEV_GPU_UTIL gauge\n",
		`DCGM_FI_DEV_GPU_UTIL{gpu="0",UUID="GPU-gpu-0-0",device="nvidia0",modelName="NVIDIA H100 80GB HBM3",Hostname="gpu-0"} 0` + "\n",
		`DCGM_FI_DEV_GPU_UTIL{gpu="1",UUID="GPU-gpu-0-1",device="nvidia1",modelName="NVIDIA H100 80GB HBM3",Hostname="gpu-0",container="c",namespace="a",pod="p"} 97` + "\n",
		`DCGM_FI_DEV_FB_USED{gpu="1",UUID="GPU-gpu-0-1",device="nvidia1",modelName="NVIDIA H100 80GB HBM3",Hostname="gpu-0",container="c",namespace="a",pod="p"} 61440` + "\n",
		`DCGM_FI_DEV_FB_FREE{gpu="0",UUID="GPU-gpu-0-0",device="nvidia0",modelName="NVIDIA H100 80GB HBM3",Hostname="gpu-0"} 81920` + "\n",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("missing %q in\n%s", want, text)
		}
	}
}

// scrape asks the exporter as if the request had been sent to addr.
func scrape(e *exporter, addr string) (int, string) {
	req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
	req = req.WithContext(context.WithValue(req.Context(), http.LocalAddrContextKey, &net.TCPAddr{IP: net.ParseIP(addr), Port: 1}))
	w := httptest.NewRecorder()
	e.ServeHTTP(w, req)
	return w.Code, w.Body.String()
}

func TestServeByPodAddressFollowsLoadUnlessFrozen(t *testing.T) {
	exp := pod(Namespace, "exp-1", "gpu-1", 0, corev1.PodRunning)
	exp.Labels = podLabels
	exp.Status.PodIP = "198.18.4.2"
	objs := []runtime.Object{slice("gpu-0", 2), slice("gpu-1", 2), exp,
		withGPUs(pod("w", "load", "gpu-1", 1, corev1.PodRunning), 1)}
	for _, frozen := range []bool{false, true} {
		client := fake.NewSimpleClientset(objs...)
		f := informers.NewSharedInformerFactory(client, 0)
		e := &exporter{opts: Options{Frozen: frozen}, pods: f.Core().V1().Pods().Lister(),
			claims: f.Resource().V1().ResourceClaims().Lister(), slices: f.Resource().V1().ResourceSlices().Lister()}
		ctx, cancel := context.WithCancel(context.Background())
		f.Start(ctx.Done())
		f.WaitForCacheSync(ctx.Done())
		code, body := scrape(e, "198.18.4.2")
		busy := `UUID="GPU-gpu-1-0",device="nvidia0",modelName="NVIDIA H100 80GB HBM3",Hostname="gpu-1",container="main",namespace="w",pod="load"} 97`
		if code != 200 || strings.Contains(body, `Hostname="gpu-0"`) || strings.Contains(body, busy) == frozen {
			t.Errorf("frozen=%v: %d\n%s", frozen, code, body)
		}
		if code, _ := scrape(e, "198.18.9.9"); code != http.StatusNotFound {
			t.Errorf("unknown address answered %d", code)
		}
		cancel()
	}
}

func TestTrimSliceKeepsWhatDevicesFromSlicesReads(t *testing.T) {
	full := slice("gpu-0", 3)
	for i := range full.Spec.Devices {
		full.Spec.Devices[i].Attributes["driverVersion"] = resourcev1.DeviceAttribute{VersionValue: ptr.To("550.127.5")}
	}
	full.ManagedFields = []metav1.ManagedFieldsEntry{{Manager: "sim"}}
	obj, err := trimSlice(full)
	if err != nil {
		t.Fatal(err)
	}
	trimmed := obj.(*resourcev1.ResourceSlice)
	if len(trimmed.ManagedFields) != 0 || len(trimmed.Spec.Devices[0].Attributes) != 3 {
		t.Errorf("not trimmed: %+v", trimmed)
	}
	want := DevicesFromSlices([]*resourcev1.ResourceSlice{full}, Driver, "gpu-0")
	got := DevicesFromSlices([]*resourcev1.ResourceSlice{trimmed}, Driver, "gpu-0")
	if !reflect.DeepEqual(got, want) || len(got) != 3 {
		t.Errorf("devices of the trimmed slice %+v, want %+v", got, want)
	}
}
