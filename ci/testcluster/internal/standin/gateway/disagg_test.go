package gateway

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// roleEndpointsFixed is a pool whose members carry roles.
type roleEndpointsFixed struct {
	fixedEndpoints
	roles map[string]string
}

func (f roleEndpointsFixed) PoolRoles(ns, name string) (map[string]string, error) {
	return f.roles, nil
}

// phaseServer is a model server of one phase; it records the request ids
// and KV handles it saw, as `aiconform probe serve --role` logs them.
type phaseServer struct {
	addr string
	mu   sync.Mutex
	seen []string
}

func newPhaseServer(t *testing.T, name, role string) *phaseServer {
	t.Helper()
	ps := &phaseServer{}
	n := 0
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/metrics" {
			http.NotFound(w, r)
			return
		}
		ps.mu.Lock()
		defer ps.mu.Unlock()
		id := r.Header.Get(RequestIDHeader)
		handle := r.Header.Get(KVHandleHeader)
		if role == RolePrefill {
			n++
			handle = fmt.Sprintf("kv-%s-%d", name, n)
			w.Header().Set(KVHandleHeader, handle)
		}
		ps.seen = append(ps.seen, id+" "+handle)
		w.Header().Set("x-served-by", name)
		_, _ = io.WriteString(w, name)
	}))
	t.Cleanup(s.Close)
	ps.addr = strings.TrimPrefix(s.URL, "http://")
	return ps
}

func TestSplitRoles(t *testing.T) {
	pre, dec := splitRoles(map[string]string{"a": "prefill", "b": "decode", "c": "both", "d": ""})
	if fmt.Sprint(pre, dec) != "[a] [b c]" {
		t.Fatalf("%v %v", pre, dec)
	}
	if pre, _ := splitRoles(map[string]string{"a": "", "b": "decode"}); len(pre) != 0 {
		t.Fatalf("no prefill member: %v", pre)
	}
}

func TestPoolOfRolesRunsPrefillThenDecode(t *testing.T) {
	for _, fault := range []bool{false, true} {
		pre, dec := newPhaseServer(t, "prefill-0", RolePrefill), newPhaseServer(t, "decode-0", RoleDecode)
		eps := roleEndpointsFixed{fixedEndpoints{"pool:ns/pool": {pre.addr, dec.addr}},
			map[string]string{pre.addr: RolePrefill, dec.addr: RoleDecode}}
		p := newProxy("ns/gw", eps, newEndpointPicker(false))
		p.noDisaggregation = fault
		p.table.Store(&table{rules: []routeRule{{Route: "ns/r", Match: mustMatch(t, httpRouteMatch{}),
			Pick: newPicker([]backend{{Namespace: "ns", Service: "pool", Weight: 1, Pool: true}}, false)}}})
		served := map[string]int{}
		for i := 0; i < 4; i++ {
			r := req("GET", "/v1/completions")
			r.Header.Set(RequestIDHeader, fmt.Sprintf("r%d", i))
			w := httptest.NewRecorder()
			p.ServeHTTP(w, r)
			if w.Code != http.StatusOK {
				t.Fatalf("fault=%v: HTTP %d %s", fault, w.Code, w.Body)
			}
			served[w.Header().Get("x-served-by")]++
			if got := w.Header().Get(PrefillerHeader); (got == pre.addr) == fault {
				t.Errorf("fault=%v: %s %q", fault, PrefillerHeader, got)
			}
		}
		if fault {
			// Each request reaches one member; none is prefilled elsewhere.
			if len(pre.seen)+len(dec.seen) != 4 || served["prefill-0"] != len(pre.seen) {
				t.Errorf("fault: prefill %v decode %v served %v", pre.seen, dec.seen, served)
			}
			for _, s := range dec.seen {
				if !strings.HasSuffix(s, " ") {
					t.Errorf("fault: decode got a KV handle: %q", s)
				}
			}
			continue
		}
		want := "[r0 kv-prefill-0-1 r1 kv-prefill-0-2 r2 kv-prefill-0-3 r3 kv-prefill-0-4]"
		if fmt.Sprint(pre.seen) != want || fmt.Sprint(dec.seen) != want || served["decode-0"] != 4 {
			t.Errorf("prefill %v decode %v served %v", pre.seen, dec.seen, served)
		}
	}
}

func TestDisaggregationGeneratesRequestIDAndFailsWithoutHandle(t *testing.T) {
	dec := newPhaseServer(t, "decode-0", RoleDecode)
	silent := newPhaseServer(t, "not-a-prefiller", RoleDecode)
	eps := roleEndpointsFixed{fixedEndpoints{}, map[string]string{silent.addr: RolePrefill, dec.addr: RoleDecode}}
	p := newProxy("ns/gw", eps, newEndpointPicker(false))
	p.table.Store(&table{rules: []routeRule{{Route: "ns/r", Match: mustMatch(t, httpRouteMatch{}),
		Pick: newPicker([]backend{{Namespace: "ns", Service: "pool", Weight: 1, Pool: true}}, false)}}})
	w := httptest.NewRecorder()
	p.ServeHTTP(w, req("GET", "/"))
	if w.Code != http.StatusServiceUnavailable || !strings.Contains(w.Body.String(), "without a "+KVHandleHeader) {
		t.Fatalf("HTTP %d %s", w.Code, w.Body)
	}
	if len(silent.seen) != 1 || strings.HasPrefix(silent.seen[0], " ") {
		t.Fatalf("the prefill call carries a generated request id: %v", silent.seen)
	}
}
