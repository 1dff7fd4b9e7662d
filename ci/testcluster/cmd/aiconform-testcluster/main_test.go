package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	resourcev1 "k8s.io/api/resource/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/utils/ptr"

	"aiconform.dev/testcluster/internal/coscheduling"
)

// The e2e test re-executes the test binary as the cluster process.
const mainEnv = "AICONFORM_TESTCLUSTER_RUN_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(mainEnv) == "1" {
		os.Exit(run(os.Args[1:]))
	}
	os.Exit(m.Run())
}

func TestFlagErrors(t *testing.T) {
	if code := run([]string{"--no-such-flag"}); code != 2 {
		t.Errorf("exit code %d for unknown flag", code)
	}
	if code := run([]string{"extra"}); code != 2 {
		t.Errorf("exit code %d for positional argument", code)
	}
}

func TestWatchParent(t *testing.T) {
	sleeper := exec.Command("sleep", "30")
	if err := sleeper.Start(); err != nil {
		t.Skip(err)
	}
	ctx := watchParent(context.Background(), sleeper.Process.Pid)
	select {
	case <-ctx.Done():
		t.Fatal("cancelled while parent alive")
	case <-time.After(700 * time.Millisecond):
	}
	sleeper.Process.Kill()
	sleeper.Wait()
	select {
	case <-ctx.Done():
	case <-time.After(3 * time.Second):
		t.Fatal("not cancelled after parent exit")
	}
}

type testCluster struct {
	cmd        *exec.Cmd
	client     *kubernetes.Clientset
	dyn        dynamic.Interface
	kubeconfig string
	dataDir    string
	exited     chan error
}

func startCluster(t *testing.T, args ...string) *testCluster {
	t.Helper()
	dir := t.TempDir()
	ready := filepath.Join(dir, "ready")
	kc := filepath.Join(dir, "kubeconfig")
	dataDir := filepath.Join(dir, "data")
	cmd := exec.Command(os.Args[0], append([]string{"--ready-file", ready, "--kubeconfig", kc, "--data-dir", dataDir,
		"--parent-pid", fmt.Sprint(os.Getpid())}, args...)...)
	cmd.Env = append(os.Environ(), mainEnv+"=1")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	tc := &testCluster{cmd: cmd, kubeconfig: kc, dataDir: dataDir, exited: make(chan error, 1)}
	readyLine := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			line := sc.Text()
			t.Logf("cluster: %s", line)
			if strings.HasPrefix(line, "READY ") {
				readyLine <- line
			}
		}
	}()
	go func() { tc.exited <- cmd.Wait() }()
	t.Cleanup(func() { tc.stop(t) })
	select {
	case line := <-readyLine:
		t.Logf("ready after %v: %s", time.Since(start), line)
		if line != "READY kubeconfig="+kc {
			t.Fatalf("unexpected READY line %q", line)
		}
	case err := <-tc.exited:
		t.Fatalf("cluster exited before READY: %v (see %s/cluster.log)", err, dataDir)
	case <-time.After(3 * time.Minute):
		t.Fatalf("cluster not ready after 3m")
	}
	b, err := os.ReadFile(ready)
	if err != nil || strings.TrimSpace(string(b)) != kc {
		t.Fatalf("ready file: %q %v", b, err)
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", kc)
	if err != nil {
		t.Fatal(err)
	}
	tc.client = kubernetes.NewForConfigOrDie(cfg)
	tc.dyn = dynamic.NewForConfigOrDie(cfg)
	return tc
}

func (tc *testCluster) stop(t *testing.T) {
	if tc.cmd.ProcessState != nil {
		return
	}
	_ = tc.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-tc.exited:
		if err != nil {
			t.Errorf("cluster exited with %v after SIGTERM", err)
		}
	case <-time.After(60 * time.Second):
		tc.cmd.Process.Kill()
		t.Errorf("cluster did not exit within 60s of SIGTERM")
	}
}

func waitFor(t *testing.T, what string, timeout time.Duration, cond func(ctx context.Context) (bool, error)) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := wait.PollUntilContextCancel(ctx, 250*time.Millisecond, true, cond); err != nil {
		t.Fatalf("timed out waiting for %s: %v", what, err)
	}
}

func gpuToleration() []corev1.Toleration {
	return []corev1.Toleration{{Key: "nvidia.com/gpu", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule}}
}

func podRunning(tc *testCluster, ns, name string) func(ctx context.Context) (bool, error) {
	return func(ctx context.Context) (bool, error) {
		p, err := tc.client.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		return p.Status.Phase == corev1.PodRunning, nil
	}
}

// TestClusterE2E starts the whole cluster as a subprocess. It takes about a
// minute and needs ~1.5 GiB of memory, so it only runs with
// AICONFORM_TESTCLUSTER_E2E=1 (and never with -short).
func TestClusterE2E(t *testing.T) {
	if testing.Short() || os.Getenv("AICONFORM_TESTCLUSTER_E2E") != "1" {
		t.Skip("set AICONFORM_TESTCLUSTER_E2E=1 to run the end-to-end cluster test")
	}
	tc := startCluster(t, "--nodes", "2")
	ctx := context.Background()
	ns := "default"

	nodes, err := tc.client.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(nodes.Items) != 3 {
		t.Fatalf("expected 3 nodes (1 system + 2 gpu), got %d", len(nodes.Items))
	}
	for _, n := range nodes.Items {
		if strings.HasPrefix(n.Name, "gpu-") {
			if q := n.Status.Allocatable["nvidia.com/gpu"]; q.Value() != 8 {
				t.Errorf("node %s nvidia.com/gpu=%s", n.Name, q.String())
			}
		}
	}

	// A GPU pod runs on a GPU node.
	_, err = tc.client.CoreV1().Pods(ns).Create(ctx, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "gpu-pod"},
		Spec: corev1.PodSpec{
			Tolerations: gpuToleration(),
			Containers: []corev1.Container{{Name: "c", Image: "nvcr.io/nvidia/cuda:12.4.0-base-ubuntu22.04",
				Resources: corev1.ResourceRequirements{Limits: corev1.ResourceList{"nvidia.com/gpu": resource.MustParse("1")}}}},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "gpu-pod Running", 60*time.Second, podRunning(tc, ns, "gpu-pod"))
	p, _ := tc.client.CoreV1().Pods(ns).Get(ctx, "gpu-pod", metav1.GetOptions{})
	if !strings.HasPrefix(p.Spec.NodeName, "gpu-") || p.Status.PodIP == "" || len(p.Status.ContainerStatuses) != 1 || !p.Status.ContainerStatuses[0].Ready {
		t.Errorf("unexpected pod state: node=%s status=%+v", p.Spec.NodeName, p.Status)
	}

	// A DRA claim from a template is allocated and its pod runs.
	_, err = tc.client.ResourceV1().ResourceClaimTemplates(ns).Create(ctx, &resourcev1.ResourceClaimTemplate{
		ObjectMeta: metav1.ObjectMeta{Name: "one-gpu"},
		Spec: resourcev1.ResourceClaimTemplateSpec{Spec: resourcev1.ResourceClaimSpec{Devices: resourcev1.DeviceClaim{
			Requests: []resourcev1.DeviceRequest{{Name: "gpu", Exactly: &resourcev1.ExactDeviceRequest{DeviceClassName: "gpu.nvidia.com"}}},
		}}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = tc.client.CoreV1().Pods(ns).Create(ctx, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "dra-pod"},
		Spec: corev1.PodSpec{
			Tolerations:    gpuToleration(),
			ResourceClaims: []corev1.PodResourceClaim{{Name: "gpu", ResourceClaimTemplateName: ptr.To("one-gpu")}},
			Containers: []corev1.Container{{Name: "c", Image: "busybox",
				Resources: corev1.ResourceRequirements{Claims: []corev1.ResourceClaim{{Name: "gpu"}}}}},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "dra-pod Running", 60*time.Second, podRunning(tc, ns, "dra-pod"))
	claims, err := tc.client.ResourceV1().ResourceClaims(ns).List(ctx, metav1.ListOptions{})
	if err != nil || len(claims.Items) != 1 || claims.Items[0].Status.Allocation == nil {
		t.Errorf("expected one allocated claim, got %v %+v", err, claims)
	}

	// A Job whose pod exits 0 completes.
	_, err = tc.client.BatchV1().Jobs(ns).Create(ctx, &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Name: "job"},
		Spec: batchv1.JobSpec{Template: corev1.PodTemplateSpec{
			ObjectMeta: metav1.ObjectMeta{Annotations: map[string]string{"testcluster.aiconform.dev/exit-code": "0"}},
			Spec: corev1.PodSpec{RestartPolicy: corev1.RestartPolicyNever,
				Containers: []corev1.Container{{Name: "c", Image: "busybox"}}},
		}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "job complete", 60*time.Second, func(ctx context.Context) (bool, error) {
		j, err := tc.client.BatchV1().Jobs(ns).Get(ctx, "job", metav1.GetOptions{})
		return err == nil && j.Status.Succeeded == 1 && j.Status.CompletionTime != nil, nil
	})

	// A gang of 4 x 8 GPUs does not fit on 2 GPU nodes: nothing is bound.
	createGang(t, tc, ns, "gang", 4, 8)
	// Free the GPUs used above so that 2 gang members could fit.
	for _, name := range []string{"gpu-pod", "dra-pod"} {
		tc.client.CoreV1().Pods(ns).Delete(ctx, name, metav1.DeleteOptions{})
	}
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		pods, err := tc.client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: coscheduling.PodGroupLabel + "=gang"})
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range pods.Items {
			if p.Spec.NodeName != "" {
				t.Fatalf("gang member %s was bound to %s although the gang cannot fit", p.Name, p.Spec.NodeName)
			}
		}
		time.Sleep(500 * time.Millisecond)
	}

	// Clean shutdown removes nothing it did not create but stops everything.
	tc.stop(t)
	if _, err := os.Stat(filepath.Join(tc.dataDir, "cluster.log")); err != nil {
		t.Errorf("expected log file in data dir: %v", err)
	}
}

func createGang(t *testing.T, tc *testCluster, ns, name string, members, gpus int) {
	t.Helper()
	ctx := context.Background()
	pg := &unstructured.Unstructured{Object: map[string]interface{}{
		"apiVersion": "scheduling.x-k8s.io/v1alpha1", "kind": "PodGroup",
		"metadata": map[string]interface{}{"name": name},
		"spec":     map[string]interface{}{"minMember": int64(members)},
	}}
	if _, err := tc.dyn.Resource(coscheduling.PodGroupGVR).Namespace(ns).Create(ctx, pg, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < members; i++ {
		_, err := tc.client.CoreV1().Pods(ns).Create(ctx, &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("%s-%d", name, i), Labels: map[string]string{coscheduling.PodGroupLabel: name}},
			Spec: corev1.PodSpec{Tolerations: gpuToleration(),
				Containers: []corev1.Container{{Name: "c", Image: "busybox",
					Resources: corev1.ResourceRequirements{Limits: corev1.ResourceList{"nvidia.com/gpu": resource.MustParse(fmt.Sprint(gpus))}}}}},
		}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
	}
}

func countRunning(t *testing.T, tc *testCluster, ns, group string) (running, bound int) {
	pods, err := tc.client.CoreV1().Pods(ns).List(context.Background(), metav1.ListOptions{LabelSelector: coscheduling.PodGroupLabel + "=" + group})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pods.Items {
		if p.Spec.NodeName != "" {
			bound++
		}
		if p.Status.Phase == corev1.PodRunning {
			running++
		}
	}
	return running, bound
}

// TestGangE2E: with 4 GPU nodes the 4 x 8-GPU gang runs completely; with
// --gang=false on 2 nodes it is partially scheduled (the injected fault).
func TestGangE2E(t *testing.T) {
	if testing.Short() || os.Getenv("AICONFORM_TESTCLUSTER_E2E") != "1" {
		t.Skip("set AICONFORM_TESTCLUSTER_E2E=1 to run the end-to-end cluster test")
	}
	t.Run("fits", func(t *testing.T) {
		tc := startCluster(t, "--nodes", "4")
		createGang(t, tc, "default", "train", 4, 8)
		waitFor(t, "4 gang members Running", 60*time.Second, func(ctx context.Context) (bool, error) {
			r, _ := countRunning(t, tc, "default", "train")
			return r == 4, nil
		})
		waitFor(t, "PodGroup phase Running", 30*time.Second, func(ctx context.Context) (bool, error) {
			pg, err := tc.dyn.Resource(coscheduling.PodGroupGVR).Namespace("default").Get(ctx, "train", metav1.GetOptions{})
			if err != nil {
				return false, nil
			}
			phase, _, _ := unstructured.NestedString(pg.Object, "status", "phase")
			return phase == coscheduling.PhaseRunning, nil
		})
	})
	t.Run("no-gang-partial", func(t *testing.T) {
		tc := startCluster(t, "--nodes", "2", "--gang=false")
		createGang(t, tc, "default", "train", 4, 8)
		waitFor(t, "2 members Running", 60*time.Second, func(ctx context.Context) (bool, error) {
			r, _ := countRunning(t, tc, "default", "train")
			return r == 2, nil
		})
		time.Sleep(3 * time.Second)
		if r, b := countRunning(t, tc, "default", "train"); r != 2 || b != 2 {
			t.Errorf("expected exactly 2 bound+running members without gang scheduling, got running=%d bound=%d", r, b)
		}
	})
}
