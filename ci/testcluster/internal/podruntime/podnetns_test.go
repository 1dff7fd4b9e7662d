package podruntime

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	resourcev1 "k8s.io/api/resource/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/utils/ptr"
)

func TestAPIHostPortAndServiceEnv(t *testing.T) {
	env := map[string]string{}
	addServiceEnv(env, "https://127.0.0.1:36443")
	if env["KUBERNETES_SERVICE_HOST"] != "127.0.0.1" || env["KUBERNETES_SERVICE_PORT"] != "36443" || env["KUBERNETES_SERVICE_PORT_HTTPS"] != "36443" {
		t.Errorf("service env %v", env)
	}
	if h, p, ok := apiHostPort("https://[::1]"); !ok || h != "::1" || p != "443" {
		t.Errorf("default port: %q %q %v", h, p, ok)
	}
	env = map[string]string{}
	addServiceEnv(env, "")
	if len(env) != 0 {
		t.Errorf("no server: %v", env)
	}
	want := []string{"link set lo up", "link add eth0 type veth peer name e4 netns /p",
		"addr add 198.18.0.7/32 dev eth0", "link set eth0 up", "route add default via 169.254.1.1 dev eth0 onlink"}
	if got := eth0Commands("/p", "e4", "198.18.0.7"); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("eth0 commands:\n%s", strings.Join(got, "\n"))
	}
}

// podNetnsChildEnv marks the re-executed test process running in a
// throwaway network namespace standing in for the host.
const podNetnsChildEnv = "SIM_PODNETNS_TEST_HOST"

// TestPodNetns runs pods of the process runtime with --pod-netns (root
// only), in a fresh network namespace standing in for the host so the test
// leaves nothing behind: two pods bind 0.0.0.0 on the same port, the host
// reaches each by pod IP, a third pod reaches one of them, a simulated pod
// address on the host and the API server on 127.0.0.1; a second cluster in
// the same process does not interfere; nothing is left after shutdown.
func TestPodNetns(t *testing.T) {
	if !inScratchNetns(t) {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	api := serveLines(t, "127.0.0.1:0", "api")
	s, rt, pn := podNetnsCluster(t, ctx, "https://"+api, 0)
	defer rt.Shutdown()
	n := s.nodes["gpu-0"]
	ipA, ipB, ipC := pn.allocPodIP(), pn.allocPodIP(), pn.allocPodIP()
	// A simulated pod: its address is local on the host, a stand-in serves it.
	simulated := serveLines(t, net.JoinHostPort(podNetAddr(2, 300), "0"), "simulated")
	start := time.Now()
	prA := rt.ensure(ctx, helperPod("a", "serve", ""), n, ipA)
	prB := rt.ensure(ctx, helperPod("b", "serve", ""), n, ipB)
	for name, ip := range map[string]string{"a": ipA, "b": ipB} {
		if got := dialLine(t, ctx, net.JoinHostPort(ip, "8080")); got != name+" from "+pn.src() {
			t.Errorf("host -> pod %s (%s): %q", name, ip, got)
		}
	}
	t.Logf("two pods serving after %v", time.Since(start))
	targets := []string{net.JoinHostPort(ipA, "8080"), simulated, api}
	prC := rt.ensure(ctx, helperPod("c", "dial", strings.Join(targets, ",")), n, ipC)
	<-prC.done
	st := prC.status(helperPod("c", "dial", ""), &corev1.PodStatus{}, time.Now())
	want := fmt.Sprintf("a from %s\nsimulated from %s\napi from 127.0.0.1\n", ipC, ipC)
	if term := st.ContainerStatuses[0].State.Terminated; term == nil || term.ExitCode != 0 || term.Message != want {
		log, _ := os.ReadFile(filepath.Join(prC.dir, "c.log"))
		t.Fatalf("pod c: %+v, want message %q; log:\n%s", st.ContainerStatuses[0].State, want, log)
	}
	// Another cluster in the same process (own uplink) with a pod on the same port.
	s2, rt2, pn2 := podNetnsCluster(t, ctx, "https://"+api, pn.block+100)
	ipD := pn2.allocPodIP()
	rt2.ensure(ctx, helperPod("d", "serve", ""), s2.nodes["gpu-0"], ipD)
	if got := dialLine(t, ctx, net.JoinHostPort(ipD, "8080")); !strings.HasPrefix(got, "d from ") {
		t.Errorf("host -> second cluster's pod: %q", got)
	}
	if got := dialLine(t, ctx, net.JoinHostPort(ipA, "8080")); !strings.HasPrefix(got, "a from ") {
		t.Errorf("host -> pod a after the second cluster started: %q", got)
	}
	rt2.Shutdown()
	for name, pr := range map[string]*podRun{"a": prA, "b": prB} {
		if st := pr.status(helperPod(name, "serve", ""), &corev1.PodStatus{}, time.Now()); st.Phase != corev1.PodRunning {
			t.Errorf("pod %s: phase %s", name, st.Phase)
		}
	}
	rt.Shutdown()
	waitNoLeftovers(t, ctx, "tcp"+strconv.Itoa(os.Getpid())+"u", []string{ipA, ipB, ipC, ipD})
}

// inScratchNetns re-runs the test in a new network namespace standing in
// for the host (lo up) and returns false; true in that re-run. Root only.
func inScratchNetns(t *testing.T) bool {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("network namespaces need root")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("no ip command")
	}
	if os.Getenv(podNetnsChildEnv) != "" {
		if err := hostIPBatch(context.Background(), []string{"link set lo up"}); err != nil {
			t.Fatal(err)
		}
		return true
	}
	cmd := exec.Command("unshare", "--net", "--", os.Args[0], "-test.run=^"+t.Name()+"$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), podNetnsChildEnv+"=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("in a new network namespace: %v\n%s", err, out)
	}
	t.Logf("%s", out)
	return false
}

// TestPodNetnsSIGKILL: when the cluster process is SIGKILLed, its uplink
// and the host's routes to its pods disappear (root only; a helper process
// in a scratch "host" namespace plays the cluster).
func TestPodNetnsSIGKILL(t *testing.T) {
	if !inScratchNetns(t) {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	enableTestPodNet(t, ctx)
	cmd := exec.Command(os.Args[0], "-test.run=^TestPodNetnsHelper$")
	cmd.Env = append(os.Environ(), "HELPER_MODE=uplink")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if !strings.HasPrefix(line, "ready ") {
		t.Fatalf("helper: %q %v", line, err)
	}
	hostIf := strings.TrimSpace(strings.TrimPrefix(line, "ready "))
	routes, _ := exec.Command("ip", "route", "show", "table", "local").CombinedOutput()
	if !strings.Contains(string(routes), "198.18.3.3 dev "+hostIf) {
		t.Fatalf("no route to the pod over %s:\n%s", hostIf, routes)
	}
	_ = cmd.Process.Signal(syscall.SIGKILL)
	_ = cmd.Wait()
	waitNoLeftovers(t, ctx, "tcp"+strconv.Itoa(cmd.Process.Pid)+"u", []string{"198.18.3.3"})
}

// podNetnsCluster is a simulator with a runtime running the test binary as
// image example.com/helper, with --pod-netns on and pod addresses from
// block of the pod network.
func podNetnsCluster(t *testing.T, ctx context.Context, server string, block int) (*fakeSim, *Runtime, *testPodNet) {
	t.Helper()
	s := testSim(t)
	rt, err := NewRuntime(RuntimeOptions{Images: map[string]string{"example.com/helper": os.Args[0]}, Dir: t.TempDir(),
		Server: server, PodNetns: true})
	if err != nil {
		t.Fatal(err)
	}
	rt.notify = func(string) {}
	s.SetRuntime(rt)
	enableTestPodNet(t, ctx)
	pn := &testPodNet{block: block}
	if err := rt.EnablePodNetns(ctx, pn.src()); err != nil {
		t.Fatal(err)
	}
	return s, rt, pn
}

// helperPod runs TestPodNetnsHelper in the given mode.
func helperPod(name, mode, targets string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns", UID: types.UID("uid-podnetns-" + name)},
		Spec: corev1.PodSpec{
			NodeName:      "gpu-0",
			RestartPolicy: corev1.RestartPolicyNever,
			Containers: []corev1.Container{{
				Name: name, Image: "example.com/helper:latest",
				Command: []string{filepath.Base(os.Args[0]), "-test.run=^TestPodNetnsHelper$"},
				Env: []corev1.EnvVar{{Name: "HELPER_MODE", Value: mode}, {Name: "HELPER_NAME", Value: name},
					{Name: "HELPER_TARGETS", Value: targets}},
			}},
		},
	}
}

// TestPodNetnsHelper is the program of TestPodNetns' pods: "serve" answers
// every connection to 0.0.0.0:8080 with "NAME from PEER-IP"; "dial" reads
// one line from each of HELPER_TARGETS into the termination log.
func TestPodNetnsHelper(t *testing.T) {
	switch os.Getenv("HELPER_MODE") {
	case "serve":
		l, err := net.Listen("tcp", "0.0.0.0:8080")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		serveLinesOn(l, os.Getenv("HELPER_NAME"))
		select {}
	case "dial":
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		var out strings.Builder
		code := 0
		for _, target := range strings.Split(os.Getenv("HELPER_TARGETS"), ",") {
			line, err := dialLineErr(ctx, target)
			if err != nil {
				fmt.Fprintf(os.Stderr, "%s: %v\n", target, err)
				code = 1
			}
			out.WriteString(line + "\n")
		}
		_ = os.WriteFile("/dev/termination-log", []byte(out.String()), 0o644)
		os.Exit(code)
	case "uplink":
		// A cluster's uplink and one pod on it, until killed.
		ctx := context.Background()
		u, err := newPodUplink(ctx, "198.18.0.0")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		ns, err := newNetns()
		if err == nil {
			err = u.attach(ctx, ns, "198.18.3.3")
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		fmt.Println("ready", u.hostIf)
		select {}
	default:
		t.Skip("helper process of TestPodNetns")
	}
}

// serveLines listens on addr and answers "NAME from PEER-IP"; it returns the address.
func serveLines(t *testing.T, addr, name string) string {
	t.Helper()
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go serveLinesOn(l, name)
	return l.Addr().String()
}

func serveLinesOn(l net.Listener, name string) {
	for {
		c, err := l.Accept()
		if err != nil {
			return
		}
		host, _, _ := net.SplitHostPort(c.RemoteAddr().String())
		fmt.Fprintf(c, "%s from %s\n", name, host)
		c.Close()
	}
}

// dialLine reads the first line served at addr, retrying until ctx ends.
func dialLine(t *testing.T, ctx context.Context, addr string) string {
	t.Helper()
	line, err := dialLineErr(ctx, addr)
	if err != nil {
		t.Errorf("%s: %v", addr, err)
	}
	return line
}

func dialLineErr(ctx context.Context, addr string) (string, error) {
	var d net.Dialer
	for {
		c, err := d.DialContext(ctx, "tcp", addr)
		if err == nil {
			_ = c.SetDeadline(time.Now().Add(5 * time.Second))
			line, err := bufio.NewReader(c).ReadString('\n')
			c.Close()
			return strings.TrimSpace(line), err
		}
		select {
		case <-ctx.Done():
			return "", err
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// waitNoLeftovers waits until the host has no uplink and no route to the
// pods (namespaces are destroyed asynchronously by the kernel).
func waitNoLeftovers(t *testing.T, ctx context.Context, prefix string, podIPs []string) {
	t.Helper()
	for {
		links, _ := exec.Command("ip", "-o", "link").CombinedOutput()
		routes, _ := exec.Command("ip", "route", "show", "table", "all").CombinedOutput()
		left := strings.Contains(string(links), prefix)
		for _, ip := range podIPs {
			left = left || strings.Contains(string(routes), ip+" ")
		}
		if !left {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("left behind:\n%s\n%s", links, routes)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// TestPodNetnsWithNICs: with --pod-netns a pod holding a NIC keeps its NIC
// interface and gets eth0 on the routed pod network, so the host reaches it
// (root only, in a scratch "host" namespace).
func TestPodNetnsWithNICs(t *testing.T) {
	if !inScratchNetns(t) {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	claim := &resourcev1.ResourceClaim{ObjectMeta: metav1.ObjectMeta{Name: "nic", Namespace: "ns"},
		Status: resourcev1.ResourceClaimStatus{Allocation: &resourcev1.AllocationResult{Devices: resourcev1.DeviceAllocationResult{
			Results: []resourcev1.DeviceRequestAllocationResult{{Request: "nic", Driver: NICDriverName, Pool: "gpu-0", Device: "ens1f0np0"}}}}}}
	s := testSim(t)
	s.client = fake.NewSimpleClientset(claim)
	api := serveLines(t, "127.0.0.1:0", "api")
	rt, err := NewRuntime(RuntimeOptions{Dir: t.TempDir(), Server: "https://" + api, PodNetns: true})
	if err != nil {
		t.Fatal(err)
	}
	s.SetRuntime(rt)
	defer rt.Shutdown()
	enableTestPodNet(t, ctx)
	pn := &testPodNet{}
	// gpu-0 is the first NIC node (ordinal 0).
	if err := rt.EnableNICs(ctx, NICOptions{}, map[string]int{"gpu-0": 0}); err != nil {
		t.Fatal(err)
	}
	if err := rt.EnablePodNetns(ctx, pn.src()); err != nil {
		t.Fatal(err)
	}
	defer rt.CloseNICs()
	pod := helperPod("n", "serve", "")
	pod.Spec.ResourceClaims = []corev1.PodResourceClaim{{Name: "nic", ResourceClaimName: ptr.To("nic")}}
	ip := pn.allocPodIP()
	ns, err := rt.preparePodNetwork(ctx, pod, s.nodes["gpu-0"], ip, false)
	if err != nil || ns == nil {
		t.Fatalf("pod network: %v %v", ns, err)
	}
	defer ns.Close()
	dev := readInNetns(t, ns, "/proc/thread-self/net/dev")
	if !strings.Contains(dev, "eth0:") || !strings.Contains(dev, "ens1f0np0:") {
		t.Errorf("pod interfaces:\n%s", dev)
	}
	l, err := listenInNetns(ns, net.JoinHostPort(ip, "8080"))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go serveLinesOn(l, "n")
	if got := dialLine(t, ctx, net.JoinHostPort(ip, "8080")); got != "n from "+pn.src() {
		t.Errorf("host -> NIC pod: %q", got)
	}
}
