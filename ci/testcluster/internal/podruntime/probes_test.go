package podruntime

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/client-go/util/workqueue"
)

// TestProbeThresholds: the reported result starts as failure and flips only
// after successThreshold successes or failureThreshold failures in a row.
func TestProbeThresholds(t *testing.T) {
	th := probeThresholds{success: 2, failure: 3}
	steps := []struct {
		ok, changed, result bool
	}{
		{false, false, false}, // already failure
		{true, false, false},  // 1 of 2 successes
		{false, false, false}, // run broken
		{true, false, false},
		{true, true, true}, // 2 in a row
		{true, false, true},
		{false, false, true},
		{false, false, true},
		{false, true, false}, // 3 failures in a row
	}
	for i, s := range steps {
		if changed := th.observe(s.ok); changed != s.changed || th.result != s.result {
			t.Fatalf("step %d (ok=%v): changed %v result %v, want %v %v", i, s.ok, changed, th.result, s.changed, s.result)
		}
	}
}

func TestProbePort(t *testing.T) {
	c := &corev1.Container{Name: "c", Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8081}}}
	if p, err := probePort(intstr.FromString("http"), c); err != nil || p != 8081 {
		t.Errorf("by name: %d %v", p, err)
	}
	if p, err := probePort(intstr.FromInt32(9443), c); err != nil || p != 9443 {
		t.Errorf("by number: %d %v", p, err)
	}
	if _, err := probePort(intstr.FromString("metrics"), c); err == nil || !strings.Contains(err.Error(), `"metrics"`) {
		t.Errorf("unknown name: %v", err)
	}
	if _, err := probePort(intstr.FromInt32(0), c); err == nil {
		t.Error("port 0 accepted")
	}
}

// TestProbeHTTP: headers, Host, scheme HTTPS without verification, status
// ranges and redirects, against a local server.
func TestProbeHTTP(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("/ok", func(w http.ResponseWriter, r *http.Request) {
		if r.Host != "svc.example" || r.Header.Get("X-Probe") != "yes" || !strings.HasPrefix(r.UserAgent(), "kube-probe/1.34") || r.URL.RawQuery != "a=1" {
			http.Error(w, fmt.Sprintf("host %q header %q ua %q query %q", r.Host, r.Header.Get("X-Probe"), r.UserAgent(), r.URL.RawQuery), http.StatusBadRequest)
		}
	})
	mux.HandleFunc("/bad", func(w http.ResponseWriter, r *http.Request) { http.Error(w, "not yet", http.StatusServiceUnavailable) })
	mux.HandleFunc("/to-bad", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/bad", http.StatusFound) })
	mux.HandleFunc("/elsewhere", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "http://192.0.2.1/", http.StatusFound) // not followed: success
	})
	rt := &Runtime{version: "v1.34.4"}
	for _, srv := range []*httptest.Server{httptest.NewServer(mux), httptest.NewTLSServer(mux)} {
		defer srv.Close()
		u, _ := url.Parse(srv.URL)
		scheme := corev1.URIScheme(strings.ToUpper(u.Scheme))
		port, _ := strconv.Atoi(u.Port())
		c := &corev1.Container{Name: "c", Ports: []corev1.ContainerPort{{Name: "web", ContainerPort: int32(port)}}}
		get := func(path string) *corev1.HTTPGetAction {
			return &corev1.HTTPGetAction{Path: path, Port: intstr.FromString("web"), Scheme: scheme,
				HTTPHeaders: []corev1.HTTPHeader{{Name: "Host", Value: "svc.example"}, {Name: "X-Probe", Value: "yes"}}}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		for path, ok := range map[string]bool{"/ok?a=1": true, "/bad": false, "/to-bad": false, "/elsewhere": true, "/missing": false} {
			err := rt.probeHTTP(ctx, get(path), c, u.Hostname())
			if (err == nil) != ok {
				t.Errorf("%s %s: %v, want success %v", scheme, path, err, ok)
			}
		}
	}
}

// probeHelperPorts: the web container's port and one nobody listens on.
func probeHelperPorts(t *testing.T) (web, unused int) {
	t.Helper()
	var ports []int
	for range 2 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
		defer l.Close()
	}
	return ports[0], ports[1]
}

// probePods are the pods of the readiness scenario: "ready" has a web
// container whose /readyz fails until /flip (HTTP probe by port name, with
// a header) and a container without probes; "unready" probes a port
// nobody listens on.
func probePods(web, unused int) []*corev1.Pod {
	helper := func(name, mode string, port int) corev1.Container {
		return corev1.Container{Name: name, Image: "example.com/helper:latest",
			Command: []string{filepath.Base(os.Args[0]), "-test.run=^TestProbeHelper$"},
			Env:     []corev1.EnvVar{{Name: "HELPER_MODE", Value: mode}, {Name: "HELPER_PORT", Value: strconv.Itoa(port)}}}
	}
	webC := helper("web", "web", web)
	webC.Ports = []corev1.ContainerPort{{Name: "http", ContainerPort: int32(web)}}
	webC.ReadinessProbe = &corev1.Probe{PeriodSeconds: 1, ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{
		Path: "/readyz", Port: intstr.FromString("http"), HTTPHeaders: []corev1.HTTPHeader{{Name: "X-Probe", Value: "yes"}}}}}
	tcpC := helper("tcp", "sleep", 0)
	tcpC.ReadinessProbe = &corev1.Probe{PeriodSeconds: 1, ProbeHandler: corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{
		Port: intstr.FromInt(unused)}}}
	pod := func(name string, ctrs ...corev1.Container) *corev1.Pod {
		return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns", UID: types.UID("uid-probe-" + name), ResourceVersion: "1"},
			Spec: corev1.PodSpec{NodeName: "gpu-0", RestartPolicy: corev1.RestartPolicyAlways, Containers: ctrs}}
	}
	return []*corev1.Pod{pod("ready", webC, helper("plain", "sleep", 0)), pod("unready", tcpC)}
}

// TestProbeHelper is the program of the probe tests' containers: "web"
// serves /readyz on HELPER_PORT (503 until /flip, 400 without the probe's
// header) and counts its calls at /hits; "sleep" just runs.
func TestProbeHelper(t *testing.T) {
	switch os.Getenv("HELPER_MODE") {
	case "web":
		var ready atomic.Bool
		var hits atomic.Int64
		mux := http.NewServeMux()
		mux.HandleFunc("/readyz", func(w http.ResponseWriter, r *http.Request) {
			hits.Add(1)
			switch {
			case r.Header.Get("X-Probe") != "yes":
				http.Error(w, "no probe header", http.StatusBadRequest)
			case !ready.Load():
				http.Error(w, "not ready", http.StatusServiceUnavailable)
			}
		})
		mux.HandleFunc("/hits", func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, hits.Load()) })
		mux.HandleFunc("/flip", func(w http.ResponseWriter, r *http.Request) { ready.Store(true) })
		err := http.ListenAndServe("0.0.0.0:"+os.Getenv("HELPER_PORT"), mux)
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	case "sleep":
		select {}
	default:
		t.Skip("helper process of the probe tests")
	}
}

// probeCluster is a simulator on a fake API whose pods run the test binary
// as image example.com/helper, with probe periods of 100 ms (see
// syncTestPods); it counts status writes per pod.
func probeCluster(t *testing.T, ctx context.Context, podNetns bool, pods []*corev1.Pod) (*fake.Clientset, *Runtime, map[string]*atomic.Int64) {
	t.Helper()
	var objs []runtime.Object
	writes := map[string]*atomic.Int64{}
	for _, p := range pods {
		objs = append(objs, p)
		writes[p.Name] = &atomic.Int64{}
	}
	client := fake.NewSimpleClientset(objs...)
	var mu sync.Mutex
	rv := 1
	client.PrependReactor("update", "pods", func(a k8stesting.Action) (bool, runtime.Object, error) {
		// The fake tracker keeps resourceVersions as given: bump them like
		// the API server, as the runtime relies on them.
		if a.GetSubresource() == "status" {
			p := a.(k8stesting.UpdateAction).GetObject().(*corev1.Pod)
			mu.Lock()
			rv++
			p.ResourceVersion = strconv.Itoa(rv)
			mu.Unlock()
			writes[p.Name].Add(1)
		}
		return false, nil, nil
	})
	s := testSim(t)
	s.client = client
	rt, err := NewRuntime(RuntimeOptions{Images: map[string]string{"example.com/helper": os.Args[0]}, Dir: t.TempDir(), PodNetns: podNetns})
	if err != nil {
		t.Fatal(err)
	}
	rt.probePeriodCap = 100 * time.Millisecond
	s.SetRuntime(rt)
	// Pod addresses as the simulator gives gpu-0's pods: loopback ones, or
	// from the pod network with --pod-netns.
	next := 0
	podIP := func() string { next++; return fmt.Sprintf("127.17.0.%d", next+1) }
	if podNetns {
		enableTestPodNet(t, ctx)
		pn := &testPodNet{}
		if err := rt.EnablePodNetns(ctx, pn.src()); err != nil {
			t.Fatal(err)
		}
		podIP = pn.allocPodIP
	}
	syncTestPods(ctx, s, rt, podIP)
	for _, p := range pods {
		rt.notify(p.Namespace + "/" + p.Name)
	}
	return client, rt, writes
}

// syncTestPods stands in for the simulator's pod loop (internal/sim's
// RunPods) for the runtime's pods on gpu-0 until ctx ends: a pod is synced
// (Runtime.SyncPod on the status of a started pod, published with an
// UpdateStatus) when the runtime reports a change and when SyncPod asks to
// look again.
func syncTestPods(ctx context.Context, s *fakeSim, rt *Runtime, podIP func() string) {
	queue := workqueue.NewTypedDelayingQueue[string]()
	rt.Watch(informers.NewSharedInformerFactory(s.client, 0), queue.Add)
	go func() {
		<-ctx.Done()
		queue.ShutDown()
	}()
	n := s.nodes["gpu-0"]
	sync := func(key string) (time.Duration, error) {
		ns, name, _ := strings.Cut(key, "/")
		pods := s.client.CoreV1().Pods(ns)
		pod, err := pods.Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return 0, err
		}
		now := time.Now()
		base := pod.Status.DeepCopy()
		base.Phase, base.HostIP = corev1.PodRunning, n.IP
		if base.PodIP == "" {
			base.PodIP = podIP()
		}
		if base.StartTime == nil {
			base.StartTime = &metav1.Time{Time: now}
		}
		return rt.SyncPod(ctx, pod, n, base, now, func(st *corev1.PodStatus) error {
			p := pod.DeepCopy()
			p.Status = *st
			_, err := pods.UpdateStatus(ctx, p, metav1.UpdateOptions{})
			return err
		})
	}
	go func() {
		for {
			key, quit := queue.Get()
			if quit {
				return
			}
			requeue, err := sync(key)
			switch {
			case err != nil && ctx.Err() == nil:
				queue.AddAfter(key, 50*time.Millisecond)
			case requeue > 0:
				queue.AddAfter(key, requeue)
			}
			queue.Done(key)
		}
	}()
}

// TestReadinessProbes runs the readiness scenario with processes in the
// host's network namespace (pod IPs are local addresses of the host).
func TestReadinessProbes(t *testing.T) {
	runProbeScenario(t, false)
}

// TestReadinessProbesPodNetns runs it with --pod-netns (root only, in a
// scratch "host" network namespace).
func TestReadinessProbesPodNetns(t *testing.T) {
	if !inScratchNetns(t) {
		return
	}
	runProbeScenario(t, true)
}

// runProbeScenario: a container with an HTTP readiness probe is unready
// while /readyz fails and the pod becomes Ready (in the API) only after it
// succeeds; a container without probes is ready at once; a tcpSocket probe
// of a closed port keeps its pod unready; a Ready pod gets no more status
// writes while its probes keep succeeding.
func runProbeScenario(t *testing.T, podNetns bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	web, unused := probeHelperPorts(t)
	client, rt, writes := probeCluster(t, ctx, podNetns, probePods(web, unused))
	defer rt.Shutdown()
	defer cancel()
	pods := client.CoreV1().Pods("ns")
	get := func(name string) *corev1.Pod {
		p, err := pods.Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return p
	}

	// Running, probed and failing: web unready, plain ready, pod not Ready.
	var podIP string
	waitFor(t, ctx, "pod ready running with web's probe failing", func() string {
		p := get("ready")
		podIP = p.Status.PodIP
		if podIP == "" || p.Status.Phase != corev1.PodRunning || len(p.Status.ContainerStatuses) != 2 || p.Status.ContainerStatuses[0].State.Running == nil {
			return fmt.Sprintf("status %+v", p.Status)
		}
		if n, err := httpGetBody(ctx, podIP, web, "/hits"); err != nil || n == "0" || n == "1" {
			return fmt.Sprintf("probe calls %q %v", n, err)
		}
		return ""
	})
	p := get("ready")
	if cs := p.Status.ContainerStatuses; cs[0].Ready || !cs[1].Ready || podCondition(p, corev1.PodReady) != corev1.ConditionFalse {
		t.Fatalf("before /readyz succeeds: web ready %v, plain ready %v, pod Ready %s", cs[0].Ready, cs[1].Ready, podCondition(p, corev1.PodReady))
	}

	// /readyz succeeds: the pod becomes Ready in the API.
	if _, err := httpGetBody(ctx, podIP, web, "/flip"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, ctx, "pod ready Ready", func() string {
		p := get("ready")
		if podCondition(p, corev1.PodReady) != corev1.ConditionTrue || podCondition(p, corev1.ContainersReady) != corev1.ConditionTrue || !p.Status.ContainerStatuses[0].Ready {
			return fmt.Sprintf("conditions %+v", p.Status.Conditions)
		}
		return ""
	})

	// The closed port keeps its pod unready, probe after probe.
	pr := rt.get("ns/unready")
	waitFor(t, ctx, "tcp probe failing 5 times", func() string {
		pr.mu.Lock()
		defer pr.mu.Unlock()
		if s := pr.ctrs["tcp"]; s.probeRuns < 5 || !strings.Contains(s.probeErr, "refused") {
			return fmt.Sprintf("%d probes, last error %q", s.probeRuns, s.probeErr)
		}
		return ""
	})
	waitFor(t, ctx, "pod unready published as running", func() string {
		p := get("unready")
		if p.Status.Phase != corev1.PodRunning || len(p.Status.ContainerStatuses) != 1 || p.Status.ContainerStatuses[0].State.Running == nil {
			return fmt.Sprintf("status %+v", p.Status)
		}
		return ""
	})
	if p := get("unready"); p.Status.ContainerStatuses[0].Ready || podCondition(p, corev1.PodReady) != corev1.ConditionFalse {
		t.Errorf("closed port: container ready %v, pod Ready %s", p.Status.ContainerStatuses[0].Ready, podCondition(p, corev1.PodReady))
	}

	// Successful probes of a Ready pod cause no status writes.
	before := writes["ready"].Load()
	hits, _ := httpGetBody(ctx, podIP, web, "/hits")
	waitFor(t, ctx, "5 more probes", func() string {
		n, err := httpGetBody(ctx, podIP, web, "/hits")
		a, _ := strconv.Atoi(n)
		b, _ := strconv.Atoi(hits)
		if err != nil || a < b+5 {
			return fmt.Sprintf("probe calls %s (was %s) %v", n, hits, err)
		}
		return ""
	})
	if after := writes["ready"].Load(); after != before {
		t.Errorf("%d status writes while nothing changed", after-before)
	}
}

// waitFor polls check (empty = done) until ctx ends.
func waitFor(t *testing.T, ctx context.Context, what string, check func() string) {
	t.Helper()
	for {
		why := check()
		if why == "" {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s: %s", what, why)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func podCondition(p *corev1.Pod, typ corev1.PodConditionType) corev1.ConditionStatus {
	for _, c := range p.Status.Conditions {
		if c.Type == typ {
			return c.Status
		}
	}
	return ""
}

// httpGetBody GETs path from ip:port and returns the body.
func httpGetBody(ctx context.Context, ip string, port int, path string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+net.JoinHostPort(ip, strconv.Itoa(port))+path, nil)
	if err != nil {
		return "", err
	}
	resp, err := probeHTTPClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}
