package profile

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

func TestBuiltinsMatchFixtures(t *testing.T) {
	fixtures := filepath.Join("..", "..", "..", "..", "fixtures", "clusters")
	for _, name := range BuiltinNames() {
		b, err := BuiltinBytes(name)
		if err != nil {
			t.Fatal(err)
		}
		f, err := os.ReadFile(filepath.Join(fixtures, name+".yaml"))
		if err != nil {
			t.Skipf("fixtures not available: %v", err)
		}
		if !bytes.Equal(b, f) {
			t.Errorf("internal/profile/builtin/%s.yaml differs from fixtures/clusters/%s.yaml; copy the fixture over", name, name)
		}
	}
}

func TestH100Profile(t *testing.T) {
	p, err := Load("")
	if err != nil {
		t.Fatal(err)
	}
	if p.Name != "h100-sxm" || len(p.Pools) != 2 {
		t.Fatalf("unexpected profile %+v", p)
	}
	gi := p.GPUPool()
	if gi != 1 {
		t.Fatalf("gpu pool index %d", gi)
	}
	gp := p.Pools[gi]
	rl := gp.ResourceList()
	if q := rl[GPUResourceName]; q.Value() != 8 {
		t.Errorf("nvidia.com/gpu = %s", q.String())
	}
	if q := rl["cpu"]; q.Value() != 192 {
		t.Errorf("cpu = %s", q.String())
	}
	if q := rl["memory"]; q.String() != "2Ti" {
		t.Errorf("memory = %s", q.String())
	}
	if gp.Labels["nvidia.com/gpu.product"] != "NVIDIA-H100-80GB-HBM3" || gp.Labels["node.kubernetes.io/instance-type"] != "p5.48xlarge" {
		t.Errorf("labels %v", gp.Labels)
	}
	if len(gp.Taints) != 1 || gp.Taints[0].Key != "nvidia.com/gpu" || gp.Taints[0].Effect != "NoSchedule" {
		t.Errorf("taints %v", gp.Taints)
	}
	if gp.NodeInfo.OSImage != "Ubuntu 24.04.1 LTS" {
		t.Errorf("nodeInfo %+v", gp.NodeInfo)
	}
	if err := p.SetGPUNodes(5); err != nil || p.Pools[1].Count != 5 || p.TotalNodes() != 6 {
		t.Errorf("SetGPUNodes: %v %d", err, p.TotalNodes())
	}
	if p.Pools[0].GPU != nil {
		t.Errorf("system pool must not have GPUs")
	}
}

func TestGB200Profile(t *testing.T) {
	p, err := Load("gb200")
	if err != nil {
		t.Fatal(err)
	}
	gp := p.Pools[p.GPUPool()]
	if gp.GPU.Count != 4 || gp.Architecture() != "arm64" || gp.GPU.Product != "NVIDIA-GB200" {
		t.Errorf("unexpected gb200 pool %+v", gp)
	}
}

func TestLoadFileAndErrors(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "p.yaml")
	os.WriteFile(f, []byte("name: x\npools:\n- name: a\n  count: 2\n"), 0o644)
	p, err := Load(f)
	if err != nil {
		t.Fatal(err)
	}
	if p.TotalNodes() != 2 || p.GPUPool() != -1 {
		t.Errorf("unexpected %+v", p)
	}
	if err := p.SetGPUNodes(3); err == nil {
		t.Errorf("expected error resizing a profile without GPU pool")
	}
	for _, bad := range []string{
		"name: x\npools: []\n",
		"name: x\npools:\n- name: a\n- name: a\n",
		"name: x\npools:\n- name: a\n  gpu: {count: 0, product: p}\n",
		"name: x\nunknownField: 1\npools:\n- name: a\n",
	} {
		if _, err := Parse([]byte(bad)); err == nil {
			t.Errorf("expected error for %q", bad)
		}
	}
	if _, err := Load(filepath.Join(dir, "missing.yaml")); err == nil {
		t.Errorf("expected error for missing file")
	}
}
