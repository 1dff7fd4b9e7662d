package gateway

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestParseLoadReadsVLLMMetrics(t *testing.T) {
	text := `# HELP vllm:num_requests_waiting Waiting requests.
# TYPE vllm:num_requests_waiting gauge
vllm:num_requests_waiting{model_name="m"} 3
vllm:num_requests_waiting{model_name="n"} 1
vllm:kv_cache_usage_perc{model_name="m"} 0.25
other_metric 9
`
	l := parseLoad(strings.NewReader(text))
	if !l.known || l.waiting != 4 || l.kvCache != 0.25 {
		t.Fatalf("%+v", l)
	}
	if old := parseLoad(strings.NewReader("vllm:gpu_cache_usage_perc 0.5\n")); !old.known || old.kvCache != 0.5 {
		t.Fatalf("older metric name: %+v", old)
	}
	if parseLoad(strings.NewReader("up 1\n")).known {
		t.Fatal("no model-server metrics, no load")
	}
}

func TestLeastLoadedPrefersShortQueueThenFreeCache(t *testing.T) {
	loads := []load{{known: true, waiting: 2}, {known: true, waiting: 0, kvCache: 0.9}, {known: true, waiting: 0, kvCache: 0.1}, {}}
	if i := leastLoaded(loads, 7); i != 2 {
		t.Fatalf("picked %d", i)
	}
	tie := []load{{known: true}, {}, {known: true}}
	if a, b := leastLoaded(tie, 0), leastLoaded(tie, 1); a == b || a == 1 || b == 1 {
		t.Fatalf("ties go round robin among the known: %d %d", a, b)
	}
	if leastLoaded(nil, 0) != -1 {
		t.Fatal("no candidates")
	}
}

// modelServer answers with its name and reports a queue length.
func modelServer(t *testing.T, name string, waiting int) string {
	t.Helper()
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/metrics" {
			fmt.Fprintf(w, "vllm:num_requests_waiting %d\nvllm:kv_cache_usage_perc 0.5\n", waiting)
			return
		}
		w.Header().Set("x-served-by", name)
		_, _ = io.WriteString(w, name)
	}))
	t.Cleanup(s.Close)
	return strings.TrimPrefix(s.URL, "http://")
}

func TestPoolRequestsGoToTheLeastLoadedMember(t *testing.T) {
	for _, ignore := range []bool{false, true} {
		busy, idle := modelServer(t, "busy", 7), modelServer(t, "idle", 0)
		eps := fixedEndpoints{"pool:ns/pool": {busy, idle}}
		p := newProxy("ns/gw", eps, newEndpointPicker(ignore))
		p.table.Store(&table{rules: []routeRule{{Route: "ns/r", Match: mustMatch(t, httpRouteMatch{}),
			Pick: newPicker([]backend{{Namespace: "ns", Service: "pool", Weight: 1, Pool: true}}, false)}}})
		count := map[string]int{}
		for i := 0; i < 10; i++ {
			w := httptest.NewRecorder()
			p.ServeHTTP(w, req("POST", "/v1/completions"))
			who := w.Header().Get("x-served-by")
			if dest := w.Header().Get(DestinationHeader); (who == "idle") != (dest == idle) || dest == "" {
				t.Fatalf("destination header %q for a response from %q", dest, who)
			}
			count[who]++
		}
		want := map[string]int{"idle": 10}
		if ignore {
			want = map[string]int{"busy": 5, "idle": 5}
		}
		if fmt.Sprint(count) != fmt.Sprint(want) {
			t.Errorf("ignoreMetrics=%v: %v, want %v", ignore, count, want)
		}
	}
}
