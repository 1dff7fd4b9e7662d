package podruntime

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	nodev1 "k8s.io/api/node/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/utils/ptr"
)

// TestMain lets this test binary serve as the sandbox init, as the cluster binary does.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == SandboxInitArg {
		os.Exit(SandboxInit(os.Args[2:]))
	}
	os.Exit(m.Run())
}

func TestSandboxInitArgsRoundTrip(t *testing.T) {
	argv := sandboxArgv("/usr/local/bin/aiconform", []string{"aiconform", "probe", "sandbox"}, 65532, 65533, []uint32{5, 6})
	if argv[0] != "/.sandbox/init" || argv[1] != SandboxInitArg {
		t.Fatalf("argv %q", argv)
	}
	uid, gid, groups, binary, rest, err := sandboxInitArgs(argv[2:])
	if err != nil || uid != 65532 || gid != 65533 || len(groups) != 2 || groups[1] != 6 ||
		binary != "/usr/local/bin/aiconform" || strings.Join(rest, " ") != "aiconform probe sandbox" {
		t.Fatalf("parsed %d %d %v %q %q %v", uid, gid, groups, binary, rest, err)
	}
	if _, _, groups, _, _, err := sandboxInitArgs(sandboxArgv("/b", []string{"b"}, 0, 0, nil)[2:]); err != nil || len(groups) != 0 {
		t.Fatalf("no groups: %v %v", groups, err)
	}
	for _, bad := range [][]string{{"0", "0", ""}, {"x", "0", "", "/b", "b"}, {"0", "0", "a", "/b", "b"}} {
		if _, _, _, _, _, err := sandboxInitArgs(bad); err == nil {
			t.Errorf("sandboxInitArgs(%q) accepted", bad)
		}
	}
}

func TestSandboxIdentityAndMounts(t *testing.T) {
	id, err := newBootID()
	if err != nil || !regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`).MatchString(id) {
		t.Fatalf("boot id %q %v", id, err)
	}
	files := sandboxIdentityFiles(id, "processor\t: 0\n")
	if files["version"] != sandboxKernelVersion+"\n" || files["sys/kernel/osrelease"] != "4.19.0-gvisor\n" ||
		files["sys/kernel/random/boot_id"] != id+"\n" || files["cpuinfo"] == "" {
		t.Fatalf("identity %v", files)
	}
	ms := sandboxMounts([]mountSpec{
		{Kind: mountBind, Source: "/lib", Target: "/lib"},
		{Kind: mountBind, Source: "/proc", Target: "/proc"},
		{Kind: mountBind, Source: "/x/proc/version", Target: "/proc/version", File: true},
		{Kind: mountTmpfs, Target: "/dev"},
	}, &sandboxSetup{identity: "/pods/u/sandbox/proc", init: "/bin/cluster"})
	var got []string
	for _, m := range ms {
		got = append(got, string(m.Kind)+":"+m.Target)
	}
	want := "bind:/lib tmpfs:/dev dir:/proc bind:/.sandbox/init bind:/.sandbox/proc"
	if strings.Join(got, " ") != want {
		t.Fatalf("mounts %v, want %s", got, want)
	}
}

func TestPodSandboxedByRuntimeClassHandler(t *testing.T) {
	s := testSim(t)
	s.client = fake.NewSimpleClientset(SandboxRuntimeClassObject(),
		&nodev1.RuntimeClass{ObjectMeta: metav1.ObjectMeta{Name: "plain"}, Handler: "runc"},
		&nodev1.RuntimeClass{ObjectMeta: metav1.ObjectMeta{Name: "nvidia"}, Handler: "nvidia"},
		&nodev1.RuntimeClass{ObjectMeta: metav1.ObjectMeta{Name: "kata"}, Handler: "kata-qemu"})
	rt, err := NewRuntime(RuntimeOptions{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	rt.isolated = true
	s.SetRuntime(rt)
	pod := func(rc string) *corev1.Pod {
		p := &corev1.Pod{}
		if rc != "" {
			p.Spec.RuntimeClassName = ptr.To(rc)
		}
		return p
	}
	ctx := context.Background()
	for rc, want := range map[string]bool{"": false, "plain": false, "nvidia": false, SandboxRuntimeClass: true} {
		if got, err := rt.podSandboxed(ctx, pod(rc)); err != nil || got != want {
			t.Errorf("%q: %v %v, want %v", rc, got, err, want)
		}
	}
	if _, err := rt.podSandboxed(ctx, pod("kata")); err == nil || !strings.Contains(err.Error(), `no runtime handler "kata-qemu" on this node`) {
		t.Errorf("unknown handler: %v", err)
	}
	if _, err := rt.podSandboxed(ctx, pod("missing")); err == nil {
		t.Error("missing RuntimeClass accepted")
	}
	rt.isolated = false
	if _, err := rt.podSandboxed(ctx, pod(SandboxRuntimeClass)); err == nil || !strings.Contains(err.Error(), "run the test cluster as root") {
		t.Errorf("without namespaces: %v", err)
	}
}

// runShell runs script in a pod of runtime class rc on gpu-0 as uid 65534 and returns its
// termination message.
func runShell(t *testing.T, leaky bool, rc, script string) string {
	t.Helper()
	sh, err := filepath.EvalSymlinks("/bin/sh")
	if err != nil {
		t.Skip("no /bin/sh")
	}
	s := testSim(t)
	s.client = fake.NewSimpleClientset(SandboxRuntimeClassObject())
	rt, err := NewRuntime(RuntimeOptions{Images: map[string]string{"example.com/sh": sh}, Dir: t.TempDir(), SandboxLeaky: leaky})
	if err != nil {
		t.Fatal(err)
	}
	s.SetRuntime(rt)
	rt.notify = func(string) {}
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "ns", UID: types.UID("uid-" + rc)},
		Spec: corev1.PodSpec{
			NodeName:      "gpu-0",
			RestartPolicy: corev1.RestartPolicyNever,
			Containers: []corev1.Container{{
				Name: "c", Image: "example.com/sh:latest",
				Command:         []string{filepath.Base(sh), "-c", script},
				SecurityContext: &corev1.SecurityContext{RunAsUser: ptr.To[int64](65534)},
			}},
		},
	}
	if rc != "" {
		pod.Spec.RuntimeClassName = ptr.To(rc)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pr := rt.ensure(ctx, pod, s.nodes["gpu-0"], "127.16.0.2")
	select {
	case <-pr.done:
	case <-time.After(30 * time.Second):
		t.Fatal("container did not finish")
	}
	st := pr.status(pod, &corev1.PodStatus{}, time.Now())
	term := st.ContainerStatuses[0].State.Terminated
	if term == nil || term.ExitCode != 0 {
		log, _ := os.ReadFile(filepath.Join(pr.dir, "c.log"))
		t.Fatalf("state %+v log %s", st.ContainerStatuses[0].State, log)
	}
	return term.Message
}

func TestSandboxedContainerSeesItsOwnKernelAndNothingOfTheHost(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root for mount, PID and network namespaces")
	}
	// Only shell builtins: the "image" holds nothing but the mapped binary.
	script := `exec > /dev/termination-log; read v < /proc/version; echo "$v"; read r < /proc/sys/kernel/osrelease; echo $r; ` +
		`read b < /proc/sys/kernel/random/boot_id; echo $b; n=0; for d in /proc/[0-9]*; do n=$((n+1)); done; echo procs=$n; ` +
		`while read l; do case $l in *:*) echo "if ${l%%:*}";; esac; done < /proc/net/dev; ` +
		`for p in /.sandbox /dev/mem /dev/kmem; do [ -e $p ] && echo "has $p"; done; ` +
		`if (: > /probe) 2>/dev/null; then echo root; else echo nonroot; fi`
	hostBoot, _ := os.ReadFile("/proc/sys/kernel/random/boot_id")
	msg := runShell(t, false, SandboxRuntimeClass, script)
	lines := strings.Split(strings.TrimSpace(msg), "\n")
	if len(lines) < 6 || lines[0] != sandboxKernelVersion || lines[1] != sandboxKernelRelease ||
		lines[2] == strings.TrimSpace(string(hostBoot)) || lines[3] != "procs=1" ||
		strings.Join(lines[4:], ";") != "if lo;nonroot" {
		t.Fatalf("sandboxed view:\n%s", msg)
	}
	// The same script in an ordinary pod sees the node's kernel and the host's processes.
	plain := strings.Split(strings.TrimSpace(runShell(t, false, "", script)), "\n")
	if len(plain) < 4 || plain[1] == sandboxKernelRelease || plain[2] != strings.TrimSpace(string(hostBoot)) || plain[3] == "procs=1" {
		t.Fatalf("ordinary view: %q", plain)
	}
	// Fault: the leaky sandbox shows what an ordinary pod shows, except for its network.
	leaky := strings.Split(strings.TrimSpace(runShell(t, true, SandboxRuntimeClass, script)), "\n")
	if len(leaky) < 5 || leaky[1] != plain[1] || leaky[2] != plain[2] || leaky[3] == "procs=1" || leaky[4] != "if lo" {
		t.Fatalf("leaky view: %q (ordinary %q)", leaky, plain)
	}
}
