package gateway

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/utils/ptr"
)

// The Gateway API Inference Extension's InferencePool
// (inference.networking.k8s.io/v1), as HTTPRoute backendRefs use it: the
// gateway's built-in endpoint picker chooses, per request, the pool member
// whose model server reports the least load (queued requests, then KV-cache
// use, from its Prometheus metrics) and names its choice in the
// DestinationHeader of the response. Fault: EPPIgnoresMetrics picks round
// robin.
const (
	PoolGroup   = "inference.networking.k8s.io"
	PoolVersion = "v1"
	// DestinationHeader carries the endpoint picker's choice (the header
	// name of the GAIE endpoint-picker protocol).
	DestinationHeader = "x-gateway-destination-endpoint"
)

var poolGVR = schema.GroupVersionResource{Group: PoolGroup, Version: PoolVersion, Resource: "inferencepools"}

type poolSpec struct {
	Selector struct {
		MatchLabels map[string]string `json:"matchLabels"`
	} `json:"selector"`
	TargetPorts []struct {
		Number int32 `json:"number"`
	} `json:"targetPorts"`
}

// PoolCRD is the InferencePool CRD (v1 schema, trimmed, structural).
func PoolCRD() *apiextensionsv1.CustomResourceDefinition {
	labelsMap := apiextensionsv1.JSONSchemaProps{Type: "object",
		AdditionalProperties: &apiextensionsv1.JSONSchemaPropsOrBool{Allows: true, Schema: ptr.To(str())}}
	port := obj(props{"number": i32()}, "number")
	spec := obj(props{
		"selector":    obj(props{"matchLabels": labelsMap}, "matchLabels"),
		"targetPorts": list(port, 8),
		"endpointPickerRef": obj(props{
			"group": str(), "kind": str(), "name": str(), "port": port,
			"failureMode": enum("FailClose", "FailOpen", "FailClose"),
		}, "name"),
	}, "selector", "targetPorts")
	parent := obj(props{
		"parentRef":  obj(props{"group": str(), "kind": str(), "namespace": str(), "name": str()}, "name"),
		"conditions": conditions(),
	}, "parentRef")
	crd := crdFor("InferencePool", "inferencepools", "inferencepool", apiextensionsv1.NamespaceScoped,
		spec, obj(props{"parents": list(parent, 32)}))
	crd.Name = "inferencepools." + PoolGroup
	crd.Spec.Group = PoolGroup
	crd.Spec.Names.ShortNames = []string{"infpool"}
	crd.Spec.Names.Categories = nil
	crd.Spec.Versions[0].Name = PoolVersion
	crd.Annotations = map[string]string{
		"inference.networking.k8s.io/bundle-version": "v1.0.0",
		"api-approved.kubernetes.io":                 "https://github.com/kubernetes-sigs/gateway-api-inference-extension/pull/1173",
	}
	return crd
}

// load is what a model server reports about its queue and KV cache.
type load struct {
	waiting float64
	kvCache float64
	known   bool
}

// parseLoad reads vLLM's metrics (`vllm:num_requests_waiting`,
// `vllm:kv_cache_usage_perc` or the older `vllm:gpu_cache_usage_perc`) from
// a Prometheus text exposition; series of one name are summed.
func parseLoad(r io.Reader) load {
	var l load
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.IndexAny(line, "{ ")
		if i < 0 {
			continue
		}
		name, rest := line[:i], line[i:]
		if j := strings.LastIndex(rest, "}"); j >= 0 {
			rest = rest[j+1:]
		}
		fields := strings.Fields(rest)
		if len(fields) == 0 {
			continue
		}
		v, err := strconv.ParseFloat(fields[0], 64)
		if err != nil {
			continue
		}
		switch name {
		case "vllm:num_requests_waiting":
			l.waiting += v
			l.known = true
		case "vllm:kv_cache_usage_perc", "vllm:gpu_cache_usage_perc":
			l.kvCache += v
			l.known = true
		}
	}
	return l
}

// leastLoaded is the index of the endpoint with the fewest waiting
// requests, then the least KV-cache use; endpoints without metrics come
// last. Ties go round robin by rr.
func leastLoaded(loads []load, rr int) int {
	less := func(a, b load) bool {
		if a.known != b.known {
			return a.known
		}
		if a.waiting != b.waiting {
			return a.waiting < b.waiting
		}
		return a.kvCache < b.kvCache
	}
	best := []int{}
	for i, l := range loads {
		switch {
		case len(best) == 0 || less(l, loads[best[0]]):
			best = []int{i}
		case !less(loads[best[0]], l):
			best = append(best, i)
		}
	}
	if len(best) == 0 {
		return -1
	}
	return best[rr%len(best)]
}

// endpointPicker scrapes the candidates' metrics and chooses one per request.
type endpointPicker struct {
	client        *http.Client
	ignoreMetrics bool
	mu            sync.Mutex
	rr            int
}

func newEndpointPicker(ignoreMetrics bool) *endpointPicker {
	return &endpointPicker{client: &http.Client{Timeout: time.Second}, ignoreMetrics: ignoreMetrics}
}

func (e *endpointPicker) next() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.rr++
	return e.rr
}

func (e *endpointPicker) pick(ctx context.Context, addrs []string) (string, error) {
	if len(addrs) == 0 {
		return "", fmt.Errorf("no ready pool member")
	}
	rr := e.next()
	if e.ignoreMetrics {
		return addrs[rr%len(addrs)], nil
	}
	loads := make([]load, len(addrs))
	var wg sync.WaitGroup
	for i, a := range addrs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+a+"/metrics", nil)
			if err != nil {
				return
			}
			resp, err := e.client.Do(req)
			if err != nil {
				return
			}
			defer resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				loads[i] = parseLoad(resp.Body)
			}
		}()
	}
	wg.Wait()
	return addrs[leastLoaded(loads, rr)], nil
}
