package podruntime

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseNodeFault(t *testing.T) {
	n, f, err := ParseNodeFault("gpu-1=xid79")
	if err != nil || n != "gpu-1" || f != FaultXid79 {
		t.Fatalf("got %q %q %v", n, f, err)
	}
	for _, bad := range []string{"gpu-1", "=xid79", "gpu-1=melted"} {
		if _, _, err := ParseNodeFault(bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

func TestNodeHealthFaultsChangeOnlyTheirReading(t *testing.T) {
	healthy := map[string]string{}
	addNodeHealth(healthy, "gpu-0", 8, "NVIDIA H100 80GB HBM3", "550.127.05", nil)
	if strings.Contains(healthy["dev/kmsg"], "Xid") || strings.Contains(healthy[toolDataDir+"/nvidia-smi-nvlink-s.txt"], "inactive") ||
		strings.Contains(healthy[toolDataDir+"/nvidia-smi-q.xml"], "<remapped_row_pending>Yes") {
		t.Fatal("a healthy node shows a fault")
	}
	if got := strings.Count(healthy[toolDataDir+"/nvidia-smi-q.xml"], "<gpu id="); got != 8 {
		t.Fatalf("%d GPUs in the XML", got)
	}
	for fault, check := range map[NodeFault]func(map[string]string) bool{
		FaultXid79: func(f map[string]string) bool {
			return strings.Contains(f["dev/kmsg"], "NVRM: Xid (PCI:0000:4b:00): 79,")
		},
		FaultRowRemapPending: func(f map[string]string) bool {
			return strings.Count(f[toolDataDir+"/nvidia-smi-q.xml"], "<remapped_row_pending>Yes") == 1
		},
		FaultNVLinkDown: func(f map[string]string) bool {
			return strings.Count(f[toolDataDir+"/nvidia-smi-nvlink-s.txt"], "<inactive>") == 1
		},
		FaultPCIeX8: func(f map[string]string) bool {
			return f["sys/bus/pci/devices/0000:4b:00.0/current_link_width"] == "8\n"
		},
		FaultIBRateHalf: func(f map[string]string) bool {
			return f["sys/class/infiniband/mlx5_0/ports/1/rate"] == "200 Gb/sec (4X HDR)\n"
		},
		FaultMissingGPU: func(f map[string]string) bool {
			_, ok := f["sys/bus/pci/devices/0000:4b:00.0/vendor"]
			return !ok && strings.Count(f[toolDataDir+"/nvidia-smi-q.xml"], "<gpu id=") == 7
		},
	} {
		files := map[string]string{"sys/bus/pci/devices/0000:4b:00.0/vendor": "0x10de\n"}
		addNodeHealth(files, "gpu-0", 8, "NVIDIA H100 80GB HBM3", "550.127.05", []NodeFault{fault})
		if !check(files) {
			t.Errorf("%s: reading not changed", fault)
		}
	}
}

func TestFakeTool(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := FakeTool("nvidia-smi", []string{"topo", "-m"}, &out, &errOut); code != 2 || !strings.Contains(errOut.String(), "not supported") {
		t.Fatalf("code %d, %q", code, errOut.String())
	}
	if _, err := os.Stat(filepath.Join("/", toolDataDir)); err == nil {
		t.Skip("this machine has a tool data dir")
	}
	errOut.Reset()
	if code := FakeTool("nvidia-smi", []string{"-q", "-x"}, &out, &errOut); code != 9 {
		t.Fatalf("code %d without readings", code)
	}
}
